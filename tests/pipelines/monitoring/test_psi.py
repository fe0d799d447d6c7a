"""PSI and the reference buckets, checked against distributions whose PSI is known."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import special, stats

from pipelines.monitoring.bins import CategoricalBins, NumericBins
from pipelines.monitoring.profile import (
    PROFILE_FILE,
    ReferenceProfile,
    ReferenceProfileError,
    build_reference_profile,
    load_reference_profile,
)
from pipelines.monitoring.psi import psi, shares
from tailor.core.settings import MonitoringSettings

EPSILON = 1e-4


def _jeffreys(expected: np.ndarray, actual: np.ndarray) -> float:
    """PSI is the symmetric Kullback-Leibler divergence: scipy's relative entropy each
    way (rel_entr, which unlike stats.entropy does not renormalise)."""
    return float(np.sum(special.rel_entr(actual, expected) + special.rel_entr(expected, actual)))


@pytest.mark.parametrize("shift", [0.0, 0.25, 0.5, 1.0])
def test_numeric_psi_matches_the_binned_divergence_of_two_normals(shift):
    """Reference N(0, 1), window N(shift, 1): with the fitted edges, scipy's normal CDF
    gives each bucket's true share on both sides, hence the PSI the sample estimates."""
    rng = np.random.default_rng(11)
    reference = rng.normal(0.0, 1.0, 200_000)
    window = rng.normal(shift, 1.0, 200_000)
    bins = NumericBins.fit(reference, 10)

    bounds = np.array([-np.inf, *bins.edges, np.inf])
    true_expected = np.diff(stats.norm.cdf(bounds))
    true_actual = np.diff(stats.norm.cdf(bounds, loc=shift))
    truth = _jeffreys(true_expected, true_actual)

    measured = psi(np.array(bins.shares), shares(bins.counts(window)), EPSILON)
    # Both sides are samples of 200,000: a few thousandths of noise, a few percent of
    # the value for large shifts.
    assert measured == pytest.approx(truth, rel=0.05, abs=0.005)


def test_categorical_psi_is_the_jeffreys_divergence_of_the_frequencies():
    rng = np.random.default_rng(3)
    reference = rng.choice(["mobile", "desktop", "tablet"], 50_000, p=[0.5, 0.4, 0.1])
    window = rng.choice(["mobile", "desktop", "tablet"], 50_000, p=[0.2, 0.7, 0.1])
    bins = CategoricalBins.fit(reference, max_categories=10)
    assert bins.labels() == ["mobile", "desktop", "tablet", "other", "missing"]

    counts = bins.counts(window)
    present = slice(0, 3)  # no "other" or missing value on either side
    expected = np.array(bins.shares)[present]
    actual = shares(counts)[present]
    measured = psi(np.array(bins.shares), shares(counts), EPSILON)
    assert measured == pytest.approx(_jeffreys(expected, actual), rel=1e-9)


def test_values_outside_the_reference_fall_in_the_open_edge_buckets_and_missing_has_its_own():
    bins = NumericBins.fit(np.linspace(0.0, 1.0, 1001), 4)
    assert bins.edges == (0.25, 0.5, 0.75)
    assert bins.labels() == [
        "(-inf, 0.25]",
        "(0.25, 0.5]",
        "(0.5, 0.75]",
        "(0.75, inf)",
        "missing",
    ]
    counts = bins.counts([-5.0, 0.25, 0.3, 99.0, 1e300, None, float("nan")])
    assert counts.tolist() == [2, 1, 0, 2, 2]


def test_a_flag_gets_one_bucket_per_value_not_ten():
    values = pd.Series([0] * 700 + [1] * 300 + [None] * 100, dtype="Int64")
    bins = NumericBins.fit(values, 10)
    assert bins.edges == (0.0, 1.0)
    assert bins.shares == pytest.approx([700 / 1100, 300 / 1100, 0.0, 100 / 1100])


def test_an_empty_bucket_counts_as_epsilon_so_psi_stays_finite():
    """A device the reference never saw takes 10% of the window: its term is
    (0.1 - eps) ln(0.1 / eps), the rest as usual."""
    bins = CategoricalBins.fit(["mobile"] * 600 + ["desktop"] * 400, max_categories=10)
    window = ["mobile"] * 540 + ["desktop"] * 360 + ["smart-tv"] * 100
    actual = shares(bins.counts(window))
    assert actual.tolist() == pytest.approx([0.54, 0.36, 0.1, 0.0])
    measured = psi(np.array(bins.shares), actual, EPSILON)
    with_epsilon = np.array([0.6, 0.4, EPSILON, EPSILON]), np.array([0.54, 0.36, 0.1, EPSILON])
    assert np.isfinite(measured)
    assert measured == pytest.approx(_jeffreys(*with_epsilon), rel=1e-6)
    assert measured > 0.25  # a tenth of traffic from an unknown device is an alert alone


def test_categories_beyond_the_cap_go_to_other():
    bins = CategoricalBins.fit(["a"] * 5 + ["b"] * 3 + ["c"] * 2, max_categories=2)
    assert bins.categories == ("a", "b")
    assert bins.shares == pytest.approx([0.5, 0.3, 0.2, 0.0])


def _profile() -> ReferenceProfile:
    rng = np.random.default_rng(5)
    frame = pd.DataFrame(
        {
            "event_timestamp": pd.date_range("2026-03-01", periods=1000, freq="min", tz="UTC"),
            "x": rng.normal(size=1000),
            "device": rng.choice(["mobile", "desktop", None], 1000),
        }
    )
    return build_reference_profile(
        frame, "v1", ["x"], rng.random(1000), MonitoringSettings(profile_bins=5)
    )


def test_a_profile_survives_its_file(tmp_path):
    profile = _profile()
    (tmp_path / "v1").mkdir()
    (tmp_path / "v1" / PROFILE_FILE).write_text(json.dumps(profile.to_json()))
    assert load_reference_profile(tmp_path, "v1") == profile
    assert profile.window_start == "2026-03-01T00:00:00+00:00"
    assert set(profile.context) == {"device"} and len(profile.score.edges) == 4


def test_a_missing_or_broken_profile_says_how_to_get_one(tmp_path):
    (tmp_path / "v1").mkdir()
    with pytest.raises(ReferenceProfileError, match="tailor train"):
        load_reference_profile(tmp_path, "v1")
    broken = _profile().to_json()
    broken["features"]["x"]["shares"] = [1.0]
    (tmp_path / "v1" / PROFILE_FILE).write_text(json.dumps(broken))
    with pytest.raises(ReferenceProfileError, match=r"1 shares for 6 buckets"):
        load_reference_profile(tmp_path, "v1")
