"""The placements file: the shipped one loads, bad ones are refused with the field named."""

from __future__ import annotations

import datetime
import re
from pathlib import Path

import pytest
import yaml

from serving.decision.config_holder import PlacementsHolder
from serving.decision.engine import DecisionEngine
from serving.decision.placements import (
    SHIPPED_PLACEMENTS_FILE,
    PlacementsConfigError,
    load_placements,
)
from tests.support.flow import run_tailor, tailor_env

SYMBOLS = DecisionEngine.symbols_for(None)


def test_the_shipped_file_has_the_documented_placements():
    loaded = load_placements(SHIPPED_PLACEMENTS_FILE, SYMBOLS)
    assert {"homepage_banner", "product_page_recs"} <= set(loaded.config.placements)
    assert loaded.version.startswith(loaded.config.version + "+")


def _write(tmp_path: Path, document: dict) -> Path:
    path = tmp_path / "placements.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def _valid() -> dict:
    return yaml.safe_load(SHIPPED_PLACEMENTS_FILE.read_text())


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (
            lambda d: d["placements"]["homepage_banner"]["weights"].update(behavioral=-1),
            "placements.homepage_banner.weights.behavioral",
        ),
        (
            lambda d: d["placements"]["homepage_banner"].update(fallback_variant="nope"),
            "fallback_variant 'nope' is not one of the variants",
        ),
        (
            lambda d: d["placements"]["product_page_recs"]["variants"][0].update(colour="red"),
            "placements.product_page_recs.variants.0.colour",
        ),
        (
            lambda d: d["placements"]["homepage_banner"]["variants"][1]["context"].update(
                devices=["watch"]
            ),
            "placements.homepage_banner.variants.1.context.devices.0",
        ),
        (lambda d: d.pop("version"), "version: Field required"),
        (
            lambda d: d["placements"]["homepage_banner"]["rules"][2]["action"].update(factor=0.5),
            "placements.homepage_banner.rules[follow_session_interest].action.factor: "
            "Input should be greater than 1",
        ),
        (
            lambda d: d["placements"]["homepage_banner"]["rules"][1].update(when="cart_valu >= 50"),
            "placements.homepage_banner.rules[cart_reminder_push].when: unknown symbol "
            "'cart_valu'; did you mean 'cart_value'",
        ),
        (
            lambda d: d["placements"]["homepage_banner"]["rules"][0].update(
                when="cart_value > 'a lot'"
            ),
            "placements.homepage_banner.rules[recover_abandoned_cart].when: type error: ",
        ),
        (
            lambda d: d["placements"]["homepage_banner"]["rules"][0].update(when="cart_value"),
            "rules[recover_abandoned_cart].when: must be true or false, but gives a float",
        ),
        (
            lambda d: d["placements"]["homepage_banner"]["rules"][0].update(when="cart_value >"),
            "rules[recover_abandoned_cart].when: Failed to parse expression",
        ),
        (
            lambda d: d["placements"]["homepage_banner"]["rules"][0].update(
                when="views_7d + 1.5 > 3.0"
            ),
            "rules[recover_abandoned_cart].when: type error: No such overload",
        ),
        (
            lambda d: d["placements"]["homepage_banner"]["rules"][0]["action"].update(
                variant="cart_recover"
            ),
            "placements.homepage_banner.rules[recover_abandoned_cart].action.variant: "
            "unknown variants ['cart_recover']",
        ),
        (
            lambda d: d["placements"]["product_page_recs"]["rules"][1]["action"].update(
                target={"variants": ["bestsellers"]}
            ),
            "rules[no_cross_sell_on_checkout].action.target.variants: the fallback variant "
            "cannot be suppressed",
        ),
        (
            lambda d: d["placements"]["homepage_banner"]["rules"][3]["active"].update(
                start="2026-12-02T00:00:00Z"
            ),
            "rules[black_friday_deals].active: Value error, start must be before end",
        ),
        (
            lambda d: d["placements"]["homepage_banner"]["rules"].append(
                d["placements"]["homepage_banner"]["rules"][0]
            ),
            "rule ids must be unique within a rule set; repeated: ['recover_abandoned_cart']",
        ),
        (
            lambda d: d["placements"]["homepage_banner"]["rules"][1]["action"].update(once_per=0),
            "rules[cart_reminder_push].action.once_per: Input should be greater than 0 seconds",
        ),
        (
            lambda d: d["placements"]["homepage_banner"]["rules"][1]["action"].update(
                payload={"campaign": datetime.date(2026, 11, 27)}  # what YAML makes of 2026-11-27
            ),
            "rules[cart_reminder_push].action.payload.campaign: input was not a valid JSON value",
        ),
        (
            lambda d: d["placements"]["homepage_banner"]["rules"][2]["action"].update(
                target={"tags": ["deal", "dael"]}
            ),
            "rules[follow_session_interest].action.target.tags: no variant has tag 'dael'",
        ),
        (
            lambda d: d["placements"]["homepage_banner"]["rules"][1].update(
                active={"hours": [5, 5]}
            ),
            "rules[cart_reminder_push].active.hours: Value error, an empty range of hours",
        ),
    ],
)
def test_invalid_files_name_the_field(tmp_path, mutate, expected):
    document = _valid()
    mutate(document)
    with pytest.raises(PlacementsConfigError, match=re.escape(expected)):
        load_placements(_write(tmp_path, document), SYMBOLS)


def test_a_key_repeated_in_the_file_is_refused_not_silently_replaced(tmp_path):
    text = SHIPPED_PLACEMENTS_FILE.read_text()
    path = tmp_path / "placements.yaml"
    path.write_text(text + "\nversion: again\n")
    with pytest.raises(PlacementsConfigError, match="duplicate key 'version'"):
        load_placements(path, SYMBOLS)


def test_a_file_that_is_not_yaml_is_refused(tmp_path):
    path = tmp_path / "placements.yaml"
    path.write_text("placements: [unclosed")
    with pytest.raises(PlacementsConfigError, match="not valid YAML"):
        load_placements(path, SYMBOLS)


def test_tailor_check_validates_a_file_before_deploying(tmp_path):
    """The command a CI job runs on a marketer's change: exit 1 naming the problem."""
    env = tailor_env(tmp_path)
    good = run_tailor(env, "check", str(SHIPPED_PLACEMENTS_FILE))
    assert good.returncode == 0, good.stdout + good.stderr
    assert "homepage_banner" in good.stdout
    document = _valid()
    document["placements"]["homepage_banner"]["rules"][1]["when"] = "cart_valu >= 50.0"
    bad = run_tailor(env, "check", str(_write(tmp_path, document)))
    assert bad.returncode == 1
    assert "rules[cart_reminder_push].when: unknown symbol 'cart_valu'" in bad.stdout


def test_reverting_a_refused_edit_clears_the_refusal(tmp_path):
    path = tmp_path / "placements.yaml"
    path.write_text(SHIPPED_PLACEMENTS_FILE.read_text())
    holder = PlacementsHolder(path, SYMBOLS)
    path.write_text("placements: [unclosed")
    assert holder.reload().outcome == "rejected"
    assert holder.last_rejection is not None
    path.write_text(SHIPPED_PLACEMENTS_FILE.read_text())
    assert holder.reload().outcome == "unchanged"
    assert holder.last_rejection is None
