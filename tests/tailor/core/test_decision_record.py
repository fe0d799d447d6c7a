"""The logged decision is declared once: the table stores exactly its fields."""

from __future__ import annotations

from dataclasses import fields
from datetime import UTC, datetime

from tailor.core.database.schema import decisions
from tailor.core.decision_record import DecisionRecord


def test_the_decisions_table_has_a_column_per_field_of_the_record():
    assert [column.name for column in decisions.columns] == [f.name for f in fields(DecisionRecord)]


def test_a_record_survives_its_json_form():
    record = DecisionRecord(
        decision_id="d1",
        created_at=datetime(2026, 3, 4, 10, tzinfo=UTC),
        user_id=7,
        placement="homepage_banner",
        variant_id="welcome",
        config_version="v+abc",
        model_version=None,
        degraded=["model_unavailable"],
        request={"user_id": 7},
        decision={"variant": {"id": "welcome"}},
    )
    assert DecisionRecord.from_json_dict(record.to_json_dict()) == record
