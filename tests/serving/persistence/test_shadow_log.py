"""The shadow log is its record, stored on SQLite and PostgreSQL, once per decision and
arm however often a replay repeats it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import fields, replace
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, select

from serving.decision.shadow import ShadowRecord
from serving.persistence.durable_writer import WriterOptions
from serving.persistence.shadow_log import ShadowLog
from tailor.core.database.engine import open_database
from tailor.core.database.schema import shadow_decisions

RECORD = ShadowRecord(
    decision_id="d" * 32,
    experiment_key="homepage_policies",
    arm="taste_first",
    created_at=datetime(2026, 3, 4, 9, 30, tzinfo=UTC),
    served_variant_id="welcome",
    champion_variant_id="electronics_deals",
    variant_id="home_makeover",
    action_distribution={"home_makeover": 0.9, "welcome": 0.1},
    scores={"home_makeover": 0.71, "welcome": 0.4},
    model_version="v1",
    latency_ms=0.42,
)


@pytest.fixture(scope="module")
def engine(database_url: str) -> Iterator[Engine]:
    engine = open_database(database_url)
    yield engine
    engine.dispose()


def test_the_table_has_a_column_per_field_of_the_record():
    assert [c.name for c in shadow_decisions.columns] == [f.name for f in fields(ShadowRecord)]


def test_a_record_survives_its_json_form():
    assert ShadowRecord.from_json_dict(RECORD.to_json_dict()) == RECORD


def test_records_are_stored_once_per_decision_and_arm(engine: Engine, tmp_path):
    log = ShadowLog(engine, WriterOptions(spill_dir=tmp_path, flush_seconds=0.05))
    failed = replace(RECORD, arm="ghost", variant_id=None, action_distribution={}, scores={})
    for record in (RECORD, RECORD, replace(failed, error="arm_model_unavailable:v9")):
        log.record(record)
    log.close()
    with engine.connect() as connection:
        rows = connection.execute(
            select(shadow_decisions).where(shadow_decisions.c.decision_id == RECORD.decision_id)
        ).all()
    stored = sorted((ShadowRecord(**row._mapping) for row in rows), key=lambda r: r.arm)
    assert [r.arm for r in stored] == ["ghost", "taste_first"]
    assert stored[1] == RECORD
    assert stored[0].error == "arm_model_unavailable:v9"
