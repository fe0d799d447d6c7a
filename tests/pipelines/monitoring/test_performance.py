"""Live performance and the conversion-rate change detector, on simulated streams whose
calibration and change point are known."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from pipelines.monitoring.conversion_change import detect_changes
from pipelines.monitoring.performance import live_performance

N = 200_000


def _truth(seed: int) -> tuple[np.random.Generator, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng, rng.uniform(0.01, 0.2, N)  # true conversion probabilities


def test_calibrated_propensities_have_almost_no_calibration_error():
    rng, truth = _truth(1)
    converted = (rng.random(N) < truth).astype(int)
    result = live_performance(truth, converted, min_conversions=20, bins=10)
    assert result.ece < 0.005
    assert result.observed_expected == pytest.approx(1.0, abs=0.02)
    assert result.auc == pytest.approx(roc_auc_score(converted, truth))


def test_doubled_propensities_are_off_by_what_they_add():
    """Scores twice the truth: every bucket's gap is its mean true probability, so the
    ECE is the mean truth, 0.105, and observed / expected is 1/2."""
    rng, truth = _truth(2)
    converted = (rng.random(N) < truth).astype(int)
    result = live_performance(2 * truth, converted, min_conversions=20, bins=10)
    assert result.ece == pytest.approx(truth.mean(), abs=0.003)
    assert result.observed_expected == pytest.approx(0.5, abs=0.01)
    # Doubling keeps the order: the AUC is the calibrated model's.
    assert result.auc == pytest.approx(roc_auc_score(converted, truth))


def test_too_few_conversions_give_no_auc_or_calibration():
    result = live_performance(np.full(100, 0.05), np.r_[np.ones(5), np.zeros(95)], 20, 10)
    assert (result.decisions, result.conversions) == (100, 5)
    assert result.auc is result.ece is result.observed_expected is None


def test_adwin_finds_a_halved_conversion_rate_soon_after_it_happens():
    rng = np.random.default_rng(4)
    change = 20_000
    stream = np.r_[rng.random(change) < 0.06, rng.random(change) < 0.03].astype(int)
    found = detect_changes(stream, delta=0.002)
    assert found.detected
    assert change < found.positions[0] < change + 5_000
    assert found.rate_now == pytest.approx(0.03, abs=0.01)
    assert found.rate_all == pytest.approx(stream.mean())


def test_adwin_stays_quiet_on_a_steady_rate():
    rng = np.random.default_rng(5)
    stream = (rng.random(40_000) < 0.05).astype(int)
    found = detect_changes(stream, delta=0.002)
    assert found.positions == []
    assert found.rate_now == pytest.approx(0.05, abs=0.005)
