"""The canonical event schema every producer (generator, importer, live API) writes."""

from __future__ import annotations

from typing import Literal, get_args

import pyarrow as pa
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

EventType = Literal["view", "add_to_cart", "remove_from_cart", "purchase"]
EVENT_TYPES: tuple[str, ...] = get_args(EventType)
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


class Event(BaseModel):
    """One canonical event as it arrives live; the same fields as EVENT_SCHEMA."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: str = Field(min_length=1, max_length=128)
    user_id: int = Field(ge=1, le=2**63 - 1)
    session_id: str = Field(min_length=1, max_length=128)
    event_type: EventType
    item_id: int | None = Field(None, ge=0, le=2**63 - 1)
    category: str | None = Field(None, min_length=1, max_length=100)
    price: float | None = Field(None, ge=0, allow_inf_nan=False)
    device: Device | None = None
    country: str | None = Field(None, pattern=r"^[A-Z]{2}$")
    ts: AwareDatetime = Field(description="When it happened, ISO 8601 with a zone.")
