"""Sources: the dbt marts and the request-time context.

Mart paths are relative: Tailor opens the store with its data directory as the repo
path, so one set of definitions serves every data directory and profile.
"""

from feast import Field, FileSource, PushSource, RequestSource
from feast.types import Int64, String

user_daily_source = FileSource(
    name="user_daily_features",
    path="marts/user_daily_features.parquet",
    timestamp_field="feature_ts",
    description="dbt mart marts/user_daily_features: one row per user per completed day.",
)

category_daily_source = FileSource(
    name="category_daily_features",
    path="marts/category_daily_features.parquet",
    timestamp_field="feature_ts",
    description="dbt mart marts/category_daily_features: one row per category per day.",
)

request_context = RequestSource(
    name="request_context",
    schema=[
        Field(name="device", dtype=String),
        Field(name="country", dtype=String),
        Field(name="request_ts_s", dtype=Int64, description="Request time, epoch seconds UTC."),
    ],
    description="Facts known only when the request arrives.",
)

session_log_source = FileSource(
    name="session_activity_log",
    path="session/*.parquet",  # one part per worker flush: appends never rewrite
    timestamp_field="event_timestamp",
    description="Offline log of the session features the stream workers pushed.",
)

session_push = PushSource(
    name="session_push",
    batch_source=session_log_source,
    description="Stream workers push per-user session snapshots here (online and offline).",
)
