"""Latent traits of simulated users, drawn once per user and never observed directly.

Downstream features and models only see the events these traits produce; the traits
are what make users differ in ways a model can learn back from their history.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tailor.core.events import DEVICES

COUNTRIES = ("US", "GB", "DE", "FR", "PL", "IN", "BR", "ES", "NL", "CA")
_COUNTRY_WEIGHTS = np.array([0.30, 0.10, 0.10, 0.08, 0.07, 0.14, 0.09, 0.05, 0.04, 0.03])

# Sessions per day: lognormal with median ACTIVITY_MEDIAN; the clip keeps a few extreme
# users from dominating the event volume.
ACTIVITY_MEDIAN = 0.35
_ACTIVITY_SIGMA = 0.8
_ACTIVITY_RANGE = (0.02, 3.0)
# A small Dirichlet concentration gives most users one or two favourite categories.
_PREFERENCE_CONCENTRATION = 0.3
MAIN_DEVICE_SHARE = 0.8
_BETA_SD = 0.4
# Mean 2 / (2 + 14) = 0.125 add-to-cart chance per viewed item.
_CART_BETA = (2.0, 14.0)
_WEEKEND_SIGMA = 0.3


@dataclass(frozen=True)
class Population:
    user_ids: np.ndarray  # int64, consecutive
    activity: np.ndarray  # lambda_u, expected sessions per weekday
    category_cdf: np.ndarray  # (users, categories) cumulative preference, last column 1.0
    main_device: np.ndarray  # index into DEVICES
    peak_hour: np.ndarray  # float hour of day sessions cluster around
    country: np.ndarray  # index into COUNTRIES
    beta: np.ndarray  # personal purchase-propensity offset (logit scale)
    cart_tendency: np.ndarray  # chance to add a viewed item to the cart
    weekend_factor: np.ndarray  # multiplies activity on Saturdays and Sundays

    @property
    def size(self) -> int:
        return len(self.user_ids)


def draw_population(
    rng: np.random.Generator,
    first_user_id: int,
    count: int,
    categories: int,
    device_shares: dict[str, float],
) -> Population:
    """`device_shares`: the share of users whose main device is each of `DEVICES`. Any
    shares take the same draws, so changing them changes main devices and nothing else."""
    preferences = rng.dirichlet(np.full(categories, _PREFERENCE_CONCENTRATION), size=count)
    category_cdf = np.cumsum(preferences, axis=1)
    category_cdf[:, -1] = 1.0
    device_weights = np.array([device_shares[device] for device in DEVICES])
    # Evening shoppers outnumber daytime ones, which makes the hour of a request informative.
    evening = rng.random(count) < 0.6
    peak_hour = np.where(evening, rng.normal(20.0, 1.5, count), rng.normal(12.0, 2.5, count))
    return Population(
        user_ids=np.arange(first_user_id, first_user_id + count, dtype=np.int64),
        activity=np.clip(
            ACTIVITY_MEDIAN * rng.lognormal(0.0, _ACTIVITY_SIGMA, count), *_ACTIVITY_RANGE
        ),
        category_cdf=category_cdf,
        main_device=rng.choice(len(DEVICES), size=count, p=device_weights),
        peak_hour=np.mod(peak_hour, 24.0),
        country=rng.choice(len(COUNTRIES), size=count, p=_COUNTRY_WEIGHTS / _COUNTRY_WEIGHTS.sum()),
        beta=rng.normal(0.0, _BETA_SD, count),
        cart_tendency=rng.beta(*_CART_BETA, size=count),
        weekend_factor=rng.lognormal(0.0, _WEEKEND_SIGMA, count),
    )
