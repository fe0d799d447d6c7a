"""End-to-end tests of the dbt project: real `dbt build` runs on hand-made events.

Every expected value below is computed by hand from `EVENTS`; the comments give the
arithmetic. dbt takes a few seconds per invocation, so each dataset is built once per
module.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from feast import FeatureView
from feast.types import Float64, Int64, String

from feature_repo.feature_views import category_stats, user_behavior
from pipelines.transform import (
    MissingEventsError,
    TransformError,
    TransformReport,
    run_transformations,
)
from tailor.core.events import EVENT_SCHEMA
from tailor.core.settings import TailorSettings


def _event(
    event_id: str,
    user_id: int,
    session_id: str,
    event_type: str,
    ts: str,
    category: str | None = None,
    price: float | None = None,
    device: str = "desktop",
) -> dict[str, object]:
    return {
        "event_id": event_id,
        "user_id": user_id,
        "session_id": session_id,
        "event_type": event_type,
        "item_id": 1,
        "category": category,
        "price": price,
        "device": device,
        "country": "DE",
        "ts": datetime.fromisoformat(ts).replace(tzinfo=UTC),
    }


EVENTS = [
    # User 1: day 1 (03-01), an abandoned mobile session of 600 s.
    _event("u1-1", 1, "s1", "view", "2024-03-01 10:00:00", "shoes", device="mobile"),
    _event("u1-2", 1, "s1", "add_to_cart", "2024-03-01 10:05:00", "shoes", 50.0, "mobile"),
    _event("u1-3", 1, "s1", "view", "2024-03-01 10:10:00", "hats", device="mobile"),
    # Day 2 (03-02): a desktop session of 1800 s whose cart ends in a purchase.
    _event("u1-4", 1, "s2", "view", "2024-03-02 09:00:00", "shoes"),
    _event("u1-5", 1, "s2", "add_to_cart", "2024-03-02 09:10:00", "shoes", 50.0),
    _event("u1-6", 1, "s2", "purchase", "2024-03-02 09:30:00", "shoes", 50.0),
    # Day 8 (03-08): 300 s, one uncategorized view.
    _event("u1-7", 1, "s3", "view", "2024-03-08 12:00:00", "hats"),
    _event("u1-8", 1, "s3", "view", "2024-03-08 12:05:00"),
    # Day 10 (03-10): an abandoned mobile session of 30 s; hats now tie shoes 5-5.
    _event("u1-9", 1, "s4", "view", "2024-03-10 20:00:00", "hats", device="mobile"),
    _event("u1-10", 1, "s4", "view", "2024-03-10 20:00:15", "hats", device="mobile"),
    _event("u1-11", 1, "s4", "add_to_cart", "2024-03-10 20:00:30", "hats", 20.0, "mobile"),
    # A session crossing midnight: cart on 03-11, purchase on 03-12.
    _event("u1-12", 1, "s5", "add_to_cart", "2024-03-11 23:59:00", "hats", 20.0, "tablet"),
    _event("u1-13", 1, "s5", "purchase", "2024-03-12 00:01:00", "hats", 20.0, "tablet"),
    # User 2 spans the dataset: 03-01 to 04-05.
    _event("u2-1", 2, "s20", "view", "2024-03-01 08:00:00", "shoes", device="tablet"),
    _event("u2-2", 2, "s21", "view", "2024-04-05 15:00:00", "hats"),
    # User 3 starts on 03-20.
    _event("u3-1", 3, "s30", "view", "2024-03-20 10:00:00", "hats"),
    _event("u3-2", 3, "s30", "purchase", "2024-03-20 10:02:00", "hats", 20.0),
]
# A replay of u3-1 an hour later, in another part file: only the earliest copy counts.
REPLAYED = _event("u3-1", 3, "s30", "view", "2024-03-20 11:00:00", "hats")

FIRST_DAY, LAST_DAY = date(2024, 3, 1), date(2024, 4, 5)
DATASET_DAYS = (LAST_DAY - FIRST_DAY).days + 1  # 36


def _write_events(data_dir: Path, parts: list[list[dict[str, object]]]) -> TailorSettings:
    settings = TailorSettings(data_dir=data_dir)
    settings.events_dir.mkdir(parents=True)
    for index, rows in enumerate(parts):
        table = pa.Table.from_pylist(rows, schema=EVENT_SCHEMA)
        pq.write_table(table, settings.events_dir / f"part-{index:05d}.parquet")
    return settings


def _epoch_s(ts: str) -> int:
    return int(datetime.fromisoformat(ts).replace(tzinfo=UTC).timestamp())


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> TransformReport:
    settings = _write_events(tmp_path_factory.mktemp("full"), [EVENTS[:8], [*EVENTS[8:], REPLAYED]])
    return run_transformations(settings)


@pytest.fixture(scope="module")
def users(build: TransformReport) -> pd.DataFrame:
    return pd.read_parquet(build.mart_paths["user_daily_features"])


@pytest.fixture(scope="module")
def categories(build: TransformReport) -> pd.DataFrame:
    return pd.read_parquet(build.mart_paths["category_daily_features"])


def _user_row(users: pd.DataFrame, user_id: int, day: str) -> pd.Series:
    rows = users[(users.user_id == user_id) & (users.snapshot_date == date.fromisoformat(day))]
    assert len(rows) == 1, f"expected one row for user {user_id} on {day}"
    return rows.iloc[0]


def _category_row(categories: pd.DataFrame, category: str, day: str) -> pd.Series:
    rows = categories[
        (categories.category == category) & (categories.snapshot_date == date.fromisoformat(day))
    ]
    assert len(rows) == 1, f"expected one row for {category} on {day}"
    return rows.iloc[0]


def test_report_counts_models_tests_and_rows(build: TransformReport) -> None:
    assert build.models_built == 11
    assert build.tests_passed > 50
    # Users 1 and 2 from 03-01 and user 3 from 03-20 (17 days), to 04-05.
    assert build.mart_rows == {
        "user_daily_features": 2 * DATASET_DAYS + 17,
        "category_daily_features": 2 * DATASET_DAYS,
    }
    assert build.seconds > 0


_KINDS = {Int64: pa.types.is_integer, Float64: pa.types.is_floating, String: pa.types.is_string}


@pytest.mark.parametrize(
    ("mart", "view"),
    [("user_daily_features", user_behavior), ("category_daily_features", category_stats)],
)
def test_marts_have_every_column_their_feature_view_reads(
    build: TransformReport, mart: str, view: FeatureView
) -> None:
    """The feature view is the declaration (windows included); the mart must follow it."""
    schema = pq.read_schema(build.mart_paths[mart])
    for key in view.join_keys:
        assert schema.field(key).type == pa.int64() or pa.types.is_string(schema.field(key).type)
    assert schema.field("feature_ts").type == pa.timestamp("us", tz="UTC")
    mismatched = {
        field.name: str(schema.field(field.name).type) if field.name in schema.names else None
        for field in view.schema
        if field.name not in schema.names or not _KINDS[field.dtype](schema.field(field.name).type)
    }
    assert mismatched == {}, f"{mart} does not match {view.name}: {mismatched}"


def test_first_day_counts_and_feature_ts(users: pd.DataFrame) -> None:
    row = _user_row(users, 1, "2024-03-01")
    assert row.feature_ts == pd.Timestamp("2024-03-02 00:00:00", tz="UTC")
    assert (row.events_1d, row.views_1d, row.carts_1d, row.purchases_1d) == (3, 2, 1, 0)
    assert (row.sessions_1d, row.revenue_1d, row.tenure_days) == (1, 0.0, 1)
    assert row.last_event_epoch_s == _epoch_s("2024-03-01 10:10:00")
    assert row.hours_since_last_event == pytest.approx(13 + 50 / 60)
    assert pd.isna(row.hours_since_last_purchase)


def test_revenue_counts_purchases_only(users: pd.DataFrame) -> None:
    row = _user_row(users, 1, "2024-03-02")
    # Carts carry a price too; only the purchase's 50 is revenue.
    assert (row.revenue_1d, row.revenue_7d, row.revenue_30d) == (50.0, 50.0, 50.0)
    assert (row.events_7d, row.carts_7d, row.purchases_7d, row.sessions_7d) == (6, 2, 1, 2)


def test_seven_day_window_edges(users: pd.DataFrame) -> None:
    # 03-07's window is 03-01..03-07: day 1 (6 days before) is in.
    edge_in = _user_row(users, 1, "2024-03-07")
    assert (edge_in.events_7d, edge_in.sessions_7d, edge_in.abandoned_carts_7d) == (6, 2, 1)
    # 03-08's window is 03-02..03-08: day 1 (7 days before) is out.
    edge_out = _user_row(users, 1, "2024-03-08")
    assert (edge_out.events_7d, edge_out.views_7d, edge_out.carts_7d) == (5, 3, 1)
    assert (edge_out.sessions_7d, edge_out.abandoned_carts_7d) == (2, 0)
    assert (edge_out.events_30d, edge_out.abandoned_carts_30d) == (8, 1)


def test_thirty_day_window_edges(users: pd.DataFrame) -> None:
    # 03-30's window starts on day 1; 03-31's does not: day 1 had 3 events.
    assert _user_row(users, 1, "2024-03-30").events_30d == 13
    assert _user_row(users, 1, "2024-03-31").events_30d == 10
    assert _user_row(users, 1, "2024-03-31").views_30d == 5


def test_inactive_days_are_dense_and_recency_grows(users: pd.DataFrame) -> None:
    user_1 = users[users.user_id == 1].sort_values("snapshot_date")
    assert list(user_1.snapshot_date) == list(pd.date_range(FIRST_DAY, LAST_DAY).date)
    quiet = [_user_row(users, 1, f"2024-03-0{day}") for day in (3, 4, 5, 6)]
    assert [row.events_1d for row in quiet] == [0, 0, 0, 0]
    assert [row.sessions_1d for row in quiet] == [0, 0, 0, 0]
    # Last event 03-02 09:30; feature_ts of 03-05 is 03-06 00:00.
    assert [row.hours_since_last_event for row in quiet] == pytest.approx([38.5, 62.5, 86.5, 110.5])
    assert [row.tenure_days for row in quiet] == [3, 4, 5, 6]
    last = _user_row(users, 1, "2024-04-05")
    assert last.tenure_days == DATASET_DAYS
    assert last.hours_since_last_event == pytest.approx(25 * 24 - 1 / 60)
    assert last.last_event_epoch_s == _epoch_s("2024-03-12 00:01:00")


def test_user_rows_start_on_first_event_day(users: pd.DataFrame) -> None:
    user_3 = users[users.user_id == 3]
    assert user_3.snapshot_date.min() == date(2024, 3, 20)
    assert len(user_3) == 17


def test_replayed_event_is_counted_once_at_its_first_time(users: pd.DataFrame) -> None:
    row = _user_row(users, 3, "2024-03-20")
    assert (row.events_1d, row.views_1d, row.purchases_1d) == (2, 1, 1)
    # The replay at 11:00 would otherwise be the last event.
    assert row.last_event_epoch_s == _epoch_s("2024-03-20 10:02:00")


def test_abandoned_carts_and_rate(users: pd.DataFrame) -> None:
    first = _user_row(users, 1, "2024-03-01")
    assert (first.abandoned_carts_7d, first.cart_abandonment_rate_30d) == (1, 1.0)
    # s2 had a cart and a purchase: 1 abandoned of 2 cart sessions.
    assert _user_row(users, 1, "2024-03-02").cart_abandonment_rate_30d == pytest.approx(0.5)
    # s1 and s4 abandoned, s2 converted.
    row = _user_row(users, 1, "2024-03-10")
    assert (row.abandoned_carts_7d, row.abandoned_carts_30d) == (1, 2)
    assert row.cart_abandonment_rate_30d == pytest.approx(2 / 3)
    assert pd.isna(_user_row(users, 2, "2024-03-01").cart_abandonment_rate_30d)


def test_open_cart_flips_after_purchase(users: pd.DataFrame) -> None:
    flags = {day: _user_row(users, 1, day).has_open_cart for day in ("2024-03-01", "2024-03-02")}
    assert flags == {"2024-03-01": 1, "2024-03-02": 0}
    assert _user_row(users, 1, "2024-03-10").has_open_cart == 1
    assert _user_row(users, 2, "2024-03-01").has_open_cart == 0
    purchased = _user_row(users, 1, "2024-03-02")
    assert purchased.hours_since_last_purchase == pytest.approx(14.5)


def test_top_category_share_and_ties(users: pd.DataFrame) -> None:
    first = _user_row(users, 1, "2024-03-01")
    assert (first.top_category_30d, first.distinct_categories_30d) == ("shoes", 2)
    assert first.top_category_share_30d == pytest.approx(2 / 3)
    # The uncategorized view of 03-08 is left out: shoes 5 of 7 categorized events.
    assert _user_row(users, 1, "2024-03-08").top_category_share_30d == pytest.approx(5 / 7)
    # Hats and shoes tie 5-5: the alphabetically first wins.
    tie = _user_row(users, 1, "2024-03-10")
    assert (tie.top_category_30d, tie.top_category_share_30d) == ("hats", 0.5)
    # The whole mix, keyed alphabetically: the top share is its largest entry.
    assert json.loads(tie.category_events_30d) == {"hats": 5, "shoes": 5}
    mix = json.loads(_user_row(users, 1, "2024-03-08").category_events_30d)
    assert mix["shoes"] == 5 and sum(mix.values()) == 7 and list(mix) == sorted(mix)
    # Only u2-1 in 03-01's window is left for user 2 by 03-30; none by 03-31.
    assert _user_row(users, 2, "2024-03-30").top_category_30d == "shoes"
    gone = _user_row(users, 2, "2024-03-31")
    assert pd.isna(gone.top_category_30d) and pd.isna(gone.top_category_share_30d)
    assert gone.distinct_categories_30d == 0
    assert pd.isna(gone.category_events_30d)


def test_sessions_duration_and_device_share(users: pd.DataFrame) -> None:
    day_2 = _user_row(users, 1, "2024-03-02")
    assert (day_2.mean_session_seconds_30d, day_2.mobile_share_30d) == (1200.0, 0.5)
    # s1 600 s, s2 1800 s, s3 300 s, s4 30 s; s1 and s4 on mobile.
    day_10 = _user_row(users, 1, "2024-03-10")
    assert day_10.sessions_30d == 4
    assert day_10.mean_session_seconds_30d == pytest.approx(682.5)
    assert day_10.mobile_share_30d == pytest.approx(0.5)
    idle = _user_row(users, 2, "2024-03-31")
    assert idle.sessions_30d == 0
    assert pd.isna(idle.mean_session_seconds_30d) and pd.isna(idle.mobile_share_30d)


def test_session_crossing_midnight_is_dated_by_its_start(users: pd.DataFrame) -> None:
    before = _user_row(users, 1, "2024-03-11")
    after = _user_row(users, 1, "2024-03-12")
    assert (before.sessions_1d, after.sessions_1d) == (1, 0)
    assert (before.has_open_cart, after.has_open_cart) == (1, 0)
    # Its facts come from 03-11 alone, so it stays an abandoned cart: no leakage.
    assert (before.abandoned_carts_7d, after.abandoned_carts_7d) == (2, 2)
    assert after.hours_since_last_purchase == pytest.approx(24 - 1 / 60)


def test_category_counts_conversion_and_popularity(categories: pd.DataFrame) -> None:
    assert set(categories.category) == {"shoes", "hats"}
    shoes = _category_row(categories, "shoes", "2024-03-02")
    assert shoes.feature_ts == pd.Timestamp("2024-03-03 00:00:00", tz="UTC")
    assert (shoes.views_7d, shoes.purchases_7d, shoes.views_30d, shoes.purchases_30d) == (
        3,
        1,
        3,
        1,
    )
    assert shoes.conversion_rate_30d == pytest.approx(1 / 3)
    # All views in 03-01..03-02: 3 shoes + 1 hats.
    assert shoes.popularity_7d == pytest.approx(0.75)
    # 03-04..03-10: 3 hats views of 4 (the fourth is uncategorized).
    hats = _category_row(categories, "hats", "2024-03-10")
    assert (hats.views_7d, hats.popularity_7d, hats.conversion_rate_30d) == (3, 0.75, 0.0)
    assert _category_row(categories, "hats", "2024-03-20").conversion_rate_30d == pytest.approx(
        2 / 5
    )
    no_views = _category_row(categories, "shoes", "2024-04-05")
    assert pd.isna(no_views.conversion_rate_30d)
    assert no_views.popularity_7d == 0.0
    # 03-22..03-28 has no views at all.
    assert pd.isna(_category_row(categories, "hats", "2024-03-28").popularity_7d)


def test_later_events_do_not_change_earlier_rows(
    users: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # Rebuild from the events up to 03-11 only: every row through 03-11 must be equal.
    cutoff = datetime(2024, 3, 12, tzinfo=UTC)
    truncated = _write_events(
        tmp_path_factory.mktemp("truncated"), [[e for e in EVENTS if e["ts"] < cutoff]]
    )
    report = run_transformations(truncated)
    earlier = pd.read_parquet(report.mart_paths["user_daily_features"])
    full = users[users.snapshot_date <= date(2024, 3, 11)]
    key = ["user_id", "snapshot_date"]
    pd.testing.assert_frame_equal(
        earlier.sort_values(key).reset_index(drop=True),
        full.sort_values(key).reset_index(drop=True),
    )
    day_11 = _user_row(earlier, 1, "2024-03-11")
    assert day_11.feature_ts == pd.Timestamp("2024-03-12 00:00:00", tz="UTC")
    assert (day_11.purchases_1d, day_11.has_open_cart) == (0, 1)


def test_missing_events_say_how_to_get_them(tmp_path: Path) -> None:
    with pytest.raises(MissingEventsError, match="tailor generate"):
        run_transformations(TailorSettings(data_dir=tmp_path))


def test_failed_data_test_names_the_test(tmp_path: Path) -> None:
    settings = _write_events(
        tmp_path, [[_event("bad-1", 9, "s90", "click", "2024-03-01 10:00:00", "hats")]]
    )
    with pytest.raises(TransformError, match=r"accepted_values_stg_events_event_type"):
        run_transformations(settings)
