"""Every decision, kept in the decision database without slowing the request that made
it (a `DurableWriter`: buffered, batched, spilled to disk through an outage)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Engine, select
from sqlalchemy.exc import SQLAlchemyError

from serving.persistence.durable_writer import DurableWriter, WriterOptions
from tailor.core.database.engine import insert_ignoring_conflicts
from tailor.core.database.schema import decisions
from tailor.core.decision_record import DecisionRecord


class DecisionLogUnavailable(RuntimeError):
    """The database cannot be read and the decision is not in this process's buffer."""


class _Decisions:
    name = "decisions"

    def __init__(self, engine: Engine) -> None:
        self._insert = insert_ignoring_conflicts(engine, decisions)

    def key(self, record: DecisionRecord) -> str:
        return record.decision_id

    def to_json(self, record: DecisionRecord) -> dict[str, Any]:
        return record.to_json_dict()

    def from_json(self, data: dict[str, Any]) -> DecisionRecord:
        return DecisionRecord.from_json_dict(data)

    def write(self, connection: Connection, batch: list[DecisionRecord]) -> list[DecisionRecord]:
        connection.execute(self._insert, [vars(record) for record in batch])
        return []


class DecisionLog(DurableWriter[DecisionRecord]):
    def __init__(self, engine: Engine, options: WriterOptions) -> None:
        super().__init__(engine, _Decisions(engine), options)
        self._engine = engine

    def get(self, decision_id: str) -> DecisionRecord | None:
        buffered = self.pending(decision_id)
        if buffered is not None:
            return buffered
        try:
            with self._engine.connect() as connection:
                row = connection.execute(
                    select(decisions).where(decisions.c.decision_id == decision_id)
                ).one_or_none()
        except SQLAlchemyError as error:
            raise DecisionLogUnavailable(f"decision log unreachable: {error}") from error
        return None if row is None else DecisionRecord(**row._mapping)
