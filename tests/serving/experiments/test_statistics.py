"""Experiment statistics against independent references: statsmodels and scipy on fixed
data (to 1e-9), and simulations whose true lift is known."""

from __future__ import annotations

import numpy as np
import pytest
import statsmodels.api as sm
from scipy import stats
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

from serving.experiments.statistics import (
    RatioSample,
    compare,
    holm,
    sample_ratio_check,
    sequential_interval,
)

ALPHA = 0.05
TUNING = 5000


def _mean_sample(values: np.ndarray, covariate: np.ndarray | None = None) -> RatioSample:
    return RatioSample(values.astype(float), np.ones(len(values)), covariate)


def test_a_mean_metric_matches_statsmodels_two_sample_z_test():
    rng = np.random.default_rng(1)
    control, treatment = rng.exponential(2.0, 900), rng.exponential(2.3, 1100)
    lift = compare(_mean_sample(control), _mean_sample(treatment), ALPHA, TUNING).plain
    reference = CompareMeans(DescrStatsW(treatment), DescrStatsW(control))
    low, high = reference.zconfint_diff(alpha=ALPHA, usevar="unequal")
    _, p_value = reference.ztest_ind(usevar="unequal")
    assert lift.absolute == pytest.approx(treatment.mean() - control.mean(), abs=1e-12)
    assert (lift.absolute_ci.low, lift.absolute_ci.high) == pytest.approx((low, high), abs=1e-9)
    assert lift.p_value == pytest.approx(p_value, abs=1e-9)


def test_a_ratio_metric_uses_the_delta_method_variance():
    """Reference: the textbook delta-method variance of mean(y)/mean(x) from numpy's
    covariance matrix, and scipy's normal distribution for the interval and p-value."""
    rng = np.random.default_rng(2)

    def arm(users: int, rate: float) -> RatioSample:
        decisions = rng.poisson(4, users) + 1
        return RatioSample(rng.binomial(decisions, rate).astype(float), decisions.astype(float))

    control, treatment = arm(1500, 0.10), arm(1600, 0.12)

    def delta_variance(sample: RatioSample) -> float:
        y, x = sample.numerator, sample.denominator
        (var_y, cov), (_, var_x) = np.cov(y, x, ddof=1)
        ratio = y.mean() / x.mean()
        return (var_y - 2 * ratio * cov + ratio**2 * var_x) / (x.mean() ** 2 * len(y))

    difference = treatment.ratio - control.ratio
    error = np.sqrt(delta_variance(control) + delta_variance(treatment))
    z = stats.norm.ppf(1 - ALPHA / 2)
    lift = compare(control, treatment, ALPHA, TUNING).plain
    assert lift.absolute == pytest.approx(difference, abs=1e-12)
    assert (lift.absolute_ci.low, lift.absolute_ci.high) == pytest.approx(
        (difference - z * error, difference + z * error), abs=1e-9
    )
    assert lift.p_value == pytest.approx(2 * stats.norm.sf(abs(difference) / error), abs=1e-9)
    relative_error = np.sqrt(
        delta_variance(treatment) / control.ratio**2
        + treatment.ratio**2 * delta_variance(control) / control.ratio**4
    )
    assert lift.relative == pytest.approx(treatment.ratio / control.ratio - 1, abs=1e-12)
    assert lift.relative_ci.high - lift.relative == pytest.approx(z * relative_error, abs=1e-9)


def test_cuped_on_a_mean_is_ancova_and_reduces_variance():
    """With a plain mean, CUPED's pooled within-arm slope makes its lift exactly the
    treatment coefficient of OLS y ~ 1 + treated + covariate (statsmodels)."""
    rng = np.random.default_rng(3)
    users = 2000
    covariate = rng.gamma(2.0, 1.5, users)
    treated = rng.random(users) < 0.5
    outcome = 1.0 + 0.8 * covariate + 0.3 * treated + rng.normal(0, 1, users)
    comparison = compare(
        _mean_sample(outcome[~treated], covariate[~treated]),
        _mean_sample(outcome[treated], covariate[treated]),
        ALPHA,
        TUNING,
    )
    design = sm.add_constant(np.column_stack([treated.astype(float), covariate]))
    ancova = sm.OLS(outcome, design).fit()
    assert comparison.cuped is not None
    assert comparison.cuped.absolute == pytest.approx(ancova.params[1], abs=1e-9)
    correlation = np.corrcoef(outcome - 0.3 * treated, covariate)[0, 1]
    assert comparison.variance_reduction == pytest.approx(correlation**2, abs=0.05)


def test_without_a_covariate_there_is_no_cuped():
    sample = _mean_sample(np.arange(10.0))
    comparison = compare(sample, sample, ALPHA, TUNING)
    assert comparison.cuped is None and comparison.variance_reduction is None


def _conversion_runs(seed: int, runs: int, users: int, lift: float) -> tuple[RatioSample, ...]:
    """`runs` experiments of a ratio metric (conversions per decision) with a known lift;
    the covariate (past purchases) predicts a user's own rate."""
    rng = np.random.default_rng(seed)
    for _ in range(runs):
        arms = []
        for effect in (0.0, lift):
            taste = rng.gamma(2.0, 0.05, users)  # each user's own conversion rate
            past = rng.poisson(taste * 40)
            decisions = rng.poisson(3, users) + 1
            rate = np.clip(taste * (1 + effect), 0, 1)
            arms.append(
                RatioSample(
                    rng.binomial(decisions, rate).astype(float),
                    decisions.astype(float),
                    past.astype(float),
                )
            )
        yield tuple(arms)


TRUE_RATE = 0.1  # the mean of gamma(2, 0.05)


def test_the_interval_covers_a_known_lift_95_percent_of_the_time():
    """400 seeded experiments, +10% true relative lift in conversions per decision: the
    plain and CUPED 95% intervals must cover the truth in 93-97% of them."""
    relative_lift = 0.10
    truth = TRUE_RATE * relative_lift
    plain = cuped = relative = 0
    runs = 400
    for control, treatment in _conversion_runs(7, runs, 2000, relative_lift):
        comparison = compare(control, treatment, ALPHA, TUNING)
        plain += comparison.plain.absolute_ci.contains(truth)
        cuped += comparison.cuped.absolute_ci.contains(truth)
        relative += comparison.plain.relative_ci.contains(relative_lift)
    for name, covered in (("plain", plain), ("cuped", cuped), ("relative", relative)):
        assert 0.93 <= covered / runs <= 0.97, f"{name}: {covered}/{runs}"


def test_peeking_20_times_at_the_sequential_interval_keeps_false_positives_under_5_percent():
    """No true effect; each experiment is looked at 20 times as users arrive, and counts
    as a false positive if any look excludes zero."""
    rng = np.random.default_rng(11)
    runs, users, looks = 1000, 4000, 20
    rate = 0.1
    control = rng.random((runs, users)) < rate
    treatment = rng.random((runs, users)) < rate
    rejected = np.zeros(runs, dtype=bool)
    fixed_rejected = np.zeros(runs, dtype=bool)
    for n in np.linspace(users / looks, users, looks).astype(int):
        c, t = control[:, :n], treatment[:, :n]
        difference = t.mean(axis=1) - c.mean(axis=1)
        error = np.sqrt(c.var(axis=1, ddof=1) / n + t.var(axis=1, ddof=1) / n)
        for run in np.flatnonzero(~rejected):
            interval = sequential_interval(difference[run], error[run], 2 * n, ALPHA, TUNING)
            rejected[run] = not interval.contains(0.0)
        fixed_rejected |= np.abs(difference / error) > stats.norm.ppf(1 - ALPHA / 2)
    assert rejected.mean() <= 0.05, rejected.mean()
    assert fixed_rejected.mean() > 0.10  # peeking at the fixed interval would not hold


def test_sample_ratio_mismatch_fires_on_51_49_and_not_on_a_fair_split():
    skewed = sample_ratio_check([102_000, 98_000], [1, 1], alpha=0.001)
    fair = sample_ratio_check([100_180, 99_820], [1, 1], alpha=0.001)
    assert skewed.mismatch and skewed.p_value < 1e-10
    assert not fair.mismatch
    assert fair.p_value == pytest.approx(stats.chisquare([100_180, 99_820]).pvalue, abs=1e-12)


def test_holm_adjusts_as_by_hand():
    # sorted 0.01, 0.03, 0.04 -> 3 x 0.01, max(0.03, 2 x 0.03), max(0.06, 1 x 0.04)
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06], abs=1e-12)
