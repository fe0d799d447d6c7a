"""The canonical event schema every producer (generator, importer, live API) writes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal, get_args

import pyarrow as pa
from pydantic import AfterValidator, AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field

EventType = Literal["view", "add_to_cart", "remove_from_cart", "purchase"]
EVENT_TYPES: tuple[str, ...] = get_args(EventType)
Device = Literal["mobile", "desktop", "tablet"]
DEVICES: tuple[str, ...] = get_args(Device)

EARLIEST, LATEST = datetime(1970, 1, 1, tzinfo=UTC), datetime(2200, 1, 1, tzinfo=UTC)
# For identifiers and free text from clients: a NUL or an escape sequence is never part
# of a name, and would travel on into features, logs and terminals.
NO_CONTROL_CHARACTERS = r"^[^\x00-\x1f\x7f]*$"


def _in_epoch_range(moment: datetime) -> datetime:
    # Year 1 with a +01:00 offset is a valid ISO 8601 instant that overflows once
    # converted to UTC; no clickstream or page view is that old or that far ahead.
    if not EARLIEST <= moment < LATEST:
        raise ValueError(f"must be between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d} (UTC)")
    return moment


def _not_a_number(value: object) -> object:
    # Pydantic reads a number as seconds since the epoch; the API documents ISO 8601,
    # and a number where a time is expected is more often a unit mistake than a time.
    if isinstance(value, int | float):
        raise ValueError("must be an ISO 8601 string with a zone, e.g. 2026-03-04T10:00:00Z")
    return value


Instant = Annotated[AwareDatetime, BeforeValidator(_not_a_number), AfterValidator(_in_epoch_range)]
DECISION_ID_LENGTH = 32  # uuid4 hex, as decisions are logged

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
    """One canonical event as it arrives live: the fields of EVENT_SCHEMA, plus the
    decision a purchase answers, if the caller knows it (it becomes a conversion)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: str = Field(min_length=1, max_length=128, pattern=NO_CONTROL_CHARACTERS)
    user_id: int = Field(ge=1, le=2**63 - 1)
    session_id: str = Field(min_length=1, max_length=128, pattern=NO_CONTROL_CHARACTERS)
    event_type: EventType
    item_id: int | None = Field(None, ge=0, le=2**63 - 1)
    category: str | None = Field(None, min_length=1, max_length=100, pattern=NO_CONTROL_CHARACTERS)
    price: float | None = Field(None, ge=0, allow_inf_nan=False)
    device: Device | None = None
    country: str | None = Field(None, pattern=r"^[A-Z]{2}$")
    ts: Instant = Field(description="When it happened, ISO 8601 with a zone.")
    decision_id: str | None = Field(
        None,
        min_length=1,
        max_length=DECISION_ID_LENGTH,
        pattern=NO_CONTROL_CHARACTERS,
        description="On a purchase: the decision it answers; also recorded as a conversion "
        "outcome with the price as its value.",
    )
