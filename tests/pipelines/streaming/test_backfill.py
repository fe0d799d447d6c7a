"""The history backfill gives training the session values the stream gives serving.

The same events go through a stream processor (in-memory state, the real pusher into a
real Feast store, its clock at each event's time) and through the backfill; what
serving reads online just before and just after each event must be what Feast's
point-in-time join reads from the backfilled log at those instants (serving's own
reader, so its TTL guard applies as it does live).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import pytest

from feature_repo.feature_views import session_activity
from feature_repo.store import open_store
from pipelines.apply import apply_definitions
from pipelines.streaming.backfill import HISTORY_PART, replay, write_history
from pipelines.streaming.feature_push import SessionFeaturePusher
from pipelines.streaming.processor import SessionProcessor
from pipelines.streaming.state_store import InMemorySessionStore
from pipelines.training.dataset import DECISION_LEAD
from serving.decision.features import OnlineFeatures
from tailor.core.clock import ManualClock
from tailor.core.events import Event
from tailor.core.settings import TailorSettings

T0 = datetime(2026, 3, 2, 9, 0, 0, 250_000, tzinfo=UTC)
FEATURES = [field.name for field in session_activity.features]
MINUTE = timedelta(minutes=1)

# (user, minutes after T0, type, item, category, price): two users interleaved, views in
# two categories, adds, a remove, a purchase, a tie in time, a gap past the 30-minute
# window and one past the view's one-day TTL.
SCRIPT = [
    (1, 0, "view", 10, "books", 12.0),
    (2, 1, "view", 20, "toys", 5.0),
    (1, 2, "add_to_cart", 10, "books", 12.0),
    (1, 2, "view", 11, "garden", 30.0),  # same instant as the add
    (2, 3, "add_to_cart", 20, "toys", 5.0),
    (1, 5, "add_to_cart", 11, "garden", 30.0),
    (1, 9, "remove_from_cart", 10, "books", 12.0),
    (2, 20, "add_to_cart", 21, "toys", 7.5),
    (1, 70, "view", 12, "books", 8.0),  # a new session, the cart still open
    (1, 71, "purchase", 11, "garden", 30.0),
    (2, 80, "view", 22, "books", 3.0),
    (1, 75 + 26 * 60, "view", 13, "toys", 4.0),  # past the TTL of the last snapshot
    (2, 100 + 26 * 60, "remove_from_cart", 20, "toys", 5.0),
]
EVENTS = [
    Event(
        event_id=f"e{n}",
        user_id=user,
        session_id=f"s{user}-{minutes // 60}",
        event_type=kind,
        item_id=item,
        category=category,
        price=price,
        device="mobile",
        country="DE",
        ts=T0 + minutes * MINUTE,
    )
    for n, (user, minutes, kind, item, category, price) in enumerate(SCRIPT)
]


def _plain(value: Any) -> Any:
    """Online reads give Python values, a joined frame NaN and floats for missing ints."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value.item() if hasattr(value, "item") else value


@pytest.fixture(scope="module")
def store_settings(tmp_path_factory) -> TailorSettings:
    settings = TailorSettings(data_dir=tmp_path_factory.mktemp("backfill"))
    apply_definitions(settings)
    return settings


def _online(serving: OnlineFeatures, user_id: int, at: datetime) -> dict[str, Any]:
    """What a decision at `at` reads, the TTL applied as serving applies it."""
    values = serving.user_features(user_id, "mobile", "DE", int(at.timestamp())).values
    return {name: _plain(values[name]) for name in FEATURES}


def test_the_backfilled_log_joins_to_what_serving_read_online(store_settings, tmp_path):
    store = open_store(store_settings)
    serving = OnlineFeatures(
        store, "personalization_v1", budget_ms=30_000, breaker_seconds=1, breaker_failures=99
    )
    clock = ManualClock(T0)
    pusher = SessionFeaturePusher(store, tmp_path / "stream-log", "worker", 0.0)
    processor = SessionProcessor(InMemorySessionStore(3600, clock), pusher)
    seen: list[tuple[int, datetime, dict[str, Any]]] = []  # (user, instant, online values)
    dated: dict[int, datetime] = {}  # each user's latest snapshot's date
    for event in sorted(EVENTS, key=lambda e: (e.ts, e.event_id)):
        if event.user_id not in dated or dated[event.user_id] < event.ts:
            # a decision asked for as this event starts: the stream has not seen it yet
            at = event.ts - DECISION_LEAD
            seen.append((event.user_id, at, _online(serving, event.user_id, at)))
        clock.set(event.ts)
        processor.process([event])
        # a tie in time is dated a microsecond after the snapshot before it
        tie = dated.get(event.user_id, event.ts) + timedelta(microseconds=1)
        dated[event.user_id] = max(event.ts, tie)
        at = dated[event.user_id]
        seen.append((event.user_id, at, _online(serving, event.user_id, at)))
    pusher.flush_offline()

    ordered = sorted(EVENTS, key=lambda e: (e.user_id, e.ts, e.event_id))
    write_history(ordered, store_settings.session_log_dir)

    # The backfill logs row for row what the worker logged.
    streamed = pq.read_table(tmp_path / "stream-log").to_pandas()
    backfilled = pq.read_table(store_settings.session_log_dir / HISTORY_PART).to_pandas()
    key = ["user_id", "event_timestamp"]
    pd.testing.assert_frame_equal(
        backfilled.sort_values(key, ignore_index=True), streamed.sort_values(key, ignore_index=True)
    )

    entities = pd.DataFrame(
        {"user_id": [user for user, _, _ in seen], "event_timestamp": [at for _, at, _ in seen]}
    )
    entities["row"] = range(len(entities))
    joined = (
        store.get_historical_features(
            entity_df=entities, features=[f"session_activity:{name}" for name in FEATURES]
        )
        .to_df()
        .sort_values("row")
    )
    trained = [{name: _plain(row[name]) for name in FEATURES} for _, row in joined.iterrows()]
    assert trained == [online for _, _, online in seen]
    # The ties and the TTL are exercised: a row dated a microsecond after its event, and
    # a session that starts with no snapshot younger than a day.
    assert (backfilled["event_timestamp"].diff() == timedelta(microseconds=1)).any()
    assert any(values["session_events_30m"] is None for _, _, values in seen)


def test_a_rerun_replaces_the_history_part_and_keeps_the_workers_parts(tmp_path):
    log = tmp_path / "session"
    log.mkdir()
    (log / "part-worker-1.parquet").write_bytes(b"a worker's rows")
    ordered = sorted(EVENTS, key=lambda e: (e.user_id, e.ts, e.event_id))
    assert write_history(ordered, log)[:2] == (len(EVENTS), 2)
    write_history(ordered[:3], log)
    assert sorted(path.name for path in log.iterdir()) == [HISTORY_PART, "part-worker-1.parquet"]
    assert pq.read_table(log / HISTORY_PART).num_rows == 3
    assert (log / "part-worker-1.parquet").read_bytes() == b"a worker's rows"


def test_events_out_of_order_are_refused():
    with pytest.raises(ValueError, match="sorted by user_id, then ts"):
        list(replay(sorted(EVENTS, key=lambda e: e.ts)))
