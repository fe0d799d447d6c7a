"""The response model's taste column from the user's whole 30-day category mix."""

from __future__ import annotations

import math

import pytest

from tailor.core.response_features import (
    CandidateSchema,
    CandidateVariant,
    candidate_rows,
    category_mix,
    response_context,
)

SCHEMA = CandidateSchema(user_features=("purchases_30d",), categories=("books",), tags=())
BOOKS = CandidateVariant("books", "books", (), "conversion")
SPORTS = CandidateVariant("sports", "sports", (), "conversion")
WELCOME = CandidateVariant("welcome", None, (), "engagement")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ('{"books": 3, "home": 1}', {"books": 3.0, "home": 1.0}),
        ('{"books": 0}', None),  # no categorized events is no taste, not a taste for none
        ("not json", None),
        ("[1, 2]", None),
        (None, None),
    ],
)
def test_the_category_mix_is_read_or_treated_as_missing(raw, expected):
    assert category_mix(raw) == expected


def test_each_candidate_gets_its_category_share_of_the_mix():
    signals = {
        "top_category_30d": "books",
        "category_events_30d": category_mix('{"books": 3, "home": 1}'),
    }
    context = response_context({"purchases_30d": 2}, signals, "mobile", 9)
    rows = candidate_rows(SCHEMA, context, [BOOKS, SPORTS, WELCOME])
    share = rows[:, SCHEMA.columns.index("share_of_category_30d")]
    assert share[0] == 0.75 and share[1] == 0.0 and math.isnan(share[2])
    unknown = candidate_rows(SCHEMA, response_context({}, {}, None, 9), [BOOKS])
    assert math.isnan(unknown[0, SCHEMA.columns.index("share_of_category_30d")])
