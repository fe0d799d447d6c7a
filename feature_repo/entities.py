"""Entities: the keys every Tailor feature hangs off."""

from feast import Entity, ValueType

user = Entity(
    name="user",
    join_keys=["user_id"],
    value_type=ValueType.INT64,
    description="A shopper; ids are the store's own 64-bit user ids.",
)

category = Entity(
    name="category",
    join_keys=["category"],
    value_type=ValueType.STRING,
    description="A top-level product category (e.g. electronics).",
)
