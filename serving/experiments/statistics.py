"""The statistics of an experiment result, for ratio metrics over randomised users.

Users are the unit of randomisation, so every metric is a ratio of per-user sums
(clicks / impressions, conversions / decisions, revenue / decisions) and its variance
comes from the delta method: the ratio's estimate moves like the mean of each user's
linearised contribution (y - R x) / mean(x). On those contributions:

- lift, absolute and relative, with a normal interval and a two-sided p-value;
- CUPED (Deng et al. 2013): the contributions adjusted by a pre-exposure covariate with
  the pooled within-arm slope, which for a plain mean is exactly ANCOVA's estimate;
- an always-valid interval (the asymptotic confidence sequence of Waudby-Smith et al.,
  as GrowthBook's sequential testing uses), so a result may be read while it runs;
- the sample-ratio-mismatch test and Holm's correction, by scipy and statsmodels.

Distributions and tests come from scipy and statsmodels; only the algebra of the
estimators is written here, and the tests check it against those libraries and
against simulations with a known truth.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats
from statsmodels.stats.multitest import multipletests


@dataclass(frozen=True)
class RatioSample:
    """One arm's users: the numerator and denominator of a ratio metric per user, and
    optionally a pre-exposure covariate per user."""

    numerator: np.ndarray
    denominator: np.ndarray
    covariate: np.ndarray | None = None

    @property
    def users(self) -> int:
        return len(self.numerator)

    @property
    def ratio(self) -> float:
        return float(self.numerator.sum() / self.denominator.sum())

    def contributions(self) -> np.ndarray:
        """Each user's linearised contribution to the ratio (mean zero)."""
        return (self.numerator - self.ratio * self.denominator) / self.denominator.mean()

    def variance(self, contributions: np.ndarray | None = None) -> float:
        """Variance of the ratio's estimate (delta method)."""
        values = self.contributions() if contributions is None else contributions
        return float(values.var(ddof=1) / self.users)

    @property
    def estimable(self) -> bool:
        return self.users >= 2 and self.denominator.sum() > 0


@dataclass(frozen=True)
class Interval:
    low: float
    high: float

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high


@dataclass(frozen=True)
class Lift:
    """Treatment against control on one metric, by one estimator."""

    control: float
    treatment: float
    absolute: float
    absolute_ci: Interval
    relative: float
    relative_ci: Interval
    p_value: float
    standard_error: float


@dataclass(frozen=True)
class Comparison:
    plain: Lift
    cuped: Lift | None  # None without a covariate that varies
    variance_reduction: float | None  # 1 - var(CUPED) / var(plain), of the absolute lift
    sequential_ci: Interval  # always-valid interval of the absolute lift


def _z(alpha: float) -> float:
    return float(stats.norm.ppf(1 - alpha / 2))


def _lift(
    control_ratio: float,
    control_variance: float,
    treatment_ratio: float,
    treatment_variance: float,
    alpha: float,
) -> Lift:
    absolute = treatment_ratio - control_ratio
    error = math.sqrt(control_variance + treatment_variance)
    z = _z(alpha)
    relative = treatment_ratio / control_ratio - 1 if control_ratio else math.nan
    relative_error = (
        math.sqrt(
            treatment_variance / control_ratio**2
            + treatment_ratio**2 * control_variance / control_ratio**4
        )
        if control_ratio
        else math.nan
    )
    p_value = float(2 * stats.norm.sf(abs(absolute) / error)) if error > 0 else math.nan
    return Lift(
        control=control_ratio,
        treatment=treatment_ratio,
        absolute=absolute,
        absolute_ci=Interval(absolute - z * error, absolute + z * error),
        relative=relative,
        relative_ci=Interval(relative - z * relative_error, relative + z * relative_error),
        p_value=p_value,
        standard_error=error,
    )


def cuped_slope(control: RatioSample, treatment: RatioSample) -> float | None:
    """The pooled within-arm slope of the contributions on the covariate; None when the
    covariate is missing or constant."""
    if control.covariate is None or treatment.covariate is None:
        return None
    contributions = np.concatenate([control.contributions(), treatment.contributions()])
    centred = np.concatenate(
        [sample.covariate - sample.covariate.mean() for sample in (control, treatment)]
    )
    spread = float(centred @ centred)
    return float(contributions @ centred) / spread if spread > 0 else None


def _cuped(
    control: RatioSample, treatment: RatioSample, theta: float, alpha: float
) -> tuple[Lift, float]:
    """Lift on the adjusted contributions, and the adjusted absolute variance."""
    assert control.covariate is not None and treatment.covariate is not None
    overall = float(np.concatenate([control.covariate, treatment.covariate]).mean())
    adjusted = []
    for sample in (control, treatment):
        covariate = sample.covariate
        assert covariate is not None
        values = sample.contributions() - theta * (covariate - covariate.mean())
        ratio = sample.ratio - theta * (float(covariate.mean()) - overall)
        adjusted.append((ratio, sample.variance(values)))
    (control_ratio, control_variance), (treatment_ratio, treatment_variance) = adjusted
    lift = _lift(control_ratio, control_variance, treatment_ratio, treatment_variance, alpha)
    return lift, control_variance + treatment_variance


def sequential_interval(
    estimate: float, standard_error: float, users: int, alpha: float, tuning_users: int
) -> Interval:
    """Always-valid (1 - alpha) interval: the asymptotic confidence sequence of
    Waudby-Smith et al. (2023), rho tuned to be narrowest at `tuning_users`; it holds
    however often the result is looked at."""
    rho_squared = (-2 * math.log(alpha) + math.log(-2 * math.log(alpha) + 1)) / tuning_users
    spread = users * rho_squared
    half = standard_error * math.sqrt(
        2 * (spread + 1) / spread * math.log(math.sqrt(spread + 1) / alpha)
    )
    return Interval(estimate - half, estimate + half)


def compare(
    control: RatioSample, treatment: RatioSample, alpha: float, tuning_users: int
) -> Comparison:
    plain = _lift(control.ratio, control.variance(), treatment.ratio, treatment.variance(), alpha)
    theta = cuped_slope(control, treatment)
    cuped, reduction = None, None
    if theta is not None:
        cuped, adjusted_variance = _cuped(control, treatment, theta, alpha)
        plain_variance = plain.standard_error**2
        reduction = 1 - adjusted_variance / plain_variance if plain_variance > 0 else None
    best = cuped or plain
    return Comparison(
        plain=plain,
        cuped=cuped,
        variance_reduction=reduction,
        sequential_ci=sequential_interval(
            best.absolute,
            best.standard_error,
            control.users + treatment.users,
            alpha,
            tuning_users,
        ),
    )


@dataclass(frozen=True)
class SampleRatioCheck:
    """Do the arms hold the users their weights promise? A mismatch means assignment or
    logging is broken, and every other number of the experiment is suspect."""

    observed: list[int]
    expected: list[float]
    p_value: float
    mismatch: bool


def sample_ratio_check(observed: list[int], weights: list[float], alpha: float) -> SampleRatioCheck:
    total = sum(observed)
    expected = [total * weight / sum(weights) for weight in weights]
    if total == 0:
        return SampleRatioCheck(observed, expected, 1.0, False)
    p_value = float(stats.chisquare(observed, expected).pvalue)
    return SampleRatioCheck(observed, expected, p_value, p_value < alpha)


def holm(p_values: list[float]) -> list[float]:
    """Holm-adjusted p-values across the metrics of one comparison."""
    if not p_values:
        return []
    finite = [p if math.isfinite(p) else 1.0 for p in p_values]
    return [float(p) for p in multipletests(finite, method="holm")[1]]
