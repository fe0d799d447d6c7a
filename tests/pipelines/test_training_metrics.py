"""ECE and top-decile lift against references: scikit-learn's calibration curve, and
simulations whose true values are known in closed form."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.calibration import calibration_curve

from pipelines.training.metrics import expected_calibration_error, top_decile_lift


def test_ece_is_the_count_weighted_gap_of_sklearns_quantile_calibration_curve():
    rng = np.random.default_rng(1)
    scores = rng.beta(2, 5, 20_000)
    labels = (rng.random(20_000) < scores**0.8).astype(int)
    observed, predicted = calibration_curve(labels, scores, n_bins=10, strategy="quantile")
    reference = float(np.mean(np.abs(observed - predicted)))  # 2,000 rows in each bin
    assert expected_calibration_error(labels, scores, 10) == pytest.approx(reference, abs=1e-12)


def test_ece_finds_a_known_miscalibration_and_none_where_there_is_none():
    """Scores uniform on [0, 1], true rate score^2: the ten equal-count buckets are
    about [a, b) = [k/10, (k+1)/10), where the gap is (a+b)/2 - (a^2+ab+b^2)/3, so the
    ECE is 0.1 * the sum of those."""
    rng = np.random.default_rng(2)
    scores = rng.random(400_000)
    edges = np.linspace(0, 1, 11)
    a, b = edges[:-1], edges[1:]
    truth = float(np.mean((a + b) / 2 - (a * a + a * b + b * b) / 3))
    miscalibrated = (rng.random(len(scores)) < scores**2).astype(int)
    calibrated = (rng.random(len(scores)) < scores).astype(int)
    assert expected_calibration_error(miscalibrated, scores, 10) == pytest.approx(truth, abs=3e-3)
    assert expected_calibration_error(calibrated, scores, 10) < 3e-3


def test_top_decile_lift_matches_a_simulation_with_known_truth():
    """True rate = score, scores uniform: the top tenth buys at 0.95 against 0.5."""
    rng = np.random.default_rng(3)
    scores = rng.random(400_000)
    labels = (rng.random(len(scores)) < scores).astype(int)
    assert top_decile_lift(labels, scores) == pytest.approx(0.95 / 0.5, abs=0.01)


def test_top_decile_lift_counts_ties_at_the_cut_by_their_share():
    """Twenty rows, two in the top tenth: one scored alone at the top (a buyer), then
    four tied (two buyers) for the second place, which counts half a buyer."""
    scores = np.array([0.9] + [0.5] * 4 + [0.1] * 15)
    labels = np.array([1, 1, 1, 0, 0] + [0] * 14 + [1])
    expected = ((1 + 0.5) / 2) / labels.mean()
    assert top_decile_lift(labels, scores) == pytest.approx(expected)
    assert top_decile_lift(labels, np.full(20, 0.3)) == pytest.approx(1.0)
