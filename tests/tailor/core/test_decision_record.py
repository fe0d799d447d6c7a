"""The logged decision is declared once: the table stores exactly its fields."""

from __future__ import annotations

from dataclasses import fields, replace
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


def test_a_spill_line_written_before_feature_vectors_still_loads():
    """Spill files outlive upgrades: a line without the newer fields gets their defaults."""
    line = {
        "decision_id": "d2",
        "created_at": "2026-03-04T10:00:00+00:00",
        "user_id": 7,
        "placement": "homepage_banner",
        "variant_id": "welcome",
        "config_version": "v+abc",
        "model_version": "m1",
        "degraded": [],
        "request": {"user_id": 7},
        "decision": {"variant": {"id": "welcome"}},
        "experiment_key": None,
        "arm": None,
        "bucket": None,
        "action_probability": 1.0,
    }
    record = DecisionRecord.from_json_dict(line)
    assert (record.propensity, record.features) == (None, None)
    scored = replace(record, propensity=0.2, features={"sessions_30d": 3.0, "cart_value": None})
    assert DecisionRecord.from_json_dict(scored.to_json_dict()) == scored
