"""Experiments and outcomes over HTTP, on a real server with the flow's store and model:
arms and holdout in every decision and in the log, outcomes attributed exactly once,
purchases as conversions, and results that count what was posted. The same on the redis
profile, with the decision database on PostgreSQL, through `tailor simulate` and
`tailor experiments report`."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from serving.decision.placements import SHIPPED_PLACEMENTS_FILE
from tests.support.flow import CLOCK_START, Flow, Server, run_tailor, start_server
from tests.support.waiting import wait_for

EXPERIMENT = "homepage_policies"
CONTEXT = {"device": "desktop", "country": "DE", "page": "home"}
# Before the servers start, so no outcome after it is ahead of their pinned clocks.
DECIDED_AT = CLOCK_START - timedelta(hours=1)


def running_placements(path: Path, holdout: float = 0.05) -> Path:
    """The shipped file with its experiment running and a holdout on the banner."""
    document = yaml.safe_load(SHIPPED_PLACEMENTS_FILE.read_text())
    document["version"] = "experiments.1"
    document["placements"]["homepage_banner"]["holdout"] = holdout
    for experiment in document["experiments"]:
        experiment["status"] = "running"
    path.write_text(yaml.safe_dump(document))
    return path


@pytest.fixture(scope="module")
def server(flow: Flow, tmp_path_factory) -> Iterator[Server]:
    home = tmp_path_factory.mktemp("experiments")
    env = flow.env | {
        "TAILOR_SERVING__PLACEMENTS_FILE": str(running_placements(home / "placements.yaml")),
        "TAILOR_DECISIONS__DATABASE_URL": f"sqlite:///{home / 'decisions.db'}",
    }
    started = start_server(env)
    yield started
    started.stop()


def _decide(server: Server, user_id: int) -> dict[str, Any]:
    body = {
        "user_id": user_id,
        "placement": "homepage_banner",
        "context": CONTEXT | {"timestamp": DECIDED_AT.isoformat()},
    }
    with server.client() as client:
        response = client.post("/v1/personalize", json=body)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture(scope="module")
def decisions(server: Server) -> list[dict[str, Any]]:
    return [_decide(server, user_id) for user_id in range(1, 301)]


def test_every_decision_names_its_arm_or_the_holdout(decisions):
    arms = Counter(d["experiment"]["arm"] for d in decisions)
    assert set(arms) == {"champion", "rules_only", "random", "holdout"}, arms
    assert 3 <= arms["holdout"] <= 40  # 5% of 300
    for decision in decisions:
        experiment = decision["experiment"]
        if experiment["arm"] == "holdout":
            assert experiment["key"] is None
            assert decision["variant"]["id"] == "welcome" and decision["personalized"] is False
            continue
        assert experiment["key"] == EXPERIMENT and 0 <= experiment["bucket"] < 1
        if experiment["arm"] == "random":
            eligible = sum(c["eligible"] for c in decision["candidates"])
            assert decision["action_probability"] == pytest.approx(1 / eligible)
        else:
            assert decision["action_probability"] == 1.0
        if experiment["arm"] == "rules_only":
            assert decision["model_version"] is None and decision["propensity"] is None
            assert "model_unavailable" in decision["degraded"]


def test_a_user_keeps_their_arm(server, decisions):
    for first in decisions[:20]:
        again = _decide(server, first["user_id"])
        assert again["experiment"]["arm"] == first["experiment"]["arm"]
        if first["experiment"]["key"] is not None:
            assert again["experiment"]["sticky"] is True


def test_the_log_keeps_arm_bucket_and_action_probability(server, decisions):
    decision = next(d for d in decisions if d["experiment"]["arm"] == "random")
    with server.client() as client:
        logged = client.get(f"/v1/decisions/{decision['decision_id']}").json()
    assert (logged["experiment_key"], logged["arm"]) == (EXPERIMENT, "random")
    assert logged["bucket"] == pytest.approx(decision["experiment"]["bucket"])
    assert logged["action_probability"] == pytest.approx(decision["action_probability"])


def _outcome(decision: dict[str, Any], kind: str, seconds: int, **extra) -> dict[str, Any]:
    return {
        "outcome_id": f"{decision['decision_id']}:{kind}",
        "decision_id": decision["decision_id"],
        "type": kind,
        "ts": (DECIDED_AT + timedelta(seconds=seconds)).isoformat(),
    } | extra


def test_each_outcome_is_validated_on_its_own(server, decisions):
    decision = decisions[0]
    batch = [
        _outcome(decision, "impression", 1),
        _outcome(decision, "click", 2, value=3.0),  # only a conversion has a value
        _outcome(decision, "glance", 2),
        {**_outcome(decision, "click", 2), "ts": "2026-03-04T10:00:00"},  # no zone
        {**_outcome(decision, "click", 2), "ts": "2099-01-01T00:00:00Z"},  # ahead of the clock
    ]
    with server.client() as client:
        response = client.post("/v1/outcomes", json=batch)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["accepted"], body["rejected"]) == (1, 4)
    assert [(e["index"], e["field"]) for e in body["errors"]] == [
        (1, "<item>"),
        (2, "type"),
        (3, "ts"),
        (4, "ts"),
    ]
    with server.client() as client:
        empty = client.post("/v1/outcomes", json=[{"outcome_id": "x"}])
    assert empty.status_code == 422 and empty.json()["accepted"] == 0


def _results(server: Server) -> dict[str, Any]:
    with server.client() as client:
        response = client.get(f"/v1/experiments/{EXPERIMENT}/results")
    assert response.status_code == 200, response.text
    return response.json()


def test_results_count_what_was_posted_once_however_often_it_was_sent(server, decisions):
    in_experiment = [d for d in decisions if d["experiment"]["key"] == EXPERIMENT]
    clicked = in_experiment[::3]
    outcomes = [_outcome(d, "impression", 1) for d in in_experiment]
    outcomes += [_outcome(d, "click", 5) for d in clicked]
    with server.client() as client:
        for _ in range(2):  # a client that retries everything
            assert client.post("/v1/outcomes", json=outcomes).json()["accepted"] == len(outcomes)
        # A purchase naming its decision is also that decision's conversion.
        buyer = clicked[0]
        purchase = {
            "event_id": f"buy-{buyer['decision_id']}",
            "user_id": buyer["user_id"],
            "session_id": "s-buy",
            "event_type": "purchase",
            "item_id": 5,
            "category": "electronics",
            "price": 99.5,
            "ts": (DECIDED_AT + timedelta(minutes=10)).isoformat(),
            "decision_id": buyer["decision_id"],
        }
        assert client.post("/v1/events", json=[purchase, purchase]).json()["accepted"] == 2

    def all_counted() -> bool:
        arms = _results(server)["arms"]
        return sum(arm["impressions"] for arm in arms) == len(in_experiment)

    wait_for(all_counted, "the outcomes to be attributed")
    results = _results(server)
    by_arm = {arm["arm"]: arm for arm in results["arms"]}
    for arm, summary in by_arm.items():
        mine = [d for d in in_experiment if d["experiment"]["arm"] == arm]
        assert summary["users"] == len({d["user_id"] for d in mine})
        assert summary["impressions"] == len(mine)
        assert summary["clicks"] == len([d for d in clicked if d["experiment"]["arm"] == arm])
    assert sum(arm["conversions"] for arm in by_arm.values()) == 1
    assert sum(arm["revenue"] for arm in by_arm.values()) == pytest.approx(99.5)
    assert [c["arm"] for c in results["comparisons"]] == ["rules_only", "random"]
    ctr = next(m for m in results["comparisons"][0]["metrics"] if m["metric"] == "ctr")
    assert ctr["lift"]["absolute_ci"]["low"] <= ctr["lift"]["absolute"]
    assert results["sample_ratio"]["mismatch"] is False


def test_the_experiments_are_listed_with_their_status(server):
    with server.client() as client:
        listed = client.get("/v1/experiments").json()
        missing = client.get("/v1/experiments/nope/results")
    assert [(e["key"], e["status"], e["running_now"]) for e in listed] == [
        (EXPERIMENT, "running", True)
    ]
    assert missing.status_code == 404


def test_the_redis_profile_simulates_and_reports_on_postgresql(redis_flow: Flow, tmp_path):
    env = redis_flow.env | {
        "TAILOR_SERVING__PLACEMENTS_FILE": str(running_placements(tmp_path / "p.yaml")),
    }
    simulated = run_tailor(env, "simulate", "--days", "2", "--visits-per-day", "300")
    assert simulated.returncode == 0, simulated.stdout + simulated.stderr
    assert "simulated 600 visits" in simulated.stdout
    report = run_tailor(env, "experiments", "report", EXPERIMENT)
    assert report.returncode == 0, report.stdout + report.stderr
    for arm in ("champion", "rules_only", "random"):
        assert arm in report.stdout
    assert "Lift against the control" in report.stdout
