"""Point-in-time correctness of training data, against a real Feast store on hand-made marts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from feast.types import Float64, Int64, String

from feature_repo.feature_views import category_stats, user_behavior
from feature_repo.store import open_store
from pipelines.apply import apply_definitions
from tailor.core.settings import TailorSettings

DAY = datetime(2026, 3, 2, tzinfo=UTC)
FILLERS = {Int64: 1, Float64: 0.5, String: "books"}


def _mart_rows(view, key: str, key_value, rows: list[tuple[datetime, int]]) -> pd.DataFrame:
    """Rows of a mart for one key: (feature_ts, marker) where every Int64 feature = marker."""
    records = []
    for feature_ts, marker in rows:
        record = {key: key_value, "feature_ts": feature_ts, "snapshot_date": feature_ts.date()}
        for field in view.schema:
            record[field.name] = marker if field.dtype == Int64 else FILLERS[field.dtype]
        records.append(record)
    frame = pd.DataFrame.from_records(records)
    frame["feature_ts"] = pd.to_datetime(frame["feature_ts"], utc=True).astype(
        "datetime64[us, UTC]"
    )
    return frame


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    settings = TailorSettings(data_dir=tmp_path_factory.mktemp("pit"))
    settings.marts_dir.mkdir(parents=True)
    users = pd.concat(
        [
            _mart_rows(user_behavior, "user_id", 1, [(DAY, 10), (DAY + timedelta(days=2), 30)]),
            _mart_rows(user_behavior, "user_id", 2, [(DAY + timedelta(days=1), 20)]),
        ]
    )
    users.to_parquet(settings.marts_dir / "user_daily_features.parquet", coerce_timestamps="us")
    _mart_rows(category_stats, "category", "books", [(DAY, 5)]).to_parquet(
        settings.marts_dir / "category_daily_features.parquet", coerce_timestamps="us"
    )
    apply_definitions(settings)
    return open_store(settings)


def _historical(store, entity_rows: list[tuple[int, datetime]]) -> pd.DataFrame:
    entities = pd.DataFrame(entity_rows, columns=["user_id", "event_timestamp"])
    entities["row"] = range(len(entities))
    frame = store.get_historical_features(
        entity_df=entities, features=["user_behavior:sessions_30d"]
    ).to_df()
    return frame.sort_values("row").set_index("row")


def test_a_row_dated_after_the_observation_never_reaches_it(store):
    frame = _historical(
        store,
        [
            (1, DAY - timedelta(seconds=1)),  # before any row
            (1, DAY),  # exactly at the first row: known at that instant
            (1, DAY + timedelta(days=2) - timedelta(microseconds=1)),  # just before the 2nd
            (1, DAY + timedelta(days=2)),
            (2, DAY + timedelta(hours=23)),  # user 2's only row is dated later
        ],
    )
    assert pd.isna(frame.loc[0, "sessions_30d"])
    assert frame.loc[1, "sessions_30d"] == 10
    assert frame.loc[2, "sessions_30d"] == 10
    assert frame.loc[3, "sessions_30d"] == 30
    assert pd.isna(frame.loc[4, "sessions_30d"])


def test_rows_older_than_the_ttl_are_not_joined(store):
    frame = _historical(
        store, [(1, DAY + timedelta(days=2) + user_behavior.ttl + timedelta(hours=1))]
    )
    assert pd.isna(frame.loc[0, "sessions_30d"])


def test_the_feature_service_computes_request_features_point_in_time(store):
    entities = pd.DataFrame(
        {
            "user_id": [1, 1],
            "event_timestamp": [DAY + timedelta(hours=20), DAY + timedelta(days=2, hours=3)],
            "device": ["mobile", "desktop"],
            "country": ["DE", "US"],
        }
    )
    entities["request_ts_s"] = entities["event_timestamp"].astype("int64") // 10**9
    service = store.get_feature_service("personalization_v1")
    frame = store.get_historical_features(entity_df=entities, features=service).to_df()
    frame = frame.sort_values("event_timestamp", ignore_index=True)
    assert list(frame["sessions_30d"]) == [10, 30]
    assert list(frame["is_mobile"]) == [1, 0]
    assert list(frame["hour_of_day"]) == [20, 3]
    # last_event_epoch_s is 10 (marker) in the first row, 30 in the second.
    expected = [
        (entities["request_ts_s"][0] - 10) / 3600,
        (entities["request_ts_s"][1] - 30) / 3600,
    ]
    assert frame["hours_since_last_event_now"].tolist() == pytest.approx(expected)
