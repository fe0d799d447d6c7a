"""The decision engine over HTTP: explanations, the decision log, triggers, reload,
dry-run, stats and consent, on a real server with a real store, model and database."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb
import httpx
import numpy as np
import pytest
import yaml

from serving.decision.placements import SHIPPED_PLACEMENTS_FILE
from tailor.core.model_artifact import load_artifact
from tests.support.flow import CLOCK_START, Flow, Server, start_server
from tests.support.waiting import wait_for
from tests.support.webhook import Receiver, webhook_receiver

ADMIN = {"X-API-Key": "test-admin-key"}
CONTEXT = {"device": "desktop", "country": "DE", "page": "home"}
NOTIFIED_USER = 42
ERROR_USER = 43

TEST_RULES = [
    {
        "id": "ping_user_42",
        "priority": 5,
        "when": f"user_id == {NOTIFIED_USER}",
        "action": {"type": "trigger", "notification": "hello", "once_per": "24h"},
    },
    {
        "id": "broken_for_43",
        "priority": 6,
        "when": f"user_id == {ERROR_USER} && hour / (hour - hour) > 1",
        "action": {"type": "force", "variant": "welcome"},
    },
]


def _placements(weights: dict[str, float] | None = None, version: str = "test.1") -> str:
    document = yaml.safe_load(SHIPPED_PLACEMENTS_FILE.read_text())
    document["version"] = version
    banner = document["placements"]["homepage_banner"]
    banner["rules"] = [*banner["rules"], *TEST_RULES]
    if weights is not None:
        banner["weights"] = weights
    return yaml.safe_dump(document)


@dataclass
class RulesApi:
    server: Server
    env: dict[str, str]
    placements: Path
    receiver: Receiver

    def client(self) -> httpx.Client:
        return self.server.client()

    def decide(self, user_id: int = 1, **body: Any) -> dict[str, Any]:
        payload = {"user_id": user_id, "placement": "homepage_banner", "context": CONTEXT}
        with self.client() as client:
            response = client.post("/v1/personalize", json=payload | body)
        assert response.status_code == 200, response.text
        return response.json()

    def admin(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        with self.client() as client:
            return client.request(method, f"/v1/admin{path}", headers=ADMIN, **kwargs)

    def restart(self) -> None:
        self.server.stop()
        self.server = start_server(self.env)

    def install(self, text: str) -> None:
        """Write and load a placements file: "unchanged" means the watcher was quicker."""
        self.placements.write_text(text)
        outcome = self.admin("POST", "/reload").json()["outcome"]
        assert outcome in {"reloaded", "unchanged"}, outcome
        version = yaml.safe_load(text)["version"]
        assert self.admin("GET", "/config").json()["version"].startswith(f"{version}+")


@pytest.fixture(scope="module")
def rules_api(flow: Flow, tmp_path_factory) -> Iterator[RulesApi]:
    home = tmp_path_factory.mktemp("rules_api")
    placements = home / "placements.yaml"
    placements.write_text(_placements())
    with webhook_receiver() as receiver:
        env = flow.env | {
            "TAILOR_SERVING__PLACEMENTS_FILE": str(placements),
            "TAILOR_SERVING__ADMIN_API_KEY": ADMIN["X-API-Key"],
            "TAILOR_SERVING__EXPLAIN_TOP_FEATURES": "50",
            "TAILOR_DECISIONS__DATABASE_URL": f"sqlite:///{home / 'decisions.db'}",
            "TAILOR_DECISIONS__WEBHOOK_URL": receiver.url,
            "TAILOR_DECISIONS__DISPATCH_INTERVAL_SECONDS": "0.1",
        }
        api = RulesApi(start_server(env), env, placements, receiver)
        yield api
        api.server.stop()


def test_explanations_add_up(rules_api):
    decision = rules_api.decide()
    weights = decision["weights"]
    for candidate in decision["candidates"]:
        components = candidate["components"]
        available = [name for name in weights if components[name] is not None]
        base = sum(weights[n] * components[n] for n in available) / sum(
            weights[n] for n in available
        )
        assert candidate["base_score"] == pytest.approx(base)
        assert candidate["score"] == pytest.approx(base * candidate["rule_factor"])
    explanation = decision["model_explanation"]
    log_odds = explanation["bias"] + sum(
        c["contribution"] for c in explanation["top_contributions"]
    )
    # Contributions explain the booster's score; the propensity is that score calibrated.
    model = load_artifact(Path(rules_api.env["TAILOR_MODELS_DIR"]), decision["model_version"])
    assert model.calibration is not None
    calibrated = model.calibration.apply(np.array([1 / (1 + math.exp(-log_odds))]))[0]
    assert calibrated == pytest.approx(decision["propensity"], rel=1e-6)
    contributions = [abs(c["contribution"]) for c in explanation["top_contributions"]]
    assert contributions == sorted(contributions, reverse=True)


def test_weights_change_the_ranking_as_configured(rules_api):
    """Desktop user: all weight on context puts the desktop-only banner on top; all
    weight on behavior puts the user's favourite category there."""
    rules_api.install(
        _placements({"behavioral": 0, "contextual": 1, "predictive": 0}, "weights.context")
    )
    by_context = rules_api.decide()
    rules_api.install(
        _placements({"behavioral": 1, "contextual": 0, "predictive": 0}, "weights.behavior")
    )
    by_behavior = rules_api.decide()
    rules_api.install(_placements())

    def top(decision: dict, component: str) -> str:
        eligible = [c for c in decision["candidates"] if c["eligible"]]
        return max(eligible, key=lambda c: c["components"][component])["variant_id"]

    assert by_context["config_version"].startswith("weights.context+")
    assert by_context["variant"]["id"] == top(by_context, "contextual") == "electronics_deals"
    assert by_behavior["variant"]["id"] == top(by_behavior, "behavioral")
    assert by_behavior["variant"]["id"] != by_context["variant"]["id"]


def test_every_decision_is_logged_and_can_be_fetched(rules_api):
    decision = rules_api.decide(user_id=7)
    with rules_api.client() as client:
        logged = client.get(f"/v1/decisions/{decision['decision_id']}")
        missing = client.get("/v1/decisions/0123456789abcdef0123456789abcdef")
    assert logged.status_code == 200, logged.text
    row = logged.json()
    assert row["decision"] == decision
    assert row["request"]["user_id"] == 7
    assert row["variant_id"] == decision["variant"]["id"]
    assert row["config_version"] == decision["config_version"]
    assert row["model_version"] == decision["model_version"]
    # The vector the model scored, as monitoring reads it: each explained value.
    assert row["propensity"] == decision["propensity"]
    explained = decision["model_explanation"]["top_contributions"]
    assert len(explained) == len(row["features"])  # explain_top_features covers them all
    assert {c["feature"]: c["value"] for c in explained} == row["features"]
    assert missing.status_code == 404


def test_a_trigger_is_sent_once_per_window_even_across_restarts(rules_api):
    first = rules_api.decide(user_id=NOTIFIED_USER)
    second = rules_api.decide(user_id=NOTIFIED_USER)
    assert [t["status"] for t in first["triggers"]] == ["queued"]
    assert [t["status"] for t in second["triggers"]] == ["duplicate"]
    outbox_id = first["triggers"][0]["outbox_id"]
    assert second["triggers"][0]["outbox_id"] == outbox_id
    fired = {rule["id"]: rule for rule in first["rules_fired"]}
    assert fired["ping_user_42"]["action"] == "trigger"

    def pings() -> list[dict[str, Any]]:
        return [r for r in rules_api.receiver.requests if r["body"]["rule_id"] == "ping_user_42"]

    wait_for(lambda: len(pings()) == 1, "the webhook call")
    rules_api.restart()
    after_restart = rules_api.decide(user_id=NOTIFIED_USER)
    assert [t["status"] for t in after_restart["triggers"]] == ["duplicate"]
    sent = rules_api.admin("GET", "/triggers", params={"status": "sent"}).json()
    assert [row["id"] for row in sent if row["rule_id"] == "ping_user_42"] == [outbox_id]
    time.sleep(0.5)  # several dispatch intervals: nothing more may arrive
    assert [r["key"] for r in pings()] == [outbox_id]
    assert pings()[0]["body"]["notification"] == "hello"


def test_a_rule_that_fails_to_evaluate_degrades_the_decision_not_the_request(rules_api):
    decision = rules_api.decide(user_id=ERROR_USER)
    assert "rule_error:broken_for_43" in decision["degraded"]
    assert all(rule["id"] != "broken_for_43" for rule in decision["rules_fired"])
    stats = rules_api.admin("GET", "/rules/stats").json()
    row = next(r for r in stats["rules"] if r["rule_id"] == "broken_for_43")
    assert row["errors"] >= 1


def test_a_bad_file_is_rejected_and_the_running_version_stays(rules_api):
    running = rules_api.decide()["config_version"]
    document = yaml.safe_load(_placements(version="broken"))
    document["placements"]["homepage_banner"]["rules"][0]["when"] = "cart_value >> 3"
    document["placements"]["product_page_recs"]["rules"][0]["action"]["factor"] = -1
    rules_api.placements.write_text(yaml.safe_dump(document))
    response = rules_api.admin("POST", "/reload")
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert detail["outcome"] == "rejected" and detail["version"] == running
    located = {(p["placement"], p["rule"], p["field"]) for p in detail["problems"]}
    assert ("product_page_recs", "cross_sell_open_cart", "action.factor") in located
    assert rules_api.decide()["config_version"] == running
    config = rules_api.admin("GET", "/config").json()
    assert config["version"] == running and config["last_rejection"]
    with rules_api.client() as client:
        assert client.get("/health").json()["config_reload_rejected"] is True

    rules_api.placements.write_text(_placements(version="watched.1"))  # the watcher reloads

    def reloaded() -> bool:
        return rules_api.decide()["config_version"].startswith("watched.1+")

    wait_for(reloaded, "the file watcher to load the fixed file")


def test_a_rule_error_in_the_condition_is_named_at_reload(rules_api):
    document = yaml.safe_load(_placements(version="typo"))
    document["placements"]["homepage_banner"]["rules"][0]["when"] = "revenu_30d > 500"
    rules_api.placements.write_text(yaml.safe_dump(document))
    detail = rules_api.admin("POST", "/reload").json()["detail"]
    rules_api.install(_placements())
    [problem] = detail["problems"]
    assert problem["placement"] == "homepage_banner"
    assert problem["rule"] == "recover_abandoned_cart"
    assert problem["field"] == "when"
    assert "did you mean 'revenue_30d'" in problem["message"]


def test_dry_run_shows_whether_a_draft_fires_and_what_it_changes(rules_api):
    draft = {
        "id": "recover_user_7",
        "priority": 500,
        "when": "user_id == 7",
        "action": {"type": "force", "variant": "cart_recovery"},
    }
    users = [{"user_id": 7, "context": CONTEXT}, {"user_id": 8, "context": CONTEXT}]
    response = rules_api.admin(
        "POST",
        "/rules/dry-run",
        json={"placement": "homepage_banner", "rule": draft, "users": users},
    )
    assert response.status_code == 200, response.text
    result = response.json()
    assert (result["fired"], result["changed"]) == (1, 1)
    seven, eight = result["users"]
    assert seven["verdict"] == "fired" and seven["outcome"] == "applied"
    assert seven["variant_after"] == "cart_recovery" != seven["variant_before"]
    assert seven["winning_rule_after"] == "recover_user_7"
    assert eight["verdict"] == "not_matched" and not eight["changed"]
    # A dry-run decides nothing: no trigger, no stats.
    stats = rules_api.admin("GET", "/rules/stats").json()
    assert all(r["rule_id"] != "recover_user_7" for r in stats["rules"])

    bad = rules_api.admin(
        "POST",
        "/rules/dry-run",
        json={
            "placement": "homepage_banner",
            "rule": draft | {"when": "user_idd == 7"},
            "users": users,
        },
    )
    assert bad.status_code == 422
    [problem] = bad.json()["detail"]["problems"]
    assert (problem["rule"], problem["field"]) == ("recover_user_7", "when")


def test_stats_flag_rules_that_never_fire(rules_api):
    for user_id in (1, 2, 3):
        rules_api.decide(user_id=user_id)
    stats = rules_api.admin("GET", "/rules/stats").json()
    assert "black_friday_deals" in stats["never_fired"] or any(
        r["rule_id"] == "black_friday_deals" and r["inactive"] > 0 for r in stats["rules"]
    )
    by_id = {r["rule_id"]: r for r in stats["rules"]}
    assert by_id["ping_user_42"]["evaluated"] >= 3


def test_opted_out_users_get_default_content_and_no_behavioral_data(rules_api):
    user_id = 15
    assert rules_api.decide(user_id=user_id)["personalized"] is True
    assert rules_api.admin("PUT", f"/opt-outs/{user_id}").status_code == 204
    decision = rules_api.decide(user_id=user_id)
    assert rules_api.admin("DELETE", f"/opt-outs/{user_id}").status_code == 204
    withheld = rules_api.decide(user_id=user_id, personalization_consent=False)
    again = rules_api.decide(user_id=user_id)

    for private in (decision, withheld):
        assert private["variant"]["id"] == "welcome"  # the fallback
        assert private["personalized"] is False
        assert private["propensity"] is None and private["model_explanation"] is None
        assert private["rules_fired"] == [] and private["triggers"] == []
        assert all(value is None for value in private["signals"].values())
    assert "opted_out" in decision["degraded"]
    assert "consent_withheld" in withheld["degraded"]
    assert again["personalized"] is True


def test_the_admin_api_needs_the_key(rules_api, api):
    with rules_api.client() as client:
        assert client.post("/v1/admin/reload").status_code == 401
        assert client.post("/v1/admin/reload", headers={"X-API-Key": "wrong"}).status_code == 401
    with api.client() as client:  # no key configured: closed
        closed = client.post("/v1/admin/reload", headers=ADMIN)
    assert closed.status_code == 403
    assert "TAILOR_SERVING__ADMIN_API_KEY" in closed.json()["detail"]


def _valuable_user(flow: Flow) -> int:
    marts = flow.data_dir / "marts" / "user_daily_features.parquet"
    return int(
        duckdb.sql(
            f"""
            SELECT user_id FROM read_parquet('{marts}')
            WHERE snapshot_date = (SELECT max(snapshot_date) FROM read_parquet('{marts}'))
              AND revenue_30d > 500
            ORDER BY user_id LIMIT 1
            """
        ).fetchall()[0][0]
    )


def test_an_abandoned_cart_forces_the_recovery_offer_and_one_reminder(rules_api, flow):
    """The shipped rules end to end: a valuable customer puts an item in the cart and
    leaves; 15 minutes later the banner is the recovery offer, 40 minutes later the
    push reminder is also due, once."""
    user_id = _valuable_user(flow)
    added = CLOCK_START
    cart = {
        "event_id": f"cart-{user_id}-{added.timestamp()}",
        "user_id": user_id,
        "session_id": f"s-{user_id}",
        "event_type": "add_to_cart",
        "item_id": 1,
        "category": "electronics",
        "price": 120.0,
        "ts": added.isoformat(),
    }
    with rules_api.client() as client:
        assert client.post("/v1/events", json=cart).json()["accepted"] == 1

    def at(minutes: int) -> dict[str, Any]:
        moment = (added + timedelta(minutes=minutes)).isoformat()
        return rules_api.decide(user_id=user_id, context=CONTEXT | {"timestamp": moment})

    wait_for(lambda: at(15)["signals"]["cart_items"] == 1, "the cart event to be applied")
    assert at(5)["variant"]["id"] != "cart_recovery"  # too early
    fifteen = at(15)
    assert fifteen["variant"]["id"] == "cart_recovery"
    assert fifteen["winning_rule"] == "recover_abandoned_cart"
    assert fifteen["triggers"] == []
    forty, forty_five = at(40), at(45)
    assert [t["status"] for t in forty["triggers"]] == ["queued"]
    assert [t["status"] for t in forty_five["triggers"]] == ["duplicate"]
    assert forty["triggers"][0]["rule_id"] == "cart_reminder_push"


def test_dry_run_of_an_edited_existing_rule_reports_that_rule(rules_api):
    """The draft replaces `recover_abandoned_cart` in place (not at the end of the
    list): the verdict and outcome must be that rule's, not the last rule's."""
    edited = {
        "id": "recover_abandoned_cart",
        "priority": 100,
        "when": "user_id == 7",
        "action": {"type": "force", "variant": "cart_recovery"},
    }
    response = rules_api.admin(
        "POST",
        "/rules/dry-run",
        json={
            "placement": "homepage_banner",
            "rule": edited,
            "users": [{"user_id": 7, "context": CONTEXT}, {"user_id": 8, "context": CONTEXT}],
        },
    )
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["rule_id"] == "recover_abandoned_cart"
    seven, eight = result["users"]
    assert (seven["verdict"], seven["outcome"]) == ("fired", "applied")
    assert seven["variant_after"] == "cart_recovery"
    assert seven["winning_rule_after"] == "recover_abandoned_cart"
    assert eight["verdict"] == "not_matched"
