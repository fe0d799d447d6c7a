"""What serving reads of a user's features at a decision's instant, on the flow's store
(its session view materialized from the replayed history): values past their view's
TTL, or a session snapshot dated after the instant, are blanked with the recency
measured from them, as training's point-in-time join leaves them."""

from __future__ import annotations

from datetime import timedelta

import duckdb
import pytest

from feature_repo.store import open_store
from serving.decision.features import OnlineFeatures
from tests.support.flow import CLOCK_START, Flow

SESSION_VALUES = ("session_events_30m", "cart_items", "minutes_since_session_event_now")


@pytest.fixture(scope="module")
def reader(flow: Flow) -> OnlineFeatures:
    return OnlineFeatures(
        open_store(flow.settings()),
        "personalization_v1",
        budget_ms=30_000,
        breaker_seconds=1,
        breaker_failures=99,
        session_ahead_seconds=60,
    )


@pytest.fixture(scope="module")
def last_snapshot(flow: Flow) -> tuple[int, int]:
    """A user with an open cart at the end of the history, and the epoch second of
    their last session snapshot there (the one the online store holds)."""
    part = flow.settings().session_log_dir / "part-history.parquet"
    with duckdb.connect() as connection:
        row = connection.execute(
            "SELECT user_id, epoch(max(event_timestamp)) FROM read_parquet(?) GROUP BY user_id "
            "HAVING arg_max(cart_items, event_timestamp) > 0 ORDER BY user_id LIMIT 1",
            [str(part)],
        ).fetchone()
    assert row is not None, "no user ends the history with an open cart"
    return int(row[0]), int(row[1])


def test_a_fresh_session_snapshot_is_read(reader, last_snapshot):
    user, written = last_snapshot
    read = reader.user_features(user, "mobile", "US", written + 600)
    assert read.values["cart_items"] > 0
    assert read.values["minutes_since_session_event_now"] == pytest.approx(10, abs=1)
    assert read.stale_views == []


def test_a_session_after_the_decision_instant_is_not_read(reader, last_snapshot):
    """A replayed moment (a simulation, a past context.timestamp) must not see a session
    that had not happened yet; a minute of clock skew is tolerated."""
    user, written = last_snapshot
    skewed = reader.user_features(user, "mobile", "US", written - 30)
    assert skewed.values["cart_items"] > 0
    earlier = reader.user_features(
        user, "mobile", "US", written - int(timedelta(hours=1).total_seconds())
    )
    assert {name: earlier.values[name] for name in SESSION_VALUES} == dict.fromkeys(SESSION_VALUES)
    assert earlier.values["tenure_days"] is not None  # batch views are read as stored
    assert earlier.stale_views == []


def test_expired_values_go_with_the_recency_measured_from_them(reader, last_snapshot):
    """Five days after the history: the daily marts and the session are past their TTL."""
    user, _ = last_snapshot
    later = reader.user_features(
        user, "mobile", "US", int((CLOCK_START + timedelta(days=5)).timestamp())
    )
    assert {name: later.values[name] for name in SESSION_VALUES} == dict.fromkeys(SESSION_VALUES)
    assert later.values["tenure_days"] is None
    assert later.values["hours_since_last_event_now"] is None
    assert later.stale_views == ["user_behavior"]  # an away user's session is not a stall
