"""Shadow report, off-policy estimates and rule engagement over HTTP, on a real server
whose champion explores beside a shadow challenger; the outcomes are posted as a
client would, and every figure is checked against what the client itself saw."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from tests.support.engines import EXPERIMENT, banner_placements
from tests.support.flow import CLOCK_START, Flow, Server, run_tailor, start_server
from tests.support.waiting import wait_for

ADMIN = {"X-API-Key": "ope-admin-key"}
USERS = range(1, 201)
DEVICES = ("mobile", "desktop", "tablet")
# Two days before the servers' pinned clock: every attribution window has closed.
DECIDED_AT = CLOCK_START - timedelta(days=2)
# Decides a known set of users, so its engagement can be counted by hand.
FORCED_HOME = {
    "id": "home_for_sevens",
    "priority": 90,
    "when": "user_id % 7 == 0",
    "action": {"type": "force", "variant": "home_makeover"},
}
ARMS = [
    {"key": "champion"},
    {
        "key": "taste_first",
        "shadow": True,
        "policy": {"weights": {"behavioral": 0.8, "contextual": 0.1, "predictive": 0.1}},
    },
    {"key": "later", "stopped": True},
]


@pytest.fixture(scope="module")
def env(flow: Flow, tmp_path_factory) -> dict[str, str]:
    home = tmp_path_factory.mktemp("ope-api")
    placements = banner_placements(
        home / "placements.yaml",
        ARMS,
        exploration={"epsilon": 0.2, "floor": 0.02},
        rules=(FORCED_HOME,),
    )
    return flow.env | {
        "TAILOR_SERVING__PLACEMENTS_FILE": str(placements),
        "TAILOR_DECISIONS__DATABASE_URL": f"sqlite:///{home / 'decisions.db'}",
        "TAILOR_SERVING__ADMIN_API_KEY": ADMIN["X-API-Key"],
    }


@pytest.fixture(scope="module")
def server(env: dict[str, str]) -> Iterator[Server]:
    started = start_server(env)
    yield started
    started.stop()


def _clicked(user: int) -> bool:
    return user % 4 == 0


def _converted(user: int) -> bool:
    return user % 10 == 0


@pytest.fixture(scope="module")
def decisions(server: Server) -> list[dict[str, Any]]:
    """Every user decided once, seen, some clicking and some buying."""
    made, outcomes = [], []
    with server.client() as client:
        for user in USERS:
            body = {
                "user_id": user,
                "placement": "homepage_banner",
                "context": {
                    "device": DEVICES[user % 3],
                    "country": "DE",
                    "page": "home",
                    "timestamp": DECIDED_AT.isoformat(),
                },
            }
            response = client.post("/v1/personalize", json=body)
            assert response.status_code == 200, response.text
            decision = response.json()
            made.append(decision)
            for kind, happened, after in (
                ("impression", True, 1),
                ("click", _clicked(user), 20),
                ("conversion", _converted(user), 600),
            ):
                if happened:
                    outcomes.append(
                        {
                            "outcome_id": f"{decision['decision_id']}:{kind}",
                            "decision_id": decision["decision_id"],
                            "type": kind,
                            "ts": (DECIDED_AT + timedelta(seconds=after)).isoformat(),
                        }
                        | ({"value": 25.0} if kind == "conversion" else {})
                    )
        accepted = client.post("/v1/outcomes", json=outcomes)
        assert accepted.status_code == 200 and accepted.json()["rejected"] == 0, accepted.text

    clicked = sum(_clicked(user) for user in USERS) / len(USERS)

    def everything_stored() -> bool:
        with server.client() as client:
            report = client.get(f"/v1/experiments/{EXPERIMENT}/ope?policy=champion&metric=click")
        if report.status_code != 200:
            return False
        body = report.json()
        return body["decisions"] == len(USERS) and body["logged_value"] == pytest.approx(clicked)

    wait_for(everything_stored, "decisions and outcomes stored", seconds=30)
    return made


def _shadow(server: Server) -> dict[str, Any]:
    with server.client() as client:
        response = client.get(f"/v1/experiments/{EXPERIMENT}/shadow?metric=click")
    assert response.status_code == 200, response.text
    return response.json()


def test_the_shadow_report_counts_what_the_shadow_decided(server, decisions):
    assert all(d["experiment"]["arm"] == "champion" for d in decisions)
    wait_for(
        lambda: _shadow(server)["arms"][0]["evaluated"] == len(decisions),
        "every shadow decision logged",
        seconds=30,
    )
    (arm,) = _shadow(server)["arms"]
    assert arm["arm"] == "taste_first" and arm["failed"] == {}
    disagreed = sum(row["decisions"] for row in arm["disagreements"])
    assert 0 < disagreed < len(decisions)
    assert arm["agreement"] == pytest.approx(1 - disagreed / len(decisions))
    assert sum(arm["disagreed_by_variant"].values()) == disagreed
    for row in arm["disagreements"]:
        assert row["champion_variant"] != row["shadow_variant"]
    assert 0 < arm["latency_ms_p50"] <= arm["latency_ms_p99"]
    lift = arm["lift"]
    assert lift["metric"] == "click" and lift["support"] == 1.0
    assert lift["decisions"] == len(decisions)
    low, high = lift["absolute_interval"]["low"], lift["absolute_interval"]["high"]
    assert low <= lift["absolute"] <= high


def test_on_policy_estimates_equal_what_was_observed(server, decisions):
    with server.client() as client:
        response = client.get(
            f"/v1/experiments/{EXPERIMENT}/ope", params={"policy": "champion", "metric": "click"}
        )
    assert response.status_code == 200, response.text
    report = response.json()
    observed = sum(_clicked(d["user_id"]) for d in decisions) / len(decisions)
    assert report["shadow"] is False and report["support"] == 1.0
    assert report["effective_sample_size"] == pytest.approx(len(decisions))
    assert report["logged_value"] == pytest.approx(observed)
    ips, snips, dr = report["estimates"]
    assert ips["value"] == pytest.approx(observed) and snips["value"] == pytest.approx(observed)
    # DR adds the reward model's correction, zero only on average
    assert dr["value"] == pytest.approx(observed, abs=0.03)
    for estimate in report["estimates"]:
        assert estimate["interval"]["low"] <= observed <= estimate["interval"]["high"]


def test_a_shadow_policy_gets_all_three_estimates_with_full_support(server, decisions):
    with server.client() as client:
        response = client.get(
            f"/v1/experiments/{EXPERIMENT}/ope",
            params={"policy": "taste_first", "metric": "revenue"},
        )
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["shadow"] is True and report["support"] == 1.0
    assert 0 < report["effective_sample_size"] < len(decisions)
    assert [e["estimator"] for e in report["estimates"]] == ["ips", "snips", "dr"]
    for estimate in report["estimates"]:
        assert estimate["value"] is not None and estimate["note"] is None
        assert estimate["interval"]["low"] <= estimate["value"] <= estimate["interval"]["high"]


@pytest.mark.parametrize(
    ("query", "status", "says"),
    [
        ("policy=nobody", 404, "known: ['champion', 'taste_first', 'later']"),
        ("policy=later", 409, "no decisions"),
        ("policy=champion&metric=glances", 422, "metric"),
        ("metric=click", 422, "policy"),
    ],
)
def test_a_question_the_log_cannot_answer_says_why(server, decisions, query, status, says):
    with server.client() as client:
        response = client.get(f"/v1/experiments/{EXPERIMENT}/ope?{query}")
        missing = client.get("/v1/experiments/no_such/shadow")
    assert response.status_code == status and says in response.text, response.text
    assert missing.status_code == 404


def test_rule_engagement_compares_what_each_rule_decided_with_the_rest(server, decisions):
    with server.client() as client:
        response = client.get("/v1/admin/rules/stats", params={"days": 7}, headers=ADMIN)
    assert response.status_code == 200, response.text
    stats = response.json()
    decided_by = Counter(d["winning_rule"] for d in decisions)
    banner = [e for e in stats["engagement"] if e["placement"] == "homepage_banner"]
    (forced,) = [e for e in banner if e["rule_id"] == FORCED_HOME["id"]]
    assert forced["decided"] == sum(user % 7 == 0 for user in USERS)
    for entry in banner:
        rule = entry["rule_id"]
        mine = [d for d in decisions if d["winning_rule"] == rule]
        assert entry["decided"] == decided_by[rule] == len(mine)
        assert entry["decided"] + entry["others"] == len(decisions)
        if mine:
            converted = sum(_converted(d["user_id"]) for d in mine)
            clicked = sum(_clicked(d["user_id"]) for d in mine)
            assert entry["conversion"] == pytest.approx(converted / len(mine))
            assert entry["ctr"] == pytest.approx(clicked / len(mine))  # every one was seen
            interval = entry["conversion_difference"]
            difference = entry["conversion"] - entry["conversion_others"]
            assert interval["low"] <= difference <= interval["high"]
        if entry["decided"] < 0.005 * len(decisions):
            assert "rarely_decides" in entry["review"]
    reviewed = {(r["placement"], r["rule_id"]) for r in stats["to_review"]}
    assert reviewed == {(e["placement"], e["rule_id"]) for e in stats["engagement"] if e["review"]}


def test_the_cli_prints_the_shadow_report_and_an_estimate(env, decisions):
    shadow = run_tailor(env, "experiments", "shadow", EXPERIMENT, "--metric", "click")
    assert shadow.returncode == 0, shadow.stderr
    assert "taste_first" in shadow.stdout and "agreement" in shadow.stdout
    estimate = run_tailor(env, "experiments", "ope", EXPERIMENT, "--policy", "taste_first")
    assert estimate.returncode == 0, estimate.stderr
    assert "DR" in estimate.stdout and "support 100.0%" in estimate.stdout
