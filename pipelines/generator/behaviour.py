"""The purchase model: how likely a session is to end in a purchase.

The logit is a fixed linear function of the user's midnight snapshot (`DayStart`) and
the request context (device, hour, weekend). Keeping it this explicit is what lets the
training pipeline check itself: the best possible model recovers these terms, and the
ground-truth propensities give the ceiling its AUC can be compared against.
"""

from __future__ import annotations

import numpy as np

from pipelines.generator.population import Population
from pipelines.generator.state import DayStart
from tailor.core.events import DEVICES

# Sets the overall rate: about 7.5% of sessions end in a purchase.
BASE_LOGIT = -5.3
RECENCY_WEIGHT = 1.2
RECENCY_SCALE_DAYS = 3.0
ACTIVITY_WEIGHT = 0.45
OPEN_CART_WEIGHT = 1.0
FOCUS_WEIGHT = 0.8
RECENT_PURCHASE_WEIGHT = -0.6
WEEKEND_WEIGHT = 0.15
_DEVICE_WEIGHTS = {"mobile": -0.2, "desktop": 0.3, "tablet": 0.0}
DEVICE_LOGIT = np.array([_DEVICE_WEIGHTS[device] for device in DEVICES])
# Evenings (18:00-21:59) convert better, nights (00:00-04:59) worse.
HOUR_LOGIT = np.zeros(24)
HOUR_LOGIT[18:22] = 0.3
HOUR_LOGIT[0:5] = -0.4


def user_day_logit(population: Population, start: DayStart) -> np.ndarray:
    """The part of the logit fixed for a whole day: personal offset plus midnight state."""
    focus = np.nan_to_num(start.top_category_share - 0.5, nan=0.0)
    return (
        BASE_LOGIT
        + population.beta
        + RECENCY_WEIGHT * np.exp(-start.days_since_active / RECENCY_SCALE_DAYS)
        + ACTIVITY_WEIGHT * np.log1p(start.sessions_30d)
        + OPEN_CART_WEIGHT * start.open_cart
        + FOCUS_WEIGHT * focus
        + RECENT_PURCHASE_WEIGHT * start.purchased_yesterday
    )


def session_probability(
    user_logit: np.ndarray, device: np.ndarray, hour: np.ndarray, weekend: bool
) -> np.ndarray:
    """p_session from the per-session user logit and the request context."""
    logit = user_logit + DEVICE_LOGIT[device] + HOUR_LOGIT[hour] + WEEKEND_WEIGHT * weekend
    return 1.0 / (1.0 + np.exp(-logit))


def propensity_24h(p_session: np.ndarray, activity: np.ndarray) -> np.ndarray:
    """Chance of a purchase within 24 h of the session start.

    The session itself, or one of the Poisson(activity) later sessions in the horizon,
    each converting with about the same probability. It approximates: later sessions
    of the next day would use a new snapshot.
    """
    return 1.0 - (1.0 - p_session) * np.exp(-activity * p_session)
