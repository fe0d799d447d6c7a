"""The decision engine in-process over the flow's store and model, with a placements
file a test writes: for checks that need thousands of decisions or the exact bodies."""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from serving.decision.placements import SHIPPED_PLACEMENTS_FILE
from serving.decision.schemas import PersonalizeRequest
from serving.wiring import Services, build_services
from tests.support.flow import Flow

EXPERIMENT = "homepage_policies"
PLACEMENT = "homepage_banner"
READ_BUDGET_MS = 30_000.0


def banner_placements(
    path: Path,
    arms: list[dict[str, Any]],
    *,
    exploration: dict[str, float] | None = None,
    weights: dict[str, float] | None = None,
    rules: tuple[dict[str, Any], ...] = (),
) -> Path:
    """The shipped file, with the banner's experiment running with `arms` (and nothing
    else running), exploration and weights as given, `rules` added, and no holdout."""
    document = yaml.safe_load(SHIPPED_PLACEMENTS_FILE.read_text())
    banner = document["placements"][PLACEMENT]
    banner["rules"] = [*banner["rules"], *rules]
    if exploration is not None:
        banner["exploration"] = exploration
    if weights is not None:
        banner["weights"] = weights
    for experiment in document["experiments"]:
        if experiment["key"] == EXPERIMENT:
            experiment["status"] = "running"
            experiment["arms"] = arms
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


@contextmanager
def in_process(
    flow: Flow, placements: Path, database: Path, *, seed: int = 0, **overrides: Any
) -> Iterator[Services]:
    """Shadow arms run inline, so every shadow row is there when a decision returns.
    The store's and the decision database's budgets are generous: these tests compare
    decisions, and one that fell back (or spooled a fired trigger, `deferred`) because a
    loaded machine was slow would differ for no reason of theirs."""
    settings = flow.settings(
        serving={"placements_file": placements, "feature_budget_ms": READ_BUDGET_MS},
        decisions={"database_url": f"sqlite:///{database}", "lookup_budget_ms": READ_BUDGET_MS},
        **overrides,
    )
    services = build_services(settings, rng=random.Random(seed), inline_shadows=True)
    try:
        yield services
    finally:
        services.close()


def banner_request(user_id: int, device: str, moment: datetime) -> PersonalizeRequest:
    return PersonalizeRequest.model_validate(
        {
            "user_id": user_id,
            "placement": PLACEMENT,
            "context": {
                "device": device,
                "country": "DE",
                "page": "home",
                "timestamp": moment.isoformat(),
            },
        }
    )
