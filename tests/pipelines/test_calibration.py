"""Calibration: the stored numbers reproduce scikit-learn's own fitted models, the
choice between isotonic and Platt is made out of fold, calibrating a miscalibrated
score lowers its ECE on rows it never saw, and the artifact applies it on load."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from scipy.special import expit, logit
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

from pipelines.training.calibration import choose_calibration, fit_isotonic, fit_platt
from pipelines.training.metrics import expected_calibration_error
from tailor.core.calibrator import calibration_from_dict, score_logit
from tailor.core.model_artifact import METADATA_FILE, ModelNotFoundError, load_artifact


def _overconfident(rng: np.random.Generator, rows: int) -> tuple[np.ndarray, np.ndarray]:
    """True propensity p; the score pushes its log-odds twice as far and up by 0.5."""
    truth = expit(rng.normal(-1.5, 0.8, rows))
    labels = (rng.random(rows) < truth).astype(int)
    return expit(2 * logit(truth) + 0.5), labels


def _step(rng: np.random.Generator, rows: int) -> tuple[np.ndarray, np.ndarray]:
    """A rate that jumps from 0.1 to 0.6 at score 0.5: no logistic curve follows it."""
    scores = rng.random(rows)
    labels = (rng.random(rows) < np.where(scores < 0.5, 0.1, 0.6)).astype(int)
    return scores, labels


def test_the_stored_calibrations_reproduce_sklearns_predictions():
    rng = np.random.default_rng(4)
    scores, labels = _overconfident(rng, 5000)
    unseen = np.concatenate([rng.random(2000), [0.0, 1.0, scores.min(), scores.max()]])

    isotonic = IsotonicRegression(out_of_bounds="clip").fit(scores, labels)
    stored = calibration_from_dict(json.loads(json.dumps(fit_isotonic(scores, labels).to_dict())))
    np.testing.assert_allclose(stored.apply(unseen), isotonic.predict(unseen), rtol=0, atol=1e-12)

    platt = LogisticRegression(C=np.inf).fit(score_logit(scores).reshape(-1, 1), labels)
    stored = calibration_from_dict(json.loads(json.dumps(fit_platt(scores, labels).to_dict())))
    np.testing.assert_allclose(
        stored.apply(unseen),
        platt.predict_proba(score_logit(unseen).reshape(-1, 1))[:, 1],
        rtol=0,
        atol=1e-12,
    )


@pytest.mark.parametrize(("simulate", "expected"), [(_overconfident, "platt"), (_step, "isotonic")])
def test_the_method_is_chosen_out_of_fold_and_lowers_ece_on_unseen_rows(simulate, expected):
    """Platt fits a log-odds distortion exactly and isotonic wastes rows on it; a step
    defeats Platt. Either way the chosen map, fitted on a validation sample, lowers the
    ECE of a test sample it never saw."""
    rng = np.random.default_rng(5)
    valid_scores, valid_labels = simulate(rng, 4000)
    test_scores, test_labels = simulate(rng, 20_000)
    choice = choose_calibration(valid_scores, valid_labels, folds=5, bins=10, seed=7)
    assert choice.calibration.method == expected, choice.cross_fitted
    before = expected_calibration_error(test_labels, test_scores, 10)
    after = expected_calibration_error(test_labels, choice.calibration.apply(test_scores), 10)
    assert after < before / 2, (before, after)
    assert choice.cross_fitted[expected]["ece"] < choice.cross_fitted["uncalibrated"]["ece"]


def _copy_latest(flow, tmp_path) -> tuple:
    source = (flow.models_dir / "latest").resolve()
    target = tmp_path / source.name
    shutil.copytree(source, target)
    return target, json.loads((target / METADATA_FILE).read_text())


def test_the_artifact_serves_calibrated_scores_and_an_old_one_serves_raw(flow, tmp_path):
    folder, metadata = _copy_latest(flow, tmp_path)
    artifact = load_artifact(tmp_path, folder.name)
    assert artifact.calibration is not None
    assert artifact.calibration.method == metadata["calibration"]["method"]
    rows = np.random.default_rng(6).random((50, len(artifact.features))) * 10
    raw = artifact.booster.predict(rows)
    np.testing.assert_allclose(artifact.predict(rows), artifact.calibration.apply(raw))

    del metadata["calibration"]  # as written before calibration existed
    (folder / METADATA_FILE).write_text(json.dumps(metadata))
    old = load_artifact(tmp_path, folder.name)
    assert old.calibration is None
    np.testing.assert_allclose(old.predict(rows), raw)


def test_an_artifact_with_a_broken_calibration_is_refused(flow, tmp_path):
    folder, metadata = _copy_latest(flow, tmp_path)
    metadata["calibration"] = {"method": "isotonic", "x": [0.2, 0.1], "y": [0.0, 1.0]}
    (folder / METADATA_FILE).write_text(json.dumps(metadata))
    with pytest.raises(ModelNotFoundError, match="x strictly increasing"):
        load_artifact(tmp_path, folder.name)
