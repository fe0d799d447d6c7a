"""The entity frame: one observation per session start, labelled from later events.

A session start is the moment the API is asked for a decision, so training rows look
like serving requests: user, time, device, country. The label is whether the user
buys within the horizon after that moment. Rows whose horizon runs past the end of
the data are left out: their label is not known yet. So are the sessions of users who
opted out (`excluded_users`): their events stay in the files, but no model learns from
them. The end of the data is still that of every event, so leaving a user out never
moves another's horizon.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

import duckdb
import pandas as pd

OBSERVATIONS_SQL = """
WITH events AS (SELECT * FROM read_parquet($glob)),
excluded AS (SELECT unnest($excluded::BIGINT[]) AS user_id),
starts AS (
    SELECT user_id, session_id, min(ts) AS ts,
           arg_min(device, ts) AS device, arg_min(country, ts) AS country
    FROM events ANTI JOIN excluded USING (user_id) GROUP BY user_id, session_id
),
purchases AS (SELECT user_id, ts FROM events WHERE event_type = 'purchase'),
labelled AS (
    SELECT s.user_id, s.session_id, s.ts AS event_timestamp, s.device, s.country,
           coalesce(p.ts < s.ts + to_hours($horizon), false) AS label
    FROM starts s ASOF LEFT JOIN purchases p ON s.user_id = p.user_id AND p.ts >= s.ts
    WHERE s.ts + to_hours($horizon) <= (SELECT max(ts) FROM events)
)
SELECT * FROM labelled ORDER BY event_timestamp DESC, session_id LIMIT $limit
"""


def build_observations(
    events_dir: Path,
    horizon_hours: int,
    max_rows: int | None,
    *,
    excluded_users: Collection[int],
) -> pd.DataFrame:
    """`excluded_users` has no default: every caller says whose data it may not use."""
    files = sorted(events_dir.glob("*.parquet"))
    if not files:
        raise FileNotFoundError(
            f"no event files in {events_dir}; run `tailor generate` or `tailor import` first"
        )
    with duckdb.connect() as connection:
        frame = connection.execute(
            OBSERVATIONS_SQL,
            {
                "glob": [str(path) for path in files],
                "horizon": horizon_hours,
                "limit": max_rows if max_rows is not None else 2**62,
                "excluded": sorted(excluded_users),
            },
        ).df()
    frame = frame.sort_values(["event_timestamp", "session_id"], ignore_index=True)
    frame["event_timestamp"] = pd.to_datetime(frame["event_timestamp"], utc=True)
    frame["request_ts_s"] = frame["event_timestamp"].dt.as_unit("s").astype("int64")
    frame["label"] = frame["label"].astype("int8")
    return frame
