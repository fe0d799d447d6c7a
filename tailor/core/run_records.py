"""The history of materialization runs, so operators and /health can see the last success.

The scheduler writes them and the API reads them: a JSON file beside the embedded
store, a Redis list on the redis profile.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import redis

from tailor.core.clients import redis_client
from tailor.core.settings import TailorSettings


@dataclass(frozen=True)
class RunRecord:
    started_at: str  # ISO 8601, UTC
    finished_at: str
    ok: bool
    mode: str | None = None  # "full" or "incremental"
    window_start: str | None = None
    window_end: str | None = None
    entities_per_view: dict[str, int] | None = None
    seconds: float | None = None
    error: str | None = None
    runner: str | None = None  # host-pid of the process that ran it

    @classmethod
    def from_json(cls, raw: str | bytes) -> RunRecord:
        return cls(**json.loads(raw))

    def to_json(self) -> str:
        return json.dumps(asdict(self))


class RunRecords(Protocol):
    def add(self, record: RunRecord) -> None: ...

    def recent(self) -> list[RunRecord]:
        """Newest first."""


def last_success(records: RunRecords) -> RunRecord | None:
    return next((record for record in records.recent() if record.ok), None)


class FileRunRecords:
    """A JSON file, replaced atomically; only the lock holder writes it."""

    def __init__(self, path: Path, keep: int) -> None:
        self._path = path
        self._keep = keep

    def recent(self) -> list[RunRecord]:
        if not self._path.exists():
            return []
        entries: list[dict[str, Any]] = json.loads(self._path.read_text())
        return [RunRecord(**entry) for entry in entries]

    def add(self, record: RunRecord) -> None:
        entries = [asdict(record), *(asdict(r) for r in self.recent()[: self._keep - 1])]
        self._path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self._path.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(json.dumps(entries, indent=1))
        os.replace(temporary, self._path)


class RedisRunRecords:
    def __init__(self, client: redis.Redis, key: str, keep: int) -> None:
        self._client = client
        self._key = key
        self._keep = keep

    def recent(self) -> list[RunRecord]:
        return [RunRecord.from_json(raw) for raw in self._client.lrange(self._key, 0, -1)]

    def add(self, record: RunRecord) -> None:
        with self._client.pipeline() as pipe:
            pipe.lpush(self._key, record.to_json())
            pipe.ltrim(self._key, 0, self._keep - 1)
            pipe.execute()


def run_records(settings: TailorSettings) -> RunRecords:
    keep = settings.scheduler.keep_runs
    if settings.profile == "redis":
        return RedisRunRecords(redis_client(settings), f"{settings.project}:materialize:runs", keep)
    return FileRunRecords(settings.feature_store_dir / "materialize_runs.json", keep)
