"""The response model's inputs for (user, context, candidate variant): one builder for
training, which reads them from the decision log, and for serving, which computes them
for every candidate, so the two can never disagree on a column.

A row holds the user's numeric features (the propensity model's inputs, as logged with
each decision), the context (device, hour), the variant (goal, category and tags one-hot)
and the interactions that carry taste: whether the variant's category is the user's
30-day or live-session top category, the share of views it holds there, and its share
of the user's whole 30-day category mix.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tailor.core.events import DEVICES

GOALS = ("conversion", "engagement")


@dataclass(frozen=True)
class CandidateVariant:
    """What the model knows of a variant: never its id, so a new variant with a known
    category and tags is scored from what was learned about them."""

    variant_id: str
    category: str | None
    tags: tuple[str, ...]
    goal: str


@dataclass(frozen=True)
class ResponseContext:
    """The user and the request at decision time, as the decision logged them."""

    features: Mapping[str, Any]  # the user's features by name; None or absent = missing
    top_category: str | None
    top_category_share: float | None
    session_top_category: str | None
    session_top_share: float | None
    device: str | None
    hour: int
    category_events: Mapping[str, float] | None = None  # the 30-day mix; None = no history


def category_mix(raw: Any) -> dict[str, float] | None:
    """The feature store's `category_events_30d` (a JSON object of event counts per
    category) as a mapping; None when the user has none or it cannot be read, which the
    model treats as missing rather than as a taste for nothing."""
    if not isinstance(raw, str):
        return None
    try:
        mix = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(mix, dict):
        return None
    counts = {str(k): float(v) for k, v in mix.items() if isinstance(v, int | float) and v > 0}
    return counts or None


def response_context(
    features: Mapping[str, Any], signals: Mapping[str, Any], device: str | None, hour: int
) -> ResponseContext:
    """From a decision's feature values and its `signals` (the body's taste summary)."""
    return ResponseContext(
        features=features,
        top_category=signals.get("top_category_30d"),
        top_category_share=signals.get("top_category_share_30d"),
        session_top_category=signals.get("session_top_category"),
        session_top_share=signals.get("session_top_share"),
        device=device,
        hour=hour,
        category_events=signals.get("category_events_30d"),
    )


@dataclass(frozen=True)
class CandidateSchema:
    """The columns of a response model: fixed at training, stored in its metadata."""

    user_features: tuple[str, ...]
    categories: tuple[str, ...]
    tags: tuple[str, ...]

    @property
    def columns(self) -> list[str]:
        return [
            *self.user_features,
            "hour",
            *(f"device_{device}" for device in DEVICES),
            "goal_engagement",
            *(f"category_{category}" for category in self.categories),
            *(f"tag_{tag}" for tag in self.tags),
            "top_category_share",
            "session_top_share",
            "is_top_category",
            "top_share_of_category",
            "is_session_top_category",
            "session_share_of_category",
            "share_of_category_30d",
        ]

    def to_dict(self) -> dict[str, list[str]]:
        return {
            "user_features": list(self.user_features),
            "categories": list(self.categories),
            "tags": list(self.tags),
        }

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> CandidateSchema:
        return cls(
            user_features=tuple(values["user_features"]),
            categories=tuple(values["categories"]),
            tags=tuple(values["tags"]),
        )


def _number(value: Any) -> float:
    if value is None:
        return math.nan
    number = float(value)
    return number if math.isfinite(number) else math.nan


def _taste(category: str | None, top: str | None, share: Any) -> tuple[float, float]:
    """(is the top category, share of views it holds there): NaN when the user has no
    such top category, 0 share when the variant's category is another one."""
    if top is None:
        return math.nan, math.nan
    matches = category is not None and category == top
    return float(matches), _number(share) if matches else 0.0


def _share_of(category: str | None, mix: Mapping[str, float] | None) -> float:
    """The variant's category's share of the user's 30-day categorized events: the
    taste for it, whether or not it is the top one. NaN without a mix or a category."""
    if mix is None or category is None:
        return math.nan
    return mix.get(category, 0.0) / sum(mix.values())


def candidate_rows(
    schema: CandidateSchema, context: ResponseContext, variants: Sequence[CandidateVariant]
) -> np.ndarray:
    """One row per variant, columns in `schema.columns` order; NaN marks a missing value
    (LightGBM learns where it goes)."""
    user = [_number(context.features.get(name)) for name in schema.user_features]
    device = [float(context.device == name) for name in DEVICES]
    shares = [_number(context.top_category_share), _number(context.session_top_share)]
    rows = np.empty((len(variants), len(schema.columns)))
    for index, variant in enumerate(variants):
        rows[index] = [
            *user,
            float(context.hour),
            *device,
            float(variant.goal == "engagement"),
            *(float(variant.category == category) for category in schema.categories),
            *(float(tag in variant.tags) for tag in schema.tags),
            *shares,
            *_taste(variant.category, context.top_category, context.top_category_share),
            *_taste(variant.category, context.session_top_category, context.session_top_share),
            _share_of(variant.category, context.category_events),
        ]
    return rows
