"""Load the latest feature values into the online store.

A store that has never been materialized (a new database, a switched profile) gets
the full history: Feast's incremental mode would only cover the time since the last
run recorded in the registry.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

import duckdb
from feast import FeatureView, FileSource

from pipelines.feature_store import open_store
from pipelines.settings import TailorSettings

FULL_HISTORY_START = datetime(2000, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class MaterializeReport:
    mode: str  # "full" or "incremental"
    start: datetime | None
    end: datetime
    entities_per_view: dict[str, int]
    seconds: float


def _entities_in_window(
    settings: TailorSettings, view: FeatureView, start: datetime | None, end: datetime
) -> int:
    """Distinct keys with a row in the window: the rows a materialization writes."""
    source = view.batch_source
    if not isinstance(source, FileSource):
        return -1
    path = FileSource.get_uri_for_file_path(settings.data_dir, source.path)
    keys = ", ".join(view.join_keys)
    query = (
        f"SELECT count(*) FROM (SELECT DISTINCT {keys} FROM read_parquet(?) "
        f"WHERE {source.timestamp_field} <= ? AND (? IS NULL OR {source.timestamp_field} > ?))"
    )
    with duckdb.connect() as connection:
        row = connection.execute(query, [path, end, start, start]).fetchone()
    return int(row[0]) if row else 0


def materialize(
    settings: TailorSettings, start: datetime | None = None, end: datetime | None = None
) -> MaterializeReport:
    started = time.perf_counter()
    store = open_store(settings)
    end = end or datetime.now(UTC)
    views = [view for view in store.list_feature_views() if view.online]
    if not views:
        raise RuntimeError("no feature views are registered; run `tailor apply` first")
    never_materialized = any(not view.materialization_intervals for view in views)
    if start is not None or never_materialized:
        mode = "full"
        window_start = start or FULL_HISTORY_START
        previous: dict[str, datetime | None] = {view.name: None for view in views}
        store.materialize(start_date=window_start, end_date=end)
    else:
        mode = "incremental"
        window_start = None
        previous = {view.name: view.most_recent_end_time for view in views}
        store.materialize_incremental(end_date=end)
    counts = {
        view.name: _entities_in_window(settings, view, previous[view.name] or start, end)
        for view in views
    }
    return MaterializeReport(
        mode=mode,
        start=window_start,
        end=end,
        entities_per_view=counts,
        seconds=time.perf_counter() - started,
    )
