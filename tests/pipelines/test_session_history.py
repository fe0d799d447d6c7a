"""The demo's history reaches training's session features, from before each session."""

from __future__ import annotations

import json

import duckdb
import pandas as pd
import pyarrow.parquet as pq

from feature_repo.feature_views import session_activity
from feature_repo.store import open_store
from pipelines.streaming.backfill import HISTORY_PART
from pipelines.training.dataset import historical_features
from pipelines.training.observations import build_observations
from tests.support.flow import SESSION_FEATURES, Flow

# Independently of the replay: each session's previous event of the same user, if any.
PREVIOUS_EVENT_SQL = """
WITH events AS (SELECT DISTINCT user_id, ts FROM read_parquet($glob))
SELECT o.session_id, e.ts AS previous_ts
FROM observations o ASOF LEFT JOIN events e ON o.user_id = e.user_id AND e.ts < o.event_timestamp
"""


def test_the_history_is_logged_one_row_per_event(flow: Flow):
    settings = flow.settings()
    log = pq.read_table(settings.session_log_dir / HISTORY_PART)
    with duckdb.connect() as connection:
        events = connection.execute(
            "SELECT count(DISTINCT event_id) FROM read_parquet($glob)",
            {"glob": str(settings.events_dir / "*.parquet")},
        ).fetchone()[0]
    assert log.num_rows == events


def test_the_model_leans_on_the_session_features(flow: Flow):
    metadata = json.loads((flow.models_dir / "latest" / "metadata.json").read_text())
    gains = metadata["feature_importance_gain"]
    assert set(gains) >= SESSION_FEATURES
    assert sum(gains[name] for name in SESSION_FEATURES) > 0.02 * sum(gains.values())


def test_each_session_joins_the_state_from_before_its_first_event(flow: Flow):
    settings = flow.settings()
    observations = build_observations(
        settings.events_dir, horizon_hours=24, max_rows=400, excluded_users=()
    )
    store = open_store(settings)
    frame = historical_features(
        store, store.get_feature_service("personalization_v1"), observations
    )
    with duckdb.connect() as connection:
        connection.register("observations", observations)
        previous = connection.execute(
            PREVIOUS_EVENT_SQL, {"glob": str(settings.events_dir / "*.parquet")}
        ).df()
    frame = frame.merge(previous, on="session_id", validate="one_to_one")
    gap = frame["event_timestamp"] - pd.to_datetime(frame["previous_ts"], utc=True)
    fresh = gap <= session_activity.ttl  # a snapshot older than the view's TTL is not joined
    assert fresh.mean() > 0.5  # the demo's users come back within a day more often than not
    expected = frame.loc[fresh, "previous_ts"].map(lambda ts: int(ts.timestamp()))
    assert frame.loc[fresh, "session_last_event_epoch_s"].astype("int64").equals(expected)
    assert frame.loc[~fresh, "session_events_30m"].isna().all()
    assert (frame.loc[fresh, "session_events_30m"] >= 1).all()
