"""Load the latest feature values into the online store.

A store that has never been materialized, or whose online side has lost the latest
values (a new or flushed Redis under an old registry), gets the full history:
Feast's incremental mode would only cover the time since the last run recorded in
the registry.

Push-fed views (live session features) are loaded only by a full materialization,
from their offline log: it holds every snapshot the stream workers pushed and the
history replayed through the same logic (`pipelines/streaming/backfill.py`), so a new
online store starts with each user's latest session state, as training saw it. An
incremental run leaves them alone: the workers keep them newer online than any log.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

import duckdb
from feast import FeatureStore, FeatureView, FileSource

from feature_repo.store import open_store
from tailor.core.settings import TailorSettings

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


def _online_side_is_empty(settings: TailorSettings, store: FeatureStore, view: FeatureView) -> bool:
    """True when none of a few keys with recent rows has a value online."""
    source = view.batch_source
    if not isinstance(source, FileSource) or not view.features:
        return False
    path = FileSource.get_uri_for_file_path(settings.data_dir, source.path)
    keys = ", ".join(view.join_keys)
    with duckdb.connect() as connection:
        sample = connection.execute(
            f"SELECT {keys} FROM read_parquet(?) ORDER BY {source.timestamp_field} DESC LIMIT 5",
            [path],
        ).fetchall()
    if not sample:
        return False
    feature = f"{view.name}:{view.features[0].name}"
    rows = [dict(zip(view.join_keys, values, strict=True)) for values in sample]
    values = store.get_online_features(features=[feature], entity_rows=rows).to_dict()
    return all(value is None for value in values[view.features[0].name])


def materialize(
    settings: TailorSettings, start: datetime | None = None, end: datetime | None = None
) -> MaterializeReport:
    started = time.perf_counter()
    store = open_store(settings)
    end = end or settings.clock.now()
    online = [view for view in store.list_feature_views() if view.online]
    views = [view for view in online if not view.stream_source]
    if not views:
        raise RuntimeError("no feature views are registered; run `tailor apply` first")
    names = [view.name for view in views]
    needs_history = start is not None or any(
        not view.materialization_intervals or _online_side_is_empty(settings, store, view)
        for view in views
    )
    if needs_history:
        mode = "full"
        window_start = start or FULL_HISTORY_START
        views = online
        names = [view.name for view in views]
        previous: dict[str, datetime | None] = dict.fromkeys(names)
        store.materialize(start_date=window_start, end_date=end, feature_views=names)
    else:
        mode = "incremental"
        previous = {view.name: view.most_recent_end_time for view in views}
        window_start = min(filter(None, previous.values()), default=None)
        store.materialize_incremental(end_date=end, feature_views=names)
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
