"""Session snapshots to Feast: online at once, to the offline log in batches.

The offline log is a folder of Parquet parts that Feast reads as one source. Feast's
own offline push to a Parquet source reads, concatenates and rewrites the whole file:
O(history) per call, and two workers doing it at once lose each other's rows. So each
flush writes a new part of its own (renamed into place, never half-visible), at most
every `offline_flush_seconds`. Callers acknowledge stream entries only after the
flush that covers them, so a crash loses no offline row either.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from feast import FeatureStore
from feast.types import from_feast_to_pyarrow_type

from feature_repo.data_sources import session_log_source, session_push
from feature_repo.feature_views import session_activity

# Generated from the feature view, its one declaration: the entity key, the source's
# timestamp, then every feature in the view's order with its Feast type in Arrow.
SESSION_LOG_SCHEMA = pa.schema(
    [
        ("user_id", pa.int64()),
        (session_log_source.timestamp_field, pa.timestamp("us", tz="UTC")),
        *(
            (field.name, from_feast_to_pyarrow_type(field.dtype))
            for field in session_activity.features
        ),
    ]
)


def ensure_session_log(folder: Path) -> None:
    """An empty part gives the source its schema before any worker has flushed."""
    folder.mkdir(parents=True, exist_ok=True)
    if not any(folder.glob("*.parquet")):
        pq.write_table(SESSION_LOG_SCHEMA.empty_table(), folder / "part-empty.parquet")


def write_part(folder: Path, name: str, table: pa.Table) -> Path:
    """Write one part of the log, renamed into place so no reader sees half of it, and
    replacing a part of the same name whole."""
    folder.mkdir(parents=True, exist_ok=True)
    temporary = folder / f".{name}.tmp"  # not matched by the source's *.parquet
    pq.write_table(table, temporary)
    os.replace(temporary, folder / name)
    return folder / name


def _frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    table = pa.Table.from_pylist(rows, schema=SESSION_LOG_SCHEMA)
    return table.to_pandas()


class SessionFeaturePusher:
    """Online writes go to the push source's views through `write_to_online_store`:
    `FeatureStore.push` also re-lists every feature service from the registry on each
    call (uncached; a PostgreSQL query under the SQL registry), which was half the
    cost of a small batch."""

    def __init__(
        self, store: FeatureStore, log_dir: Path, writer: str, offline_flush_seconds: float
    ) -> None:
        self._store = store
        self._log_dir = log_dir
        self._writer = writer
        self._views: list[str] = []
        self._flush_every = offline_flush_seconds
        self._buffer: list[dict[str, Any]] = []
        self._last_flush = time.monotonic()
        self._lock = threading.Lock()

    def _push_views(self) -> list[str]:
        if not self._views:  # resolved on first use: the API may start before `tailor apply`
            self._views = [
                view.name
                for view in self._store.list_feature_views()
                if view.stream_source is not None and view.stream_source.name == session_push.name
            ]
        if not self._views:
            raise RuntimeError(
                f"no feature view reads push source {session_push.name}; run tailor apply"
            )
        return self._views

    def push_online(self, rows: list[dict[str, Any]]) -> None:
        if rows:
            frame = _frame(rows)
            for view in self._push_views():
                self._store.write_to_online_store(view, frame, allow_registry_cache=True)
        with self._lock:
            self._buffer.extend(rows)

    def offline_due(self) -> bool:
        return time.monotonic() - self._last_flush >= self._flush_every

    def flush_offline(self) -> int:
        """Append the buffered rows to the offline log; returns how many were written."""
        with self._lock:  # held only to swap: online pushes go on during the write
            rows, self._buffer = self._buffer, []
        try:
            if rows:
                write_part(
                    self._log_dir,
                    f"part-{self._writer}-{time.time_ns()}.parquet",
                    pa.Table.from_pylist(rows, schema=SESSION_LOG_SCHEMA),
                )
        except Exception:
            with self._lock:
                self._buffer = rows + self._buffer
            raise
        self._last_flush = time.monotonic()
        return len(rows)
