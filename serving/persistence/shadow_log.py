"""The shadow log: each shadow arm's decision beside the served one, kept like the
decision log (buffered, batched, spilled through an outage) and read by off-policy
evaluation and the shadow report."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Engine

from serving.decision.shadow import ShadowRecord
from serving.persistence.durable_writer import DurableWriter, WriterOptions
from tailor.core.database.engine import insert_ignoring_conflicts
from tailor.core.database.schema import shadow_decisions


class _Shadows:
    name = "shadow_decisions"

    def __init__(self, engine: Engine) -> None:
        self._insert = insert_ignoring_conflicts(engine, shadow_decisions)

    def key(self, record: ShadowRecord) -> tuple[str, str, str]:
        return record.decision_id, record.experiment_key, record.arm

    def to_json(self, record: ShadowRecord) -> dict[str, Any]:
        return record.to_json_dict()

    def from_json(self, data: dict[str, Any]) -> ShadowRecord:
        return ShadowRecord.from_json_dict(data)

    def write(self, connection: Connection, batch: list[ShadowRecord]) -> list[ShadowRecord]:
        connection.execute(self._insert, [vars(record) for record in batch])
        return []


class ShadowLog(DurableWriter[ShadowRecord]):
    def __init__(self, engine: Engine, options: WriterOptions) -> None:
        super().__init__(engine, _Shadows(engine), options)
