"""The champion and its ledger: promotions, rejections and rollbacks on real artifacts."""

from __future__ import annotations

import contextlib
import itertools
import json
import multiprocessing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pytest

from tailor.core.model_artifact import LATEST, METADATA_FILE, load_artifact, save_artifact
from tailor.core.model_registry import (
    RegistryError,
    champion_version,
    ledger,
    list_models,
    promote,
    reject,
    rollback,
)

T0 = datetime(2026, 5, 1, 12, tzinfo=UTC)


def _artifact(models_dir: Path, version: str) -> None:
    """A real (small) LightGBM model with the metadata the API reads."""
    rng = np.random.default_rng(len(version))
    rows = rng.normal(size=(200, 2))
    labels = (rows[:, 0] + rng.normal(size=200) > 0).astype(int)
    params = {"objective": "binary", "verbose": -1, "num_threads": 1, "min_data_in_leaf": 5}
    booster = lgb.train(params, lgb.Dataset(rows, labels, feature_name=["a", "b"]), 5)
    metadata = {
        "version": version,
        "created_at": T0.isoformat(),
        "feature_service": "personalization_v1",
        "features": ["a", "b"],
        "score_quantiles": [0.0, 1.0],
        "metrics": {"auc": 0.7, "logloss": 0.6},
    }
    save_artifact(models_dir, version, booster, metadata)


@pytest.fixture
def models(tmp_path: Path) -> Path:
    for version in ("v1", "v2", "v3"):
        _artifact(tmp_path, version)
    return tmp_path


def _promote(models: Path, version: str, minute: int) -> None:
    promote(
        models, version, actor="ana", reason=f"ship {version}", at=T0 + timedelta(minutes=minute)
    )


def test_saving_an_artifact_does_not_make_it_champion(models):
    assert champion_version(models) is None
    assert {summary.status for summary in list_models(models)} == {"candidate"}


def test_a_promotion_moves_latest_and_records_who_why_and_when(models):
    _promote(models, "v1", 0)
    _promote(models, "v2", 1)
    assert champion_version(models) == "v2"
    assert load_artifact(models).version == "v2"
    entries = ledger(models)
    assert [(e.action, e.version, e.previous) for e in entries] == [
        ("promote", "v1", None),
        ("promote", "v2", "v1"),
    ]
    assert entries[1].actor == "ana" and entries[1].reason == "ship v2"
    assert entries[1].at == T0 + timedelta(minutes=1)


def test_rollback_walks_back_through_the_champions(models):
    for minute, version in enumerate(("v1", "v2", "v3")):
        _promote(models, version, minute)
    first = rollback(models, actor="bo", reason="drift", at=T0 + timedelta(hours=1))
    assert (first.action, first.version, first.previous) == ("rollback", "v2", "v3")
    second = rollback(models, actor="bo", reason="still bad", at=T0 + timedelta(hours=2))
    assert (second.version, champion_version(models)) == ("v1", "v1")
    with pytest.raises(RegistryError, match="no champion before v1"):
        rollback(models, actor="bo", reason="again", at=T0 + timedelta(hours=3))


def test_a_promotion_after_a_rollback_is_what_the_next_rollback_undoes(models):
    _promote(models, "v1", 0)
    _promote(models, "v2", 1)
    rollback(models, actor="bo", reason="bad", at=T0 + timedelta(minutes=2))
    _promote(models, "v3", 3)
    assert rollback(models, actor="bo", reason="bad", at=T0 + timedelta(minutes=4)).version == "v1"


def test_a_rejected_challenger_is_kept_and_reported_without_moving_the_champion(models):
    _promote(models, "v1", 0)
    entry = reject(
        models, "v2", actor="tailor retrain", reason="AUC lower", at=T0, evidence={"auc": 0.6}
    )
    assert (entry.previous, champion_version(models)) == ("v1", "v1")
    assert {s.version: s.status for s in list_models(models)} == {
        "v1": "champion",
        "v2": "rejected",
        "v3": "candidate",
    }
    assert ledger(models)[-1].evidence == {"auc": 0.6}


def test_list_shows_retired_champions(models):
    _promote(models, "v1", 0)
    _promote(models, "v2", 1)
    assert {s.version: s.status for s in list_models(models)}["v1"] == "retired"


@pytest.mark.parametrize("version", ["../v1", "latest", "", "v1/..", ".hidden"])
def test_a_version_that_is_not_a_plain_name_is_refused(models, version):
    with pytest.raises(RegistryError, match="not a model version"):
        promote(models, version, actor="ana", reason="x", at=T0)
    assert ledger(models) == []


def test_a_model_that_does_not_load_cannot_become_champion(models):
    (models / "v2" / METADATA_FILE).write_text("{broken")
    with pytest.raises(RegistryError, match="cannot be loaded"):
        promote(models, "v2", actor="ana", reason="x", at=T0)
    with pytest.raises(RegistryError, match=r"no model version 'v9'.*v1"):
        promote(models, "v9", actor="ana", reason="x", at=T0)
    assert champion_version(models) is None and ledger(models) == []


def test_latest_moved_by_hand_is_not_rolled_back_blindly(models):
    _promote(models, "v1", 0)
    _promote(models, "v2", 1)
    (models / LATEST).unlink()
    (models / LATEST).symlink_to("v3")
    with pytest.raises(RegistryError, match="which the ledger did not make champion"):
        rollback(models, actor="bo", reason="x", at=T0)


def _promote_in_process(models: str, version: str) -> None:
    # "already the champion" when another process has just promoted the same version
    with contextlib.suppress(RegistryError):
        promote(Path(models), version, actor=version, reason="race", at=T0)


def test_concurrent_promotions_leave_a_ledger_that_matches_latest(models):
    versions = ["v1", "v2", "v3"] * 4
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        pool.starmap(_promote_in_process, [(str(models), v) for v in versions])
    entries = ledger(models)
    assert entries[-1].version == champion_version(models)
    # Each entry's `previous` is the version the one before it promoted: no interleaving.
    assert all(e.previous == before.version for before, e in itertools.pairwise(entries))
    assert all(json.loads(e.to_json())["actor"] == e.version for e in entries)
