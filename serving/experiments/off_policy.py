"""Off-policy evaluation: what a policy that did not serve would have earned, from the
log of the policy that did.

Each logged decision i holds the served variant a_i, the logging policy's probability
of every variant p0(.|x_i) and the evaluated policy's p(.|x_i) (a shadow arm's logged
distribution), and the reward r_i (clicked, converted or revenue). With the
importance weight w_i = p(a_i|x_i) / p0(a_i|x_i):

    IPS   = mean(w_i r_i)                               unbiased, high variance
    SNIPS = sum(w_i r_i) / sum(w_i)                     self-normalized, less variance
    DR    = mean(sum_a p(a|x_i) q(x_i,a) + w_i (r_i - q(x_i,a_i)))

where q is a reward model (LightGBM) trained on the same log and cross-fitted: the q
of a user's decisions comes from the model trained on the other folds' users, so no
row is predicted by a model that saw it. These are the definitions of Open Bandit
Pipeline's InverseProbabilityWeighting, SelfNormalizedInverseProbabilityWeighting and
DoublyRobust.

Importance weighting is unbiased only where the logging policy could have served
everything the evaluated one would: `support` is the share of decisions where it
could. Below `ope_min_support` IPS and SNIPS give no number (they would silently count
the unsupported decisions as zero reward) and DR's value is marked as leaning on its
reward model there. Intervals are percentile bootstraps over users (a user's decisions
resample together: they are not independent), the reward model held fixed as OBP
does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import lightgbm as lgb
import numpy as np
from pydantic import BaseModel, Field

from serving.experiments.results import IntervalBody
from serving.experiments.statistics import Interval

Metric = Literal["click", "conversion", "revenue"]
EstimatorName = Literal["ips", "snips", "dr"]
_BOOTSTRAP_CHUNK = 200
_REWARD_MODEL = {
    "num_leaves": 15,
    "learning_rate": 0.05,
    "min_data_in_leaf": 40,
    "lambda_l2": 1.0,
    "feature_fraction": 0.9,
    "verbose": -1,
    "deterministic": True,
    "seed": 0,
    # One thread: on two shared cores two OpenMP threads wait on each other (training
    # measured 5-10x slower with 2 threads than with 1 when the other core is busy).
    "num_threads": 1,
}
_REWARD_ROUNDS = 150


@dataclass(frozen=True)
class LoggedBandit:
    """Logged decisions as arrays: n decisions over k variants, f features each."""

    users: np.ndarray  # (n,) user ids: the bootstrap's clusters and the folds
    actions: np.ndarray  # (n,) index of the served variant
    logging: np.ndarray  # (n, k) the serving policy's probabilities
    rewards: np.ndarray  # (n,)
    features: np.ndarray  # (n, k, f) what the reward model knows of (decision, variant)

    def __post_init__(self) -> None:
        n, k = self.logging.shape
        if not (len(self.users) == len(self.actions) == len(self.rewards) == n):
            raise ValueError("users, actions, rewards and logging must have one row each")
        if self.features.shape[:2] != (n, k):
            raise ValueError(f"features must be (n, k, f) = ({n}, {k}, f)")
        served = self.logging[np.arange(n), self.actions]
        if n and served.min() <= 0:
            raise ValueError("a served variant has logging probability 0: the log is corrupt")

    @property
    def size(self) -> int:
        return len(self.actions)


class EstimateBody(BaseModel):
    estimator: EstimatorName
    value: float | None = Field(description="None when the log cannot support the estimator.")
    interval: IntervalBody | None
    note: str | None = None


class OffPolicyEstimate(BaseModel):
    decisions: int
    users: int
    support: float = Field(
        description="Share of decisions where the logging policy could serve every "
        "variant the evaluated policy would."
    )
    effective_sample_size: float = Field(
        description="(sum w)^2 / sum w^2 of the importance weights: how many on-policy "
        "decisions the log is worth for this policy."
    )
    logged_value: float = Field(description="Mean reward of what was actually served.")
    estimates: list[EstimateBody]

    def value_of(self, estimator: EstimatorName) -> EstimateBody:
        return next(e for e in self.estimates if e.estimator == estimator)


@dataclass(frozen=True)
class _Terms:
    """Per-decision terms whose sums make each estimate."""

    weighted_reward: np.ndarray  # w r
    weight: np.ndarray  # w
    doubly_robust: np.ndarray  # sum_a p q + w (r - q_a)


def reward_predictions(log: LoggedBandit, metric: Metric, folds: int, seed: int = 0) -> np.ndarray:
    """q(x_i, a) for every decision and variant, cross-fitted over user folds."""
    n, k, f = log.features.shape
    fold_of = _user_folds(log.users, folds, seed)
    served_rows = log.features[np.arange(n), log.actions]
    predictions = np.empty((n, k))
    binary = metric != "revenue"
    for fold in range(folds):
        held = fold_of == fold
        if not held.any():
            continue
        train_x, train_y = served_rows[~held], log.rewards[~held]
        predict = _fitted(train_x, train_y, binary, categorical=[f - 1])
        predictions[held] = predict(log.features[held].reshape(-1, f)).reshape(-1, k)
    return predictions


def _user_folds(users: np.ndarray, folds: int, seed: int) -> np.ndarray:
    unique, index = np.unique(users, return_inverse=True)
    assignment = np.random.default_rng(seed).permutation(len(unique)) % folds
    return assignment[index]


def _fitted(
    x: np.ndarray, y: np.ndarray, binary: bool, categorical: list[int]
) -> Callable[[np.ndarray], np.ndarray]:
    """A reward model, or the training mean when there is nothing to learn from."""
    if len(y) == 0 or np.all(y == y[0]):
        constant = float(y[0]) if len(y) else 0.0
        return lambda rows: np.full(len(rows), constant)
    params = {**_REWARD_MODEL, "objective": "binary" if binary else "regression"}
    data = lgb.Dataset(x, y, categorical_feature=categorical, free_raw_data=False)
    booster = lgb.train(params, data, num_boost_round=_REWARD_ROUNDS)
    return lambda rows: booster.predict(rows)


def _terms(log: LoggedBandit, target: np.ndarray, predicted: np.ndarray) -> _Terms:
    rows = np.arange(log.size)
    weight = target[rows, log.actions] / log.logging[rows, log.actions]
    q_served = predicted[rows, log.actions]
    direct = (target * predicted).sum(axis=1)
    return _Terms(
        weighted_reward=weight * log.rewards,
        weight=weight,
        doubly_robust=direct + weight * (log.rewards - q_served),
    )


def support_share(logging: np.ndarray, target: np.ndarray) -> float:
    unsupported = ((target > 0) & (logging <= 0)).any(axis=1)
    return float(1.0 - unsupported.mean()) if len(target) else 0.0


def _bootstrap_sums(
    users: np.ndarray, columns: list[np.ndarray], resamples: int, seed: int
) -> list[np.ndarray]:
    """Each column's total in every resample of users (with replacement), in chunks so
    memory stays at chunk x users."""
    _, index = np.unique(users, return_inverse=True)
    per_user = [np.bincount(index, weights=column) for column in columns]
    user_count = len(per_user[0])
    rng = np.random.default_rng(seed)
    totals: list[list[np.ndarray]] = [[] for _ in columns]
    for start in range(0, resamples, _BOOTSTRAP_CHUNK):
        size = min(_BOOTSTRAP_CHUNK, resamples - start)
        counts = rng.multinomial(user_count, np.full(user_count, 1 / user_count), size=size)
        for total, sums in zip(totals, per_user, strict=True):
            total.append(counts @ sums)
    return [np.concatenate(total) for total in totals]


def _interval(samples: np.ndarray, alpha: float) -> IntervalBody:
    low, high = np.quantile(samples, [alpha / 2, 1 - alpha / 2])
    return IntervalBody(low=float(low), high=float(high))


def estimate(
    log: LoggedBandit,
    target: np.ndarray,
    metric: Metric,
    *,
    alpha: float = 0.05,
    resamples: int = 1000,
    folds: int = 2,
    min_support: float = 0.95,
    seed: int = 0,
    predicted: np.ndarray | None = None,
) -> OffPolicyEstimate:
    """IPS, SNIPS and DR of the policy whose probabilities are `target` (n, k); pass
    `predicted` to reuse one cross-fitted reward model for several policies."""
    if target.shape != log.logging.shape:
        raise ValueError(f"target must be {log.logging.shape}, like the logging policy")
    if log.size == 0:
        raise ValueError("no logged decisions to evaluate on")
    if predicted is None:
        predicted = reward_predictions(log, metric, folds, seed)
    terms = _terms(log, target, predicted)
    support = support_share(log.logging, target)
    ones = np.ones(log.size)
    reward_sum, weight_sum, dr_sum, count = _bootstrap_sums(
        log.users,
        [terms.weighted_reward, terms.weight, terms.doubly_robust, ones],
        resamples,
        seed,
    )
    supported = support >= min_support
    short = f"support {support:.1%} < {min_support:.0%}: the log cannot tell"
    weight_total = terms.weight.sum()
    estimates = [
        EstimateBody(
            estimator="ips",
            value=float(terms.weighted_reward.mean()) if supported else None,
            interval=_interval(reward_sum / count, alpha) if supported else None,
            note=None if supported else short,
        ),
        EstimateBody(
            estimator="snips",
            value=float(terms.weighted_reward.sum() / weight_total)
            if supported and weight_total > 0
            else None,
            interval=_interval(reward_sum / np.maximum(weight_sum, 1e-12), alpha)
            if supported and weight_total > 0
            else None,
            note=None if supported else short,
        ),
        EstimateBody(
            estimator="dr",
            value=float(terms.doubly_robust.mean()),
            interval=_interval(dr_sum / count, alpha),
            note=None
            if supported
            else f"support {support:.1%}: the rest is the reward model's extrapolation",
        ),
    ]
    squares = float((terms.weight**2).sum())
    return OffPolicyEstimate(
        decisions=log.size,
        users=len(np.unique(log.users)),
        support=support,
        effective_sample_size=float(weight_total**2 / squares) if squares > 0 else 0.0,
        logged_value=float(log.rewards.mean()),
        estimates=estimates,
    )


@dataclass(frozen=True)
class Lift:
    absolute: float
    absolute_ci: Interval
    relative: float | None
    relative_ci: Interval | None


def doubly_robust_lift(
    log: LoggedBandit,
    target: np.ndarray,
    predicted: np.ndarray,
    *,
    alpha: float = 0.05,
    resamples: int = 1000,
    seed: int = 0,
) -> Lift:
    """DR of `target` minus the logged policy's own DR (its weights are all 1), over the
    same resamples of users, so the interval is the lift's own."""
    challenger = _terms(log, target, predicted).doubly_robust
    served = _terms(log, log.logging, predicted).doubly_robust
    ones = np.ones(log.size)
    challenger_sum, served_sum, count = _bootstrap_sums(
        log.users, [challenger, served, ones], resamples, seed
    )
    difference = (challenger_sum - served_sum) / count
    base = float(served.mean())
    absolute = float(challenger.mean()) - base
    positive = served_sum > 0
    relative_samples = challenger_sum[positive] / served_sum[positive] - 1
    low, high = np.quantile(difference, [alpha / 2, 1 - alpha / 2])
    relative_ci = None
    if base > 0 and len(relative_samples):
        r_low, r_high = np.quantile(relative_samples, [alpha / 2, 1 - alpha / 2])
        relative_ci = Interval(float(r_low), float(r_high))
    return Lift(
        absolute=absolute,
        absolute_ci=Interval(float(low), float(high)),
        relative=absolute / base if base > 0 else None,
        relative_ci=relative_ci,
    )
