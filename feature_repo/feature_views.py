"""Batch feature views over the dbt marts.

TTLs are two days: marts are daily snapshots, so a row older than that means the
pipeline stalled and the value should not be trusted as current.
"""

from datetime import timedelta

from feast import FeatureView, Field
from feast.types import Float64, Int64, PrimitiveFeastType, String

from feature_repo.data_sources import category_daily_source, session_push, user_daily_source
from feature_repo.entities import category, user

# Tag for fields that feed on-demand features but are not model inputs themselves
# (an absolute timestamp would let the model memorise the calendar).
INPUT_ONLY = {"role": "input"}

# The behavioral windows and what is summed over them, declared once: the view's
# schema below is generated from them, and `tailor transform` passes them to dbt, whose
# user mart computes one `<measure>_<window>` column each (the window of the last N days
# up to and including the snapshot day).
BEHAVIOR_WINDOWS_DAYS: dict[str, int] = {"1d": 1, "7d": 7, "30d": 30}
WINDOWED_MEASURES: dict[str, PrimitiveFeastType] = {
    "events": Int64,
    "views": Int64,
    "carts": Int64,
    "purchases": Int64,
    "sessions": Int64,
    "revenue": Float64,
}
_WINDOWED = [
    Field(name=f"{measure}_{window}", dtype=dtype)
    for window in BEHAVIOR_WINDOWS_DAYS
    for measure, dtype in WINDOWED_MEASURES.items()
]

user_behavior = FeatureView(
    name="user_behavior",
    entities=[user],
    ttl=timedelta(days=2),
    schema=[
        Field(name="last_event_epoch_s", dtype=Int64, tags=INPUT_ONLY),
        Field(name="hours_since_last_event", dtype=Float64),
        Field(name="tenure_days", dtype=Int64),
        *_WINDOWED,
        Field(name="abandoned_carts_7d", dtype=Int64),
        Field(name="abandoned_carts_30d", dtype=Int64),
        Field(name="cart_abandonment_rate_30d", dtype=Float64),
        Field(name="has_open_cart", dtype=Int64),
        Field(name="hours_since_last_purchase", dtype=Float64),
        Field(name="top_category_30d", dtype=String),
        Field(name="top_category_share_30d", dtype=Float64),
        Field(name="distinct_categories_30d", dtype=Int64),
        Field(name="category_events_30d", dtype=String, description="JSON object"),
        Field(name="mean_session_seconds_30d", dtype=Float64),
        Field(name="mobile_share_30d", dtype=Float64),
    ],
    source=user_daily_source,
    online=True,
    description="Recency, frequency, monetary value, funnel counts and tastes per user.",
    tags={"signal": "behavioral"},
)

category_stats = FeatureView(
    name="category_stats",
    entities=[category],
    ttl=timedelta(days=2),
    schema=[
        Field(name="views_7d", dtype=Int64),
        Field(name="purchases_7d", dtype=Int64),
        Field(name="views_30d", dtype=Int64),
        Field(name="purchases_30d", dtype=Int64),
        Field(name="conversion_rate_30d", dtype=Float64),
        Field(name="popularity_7d", dtype=Float64),
    ],
    source=category_daily_source,
    online=True,
    description="Popularity and conversion per category; the cold-start prior.",
    tags={"signal": "behavioral"},
)

# A day: cart state stays meaningful that long; the 30-minute counts are as of the
# user's last event, and the on-demand view says how long ago that was.
session_activity = FeatureView(
    name="session_activity",
    entities=[user],
    ttl=timedelta(days=1),
    schema=[
        Field(name="session_events_30m", dtype=Int64),
        Field(name="session_views_30m", dtype=Int64),
        Field(name="session_category_views_30m", dtype=String, description="JSON object"),
        Field(name="session_top_category", dtype=String),
        Field(name="session_top_category_views_30m", dtype=Int64),
        Field(name="cart_items", dtype=Int64),
        Field(name="cart_value", dtype=Float64),
        Field(name="last_unpurchased_cart_epoch_s", dtype=Int64, tags=INPUT_ONLY),
        Field(name="last_category", dtype=String),
        Field(name="session_last_event_epoch_s", dtype=Int64, tags=INPUT_ONLY),
    ],
    source=session_push,
    online=True,
    description="Live session activity from the event stream, seconds old.",
    tags={"signal": "behavioral"},
)
