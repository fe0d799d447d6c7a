"""The canonical event schema every producer (generator, importer, live API) writes."""

from __future__ import annotations

from typing import Literal, get_args

import pyarrow as pa

EVENT_TYPES = ("view", "add_to_cart", "remove_from_cart", "purchase")
Device = Literal["mobile", "desktop", "tablet"]
DEVICES: tuple[str, ...] = get_args(Device)

EVENT_SCHEMA = pa.schema(
    [
        pa.field("event_id", pa.string(), nullable=False),
        pa.field("user_id", pa.int64(), nullable=False),
        pa.field("session_id", pa.string(), nullable=False),
        pa.field("event_type", pa.string(), nullable=False),
        pa.field("item_id", pa.int64(), nullable=True),
        pa.field("category", pa.string(), nullable=True),
        pa.field("price", pa.float64(), nullable=True),
        pa.field("device", pa.string(), nullable=True),
        pa.field("country", pa.string(), nullable=True),
        # Microsecond UTC timestamps: Feast's DuckDB offline store needs them.
        pa.field("ts", pa.timestamp("us", tz="UTC"), nullable=False),
    ]
)

GROUND_TRUTH_SCHEMA = pa.schema(
    [
        pa.field("session_id", pa.string(), nullable=False),
        pa.field("user_id", pa.int64(), nullable=False),
        pa.field("ts", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("p_session", pa.float64(), nullable=False),
        pa.field("propensity_24h", pa.float64(), nullable=False),
    ]
)
