"""The simulator cannot be gamed: in the policy benchmark's smallest setting (one day
of visits, the flow's users), a policy that ignores the user does no better than chance.

`popularity` shows everybody the same variant; `random` draws among the eligible ones.
Both run through the real engine (the benchmark's own placement configs) on the same
visits with the same luck, so their difference is paired. Showing one variant to
everybody may pick a variant that is broadly a little better than the average (the
welcome piece converts poorly), so beside the sampled comparison the truth bounds
what ignoring the user can gain: a small share of what knowing the user gains (the
oracle over random), measured without outcome noise.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from benchmarks.policy_quality import (
    ENGINE_POLICIES,
    banner,
    engine_run,
    most_popular_variant,
    oracle_run,
    policy_document,
    policy_figures,
    same_visits,
    shipped_document,
    truth_matrix,
    with_placements,
)
from tailor.cli.experiment_commands import data_end
from tests.support.flow import FLOW_DAYS, FLOW_USERS, Flow

VISITS = 800
SEED = 3
# Knowing nothing of the user may gain at most this share of the oracle's gain.
USER_BLIND_SHARE = 0.25


def test_a_policy_that_ignores_the_user_scores_no_better_than_random(flow: Flow, tmp_path):
    settings = flow.settings(
        generator={"users": FLOW_USERS, "days": FLOW_DAYS},
        decisions={"database_url": f"sqlite:///{tmp_path / 'decisions.db'}"},
        serving={"feature_budget_ms": 10_000},
    )
    placement = banner(settings)
    shipped = shipped_document(settings)
    popular = most_popular_variant(settings, placement)
    end = data_end(settings)
    start = datetime(end.year, end.month, end.day, tzinfo=UTC) - timedelta(days=1)
    runs = {
        name: engine_run(
            with_placements(
                settings,
                policy_document(shipped, f"bench_{name}", ENGINE_POLICIES[name], popular),
                tmp_path,
            ),
            start,
            1,
            VISITS,
            SEED,
        )
        for name in ("random", "popularity")
    }
    runs["oracle"] = oracle_run(settings, placement, start, 1, VISITS, SEED)
    visits = same_visits(runs)
    users = np.array([visit.user_id for visit in visits])
    truth = truth_matrix(settings, placement, visits, runs["random"].variants)

    figures = policy_figures(runs, truth, users, baseline="random")

    assert len(visits) == VISITS
    assert set(np.array(runs["popularity"].target).argmax(axis=1)) == {
        runs["popularity"].variants.index(popular)
    }
    sampled = figures["popularity"]["lift_over_random"]["conversion"]
    assert sampled["absolute_low"] <= 0, sampled  # not better than chance, within noise
    user_blind_gain = figures["popularity"]["lift_over_random"]["true_conversion"]["absolute"]
    knowing_gain = figures["oracle"]["lift_over_random"]["true_conversion"]
    assert knowing_gain["significant"] and knowing_gain["absolute"] > 0
    assert user_blind_gain < USER_BLIND_SHARE * knowing_gain["absolute"], (
        user_blind_gain,
        knowing_gain["absolute"],
    )
