"""Gated retraining on the flow's data: a better challenger replaces the champion, a
deliberately worse one (a one-split stump on a third of the rows) is kept and reported."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from pipelines.training.retrain import GATE_FILE, RetrainOutcome, train_and_judge
from tailor.core.model_artifact import load_artifact
from tailor.core.model_registry import champion_version, ledger, list_models
from tests.support.flow import Flow

STUMP = {"num_leaves": 2, "num_boost_round": 1}
NO_SEARCH = {"tuning_trials": 0}  # a search would find better than a stump on purpose


def _retrain(flow: Flow, models: Path, reason: str, **training) -> RetrainOutcome:
    settings = flow.settings(models_dir=models, training=NO_SEARCH | training)
    return train_and_judge(settings, actor="test", reason=reason)


@pytest.fixture(scope="module")
def rounds(flow: Flow, tmp_path_factory) -> tuple[Path, list[RetrainOutcome]]:
    models = tmp_path_factory.mktemp("retrain") / "models"
    stump = _retrain(flow, models, "first", **STUMP)
    default = _retrain(flow, models, "scheduled")
    rows = default.report.rows["train"] + default.report.rows["valid"] + default.report.rows["test"]
    worse = _retrain(flow, models, "worse", **STUMP, max_observations=rows // 3)
    return models, [stump, default, worse]


def test_the_first_model_becomes_champion(rounds):
    _, (stump, _, _) = rounds
    assert stump.verdict.promote and stump.verdict.reason == "no champion yet"


def test_a_better_challenger_replaces_the_champion(rounds):
    models, (stump, default, _) = rounds
    assert default.verdict.promote, default.verdict.reason
    assert default.verdict.challenger["auc"] > default.verdict.champion["auc"]
    entry = ledger(models)[1]
    assert (entry.action, entry.version, entry.previous) == (
        "promote",
        default.report.version,
        stump.report.version,
    )
    assert entry.reason.startswith("scheduled; beats the champion: AUC")


def test_a_worse_challenger_is_kept_and_reported_not_promoted(rounds):
    models, (_, default, worse) = rounds
    assert not worse.verdict.promote, worse.verdict.reason
    assert champion_version(models) == default.report.version
    assert ledger(models)[-1].action == "reject"
    statuses = {summary.version: summary.status for summary in list_models(models)}
    assert statuses[worse.report.version] == "rejected"
    assert statuses[default.report.version] == "champion"
    recorded = json.loads((worse.report.path / GATE_FILE).read_text())
    assert recorded["promote"] is False and recorded["holdout_rows"] >= 500


def test_both_models_are_judged_on_the_same_unseen_rows(rounds):
    """The gate's figures, recomputed with scikit-learn on the rows it says it used."""
    models, (_, default, worse) = rounds
    champion = load_artifact(models, default.report.version)
    challenger = load_artifact(models, worse.report.version)
    test_start = pd.Timestamp(champion.metadata["training_window"]["test_start"])
    rows = worse.report.test_split[worse.report.test_split["event_timestamp"] >= test_start]
    assert len(rows) == worse.verdict.holdout_rows
    assert rows["event_timestamp"].min() >= pd.Timestamp(
        challenger.metadata["training_window"]["test_start"]
    )
    for model, figures in (
        (champion, worse.verdict.champion),
        (challenger, worse.verdict.challenger),
    ):
        scores = model.predict(rows[model.features].astype("float64").to_numpy())
        assert figures["auc"] == pytest.approx(roc_auc_score(rows["label"], scores), abs=1e-12)
