"""How a simulated user reacts to the content a decision shows them: the ground truth
`tailor simulate` draws outcomes from.

A shown variant is seen (an impression) with a probability that depends on the device.
A seen variant is clicked with a probability that grows with the user's latent taste
for the variant's category (the same Dirichlet preferences that drive their browsing):

    logit P(click | seen) = CLICK_BASE + CLICK_TASTE * taste + tag and goal terms

where `taste` is the user's preference for the category (0..1; for a variant without a
category, the average preference 1 / categories). A click converts with the user's own
purchase propensity (the generator's logit: personal offset, device, hour, weekend)
lifted by taste:

    logit P(convert | click) = user logit + CONVERT_LIFT + CONVERT_TASTE * taste

and a conversion's value is the price of an item of the variant's category (of a random
category for a variant without one). Nothing here is learned: it is the world the
policies act in, so an oracle that knows it is the ceiling of any policy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipelines.generator.behaviour import BASE_LOGIT, DEVICE_LOGIT, HOUR_LOGIT, WEEKEND_WEIGHT
from pipelines.generator.catalogue import Catalogue
from tailor.core.events import DEVICES

SEEN = {"mobile": 0.80, "desktop": 0.92, "tablet": 0.88}
CLICK_BASE = -3.3
CLICK_TASTE = 4.0
# Deals draw clicks from everyone, novelty from mobile users, recovery offers from none.
TAG_CLICK = {"deal": 0.25, "new": 0.10, "bestseller": 0.15}
ENGAGEMENT_CLICK = 0.2  # a broad engagement piece is clicked a bit more...
CONVERT_LIFT = 3.0  # ...but a click converts far more often than a session does
CONVERT_TASTE = 1.5
ENGAGEMENT_CONVERT = -0.8  # and less often after an engagement piece


@dataclass(frozen=True)
class ShownVariant:
    decision_id: str
    variant_id: str
    category: str | None
    tags: tuple[str, ...]
    goal: str  # conversion | engagement


@dataclass(frozen=True)
class Response:
    seen: bool
    clicked: bool
    converted: bool
    value: float | None


def _sigmoid(logit: float) -> float:
    return float(1.0 / (1.0 + np.exp(-logit)))


@dataclass(frozen=True)
class UserTruth:
    """What the simulator knows of a user and no policy does."""

    preferences: np.ndarray  # (categories,) summing to 1
    personal_logit: float  # BASE_LOGIT + the user's personal offset


class ResponseModel:
    def __init__(self, catalogue: Catalogue) -> None:
        self._catalogue = catalogue
        self._category_index = {name: i for i, name in enumerate(catalogue.names)}

    def taste(self, user: UserTruth, category: str | None) -> float:
        index = self._category_index.get(category) if category is not None else None
        if index is None:
            return 1.0 / len(user.preferences)
        return float(user.preferences[index])

    def click_probability(self, user: UserTruth, shown: ShownVariant) -> float:
        logit = CLICK_BASE + CLICK_TASTE * self.taste(user, shown.category)
        logit += sum(TAG_CLICK.get(tag, 0.0) for tag in shown.tags)
        if shown.goal == "engagement":
            logit += ENGAGEMENT_CLICK
        return _sigmoid(logit)

    def conversion_probability(
        self, user: UserTruth, shown: ShownVariant, device: str, hour: int, weekend: bool
    ) -> float:
        logit = (
            user.personal_logit
            + DEVICE_LOGIT[DEVICES.index(device)]
            + HOUR_LOGIT[hour]
            + WEEKEND_WEIGHT * weekend
            + CONVERT_LIFT
            + CONVERT_TASTE * self.taste(user, shown.category)
        )
        if shown.goal == "engagement":
            logit += ENGAGEMENT_CONVERT
        return _sigmoid(logit)

    def expected_conversion(
        self, user: UserTruth, shown: ShownVariant, device: str, hour: int, weekend: bool
    ) -> float:
        """The chance a showing converts: seen, then clicked, then bought. What an
        oracle maximises, and the truth an off-policy estimate is checked against."""
        return (
            SEEN[device]
            * self.click_probability(user, shown)
            * self.conversion_probability(user, shown, device, hour, weekend)
        )

    def respond(
        self,
        rng: np.random.Generator,
        user: UserTruth,
        shown: ShownVariant,
        device: str,
        hour: int,
        weekend: bool,
    ) -> Response:
        """Draw what the user does; every draw is made, so the stream of random numbers
        is the same whatever an earlier draw gave (policies see the same luck)."""
        seen_draw, click_draw, convert_draw, price_draw = rng.random(4)
        category_draw = int(rng.integers(len(self._catalogue.names)))
        seen = bool(seen_draw < SEEN[device])
        clicked = seen and bool(click_draw < self.click_probability(user, shown))
        converted = clicked and bool(
            convert_draw < self.conversion_probability(user, shown, device, hour, weekend)
        )
        value = None
        if converted:
            category = self._category_index.get(shown.category or "", category_draw)
            prices = self._catalogue.prices[category]
            value = float(prices[int(price_draw * len(prices))])
        return Response(seen, clicked, converted, value)


def user_truths(preferences: np.ndarray, beta: np.ndarray) -> list[UserTruth]:
    """From the population's cumulative preferences and personal offsets."""
    shares = np.diff(preferences, prepend=0.0, axis=1)
    return [
        UserTruth(preferences=share, personal_logit=BASE_LOGIT + float(offset))
        for share, offset in zip(shares, beta, strict=True)
    ]
