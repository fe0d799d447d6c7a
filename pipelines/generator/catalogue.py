"""The product catalogue every simulated user shops from.

It is drawn once per run (not per chunk of users), so an item has one price however
many chunks the users are split into.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ITEMS_PER_CATEGORY = 200
# item_id = (category index + 1) * ITEM_ID_STRIDE + rank: readable ids that reveal the
# category, and the +1 keeps 0 free so no item id is falsy.
ITEM_ID_STRIDE = 100_000

# Typical (median) price per base category, so categories differ in basket value.
_MEDIAN_PRICES: dict[str, float] = {
    "electronics": 180.0,
    "fashion": 45.0,
    "home": 60.0,
    "beauty": 22.0,
    "sports": 55.0,
    "books": 14.0,
    "toys": 28.0,
    "grocery": 7.0,
    "garden": 40.0,
    "auto": 75.0,
    "health": 18.0,
    "jewelry": 120.0,
    "pets": 25.0,
    "music": 20.0,
    "office": 16.0,
    "baby": 32.0,
}
_PRICE_SIGMA = 0.6


@dataclass(frozen=True)
class Catalogue:
    names: tuple[str, ...]
    prices: np.ndarray  # (categories, ITEMS_PER_CATEGORY), rounded to cents

    def item_ids(self, category: np.ndarray, rank: np.ndarray) -> np.ndarray:
        return (category.astype(np.int64) + 1) * ITEM_ID_STRIDE + rank


def category_names(count: int) -> tuple[str, ...]:
    """The first `count` base names; beyond the list, names repeat with a number suffix."""
    base = tuple(_MEDIAN_PRICES)
    return tuple(
        base[i] if i < len(base) else f"{base[i % len(base)]}_{i // len(base) + 1}"
        for i in range(count)
    )


def build_catalogue(count: int, rng: np.random.Generator) -> Catalogue:
    names = category_names(count)
    medians = np.array([_MEDIAN_PRICES[name.split("_")[0]] for name in names])
    prices = medians[:, None] * rng.lognormal(0.0, _PRICE_SIGMA, (count, ITEMS_PER_CATEGORY))
    return Catalogue(names=names, prices=np.round(np.maximum(prices, 0.5), 2))
