"""The admin API: reload placements or the model, rule dry-run and stats, opt-outs, triggers.

Every route needs the `X-API-Key` header (`deps.require_admin_key`); with no key
configured the admin API stays closed.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi import Path as PathParam
from sqlalchemy.exc import SQLAlchemyError

from serving.api.deps import EngineDep, ServicesDep, require_admin_key, snapshot_with
from serving.api.responses import ADMIN, UNAVAILABLE, UNPARSABLE, refusal
from serving.api.schemas import (
    ConfigBody,
    DraftRefused,
    DryRunBody,
    DryRunRequest,
    DryRunUserResult,
    ModelReloadBody,
    ModelReloadRejected,
    OptOutBody,
    ProblemBody,
    ReloadBody,
    ReloadRejected,
    ValidationErrorBody,
)
from serving.decision.dry_run import DraftRejected, dry_run, placement_with_draft
from serving.decision.schemas import MAX_USER_ID, PersonalizeRequest
from serving.experiments.engagement import rule_engagement
from serving.persistence.rule_engagement import engagement_by_rule

UserId = Annotated[int, PathParam(ge=1, le=MAX_USER_ID)]

router = APIRouter(
    prefix="/v1/admin",
    tags=["admin"],
    dependencies=[Depends(require_admin_key)],
    responses=ADMIN,
)


@router.post(
    "/reload",
    response_model=ReloadBody,
    responses={422: refusal("The file was rejected; the running version stays.", ReloadRejected)},
)
def reload(engine: EngineDep) -> Any:
    """Re-read the placements file; an invalid file is rejected and the running
    version stays in force."""
    outcome = engine.config.reload()
    body = ReloadBody(
        outcome=outcome.outcome,
        version=outcome.version,
        problems=ProblemBody.listing(outcome.problems),
    )
    if outcome.outcome == "rejected":
        raise HTTPException(422, body.model_dump())
    return body


@router.post(
    "/models/reload",
    response_model=ModelReloadBody,
    responses={
        409: refusal(
            "The promoted model cannot serve here; the running one stays.", ModelReloadRejected
        )
    },
)
def reload_model(services: ServicesDep) -> Any:
    """Serve the champion `models/latest` names now, instead of at the next poll."""
    outcome = services.models.reload()
    body = ModelReloadBody(**dataclasses.asdict(outcome))
    if outcome.outcome == "rejected":
        raise HTTPException(409, body.model_dump())
    return body


@router.get("/config", response_model=ConfigBody)
def config(engine: EngineDep) -> ConfigBody:
    holder = engine.config
    snapshot = holder.current
    rejection = holder.last_rejection
    return ConfigBody(
        version=snapshot.version,
        loaded_at=snapshot.loaded_at,
        file=str(holder.path),
        placements={
            name: {"variants": len(p.variants), "rules": len(p.rules)}
            for name, p in snapshot.placements.config.placements.items()
        },
        last_rejected_at=rejection[0] if rejection else None,
        last_rejection=ProblemBody.listing(rejection[1]) if rejection else [],
    )


@router.get("/rules/symbols")
def symbols(engine: EngineDep) -> dict[str, str]:
    """Names a rule condition may use, with their types."""
    return engine.symbols.describe()


@router.get("/rules/stats")
def stats(
    engine: EngineDep,
    services: ServicesDep,
    days: int = Query(7, ge=1, le=90, description="Engagement window, ending now."),
) -> dict[str, Any]:
    """Per-rule counts in this process since the running version was loaded, and each
    rule's engagement over the last `days` from the decision log: CTR and conversion
    of the decisions it decided against the placement's others, with rules to review."""
    snapshot = engine.config.current
    rules = snapshot.stats.report()
    until = engine.clock.now()
    since = until - timedelta(days=days)
    try:
        by_rule = engagement_by_rule(services.database, since, until)
    except SQLAlchemyError:
        engagement, note = None, "the decision database is unreachable; engagement left out"
    else:
        engagement = [
            rule_engagement(placement, rule.id, by_rule).model_dump(mode="json")
            for placement, compiled in snapshot.placements.rules.items()
            for rule in compiled
            if not rule.is_trigger
        ]
        note = None
    return {
        "config_version": snapshot.version,
        "since": snapshot.stats.since,
        "rules": rules,
        "never_fired": [r["rule_id"] for r in rules if r["never_fired"]],
        "engagement": engagement,
        "engagement_window": {"since": since, "until": until},
        "engagement_note": note,
        "to_review": [
            {"placement": e["placement"], "rule_id": e["rule_id"], "why": e["review"]}
            for e in engagement or []
            if e["review"]
        ],
    }


@router.post(
    "/rules/dry-run",
    response_model=DryRunBody,
    responses=UNPARSABLE
    | {
        422: refusal(
            "The request is invalid, or the draft rule does not compile.",
            ValidationErrorBody | DraftRefused,
        )
    },
)
def dry_run_rule(body: DryRunRequest, engine: EngineDep) -> DryRunBody:
    """Evaluate a draft rule for the given users: does it fire, and what changes."""
    snapshot = snapshot_with(engine, body.placement)
    placement = snapshot.placements.config.placements[body.placement]
    try:
        draft = placement_with_draft(body.placement, placement, body.rule, engine.symbols)
    except DraftRejected as error:
        problems = [p.model_dump() for p in ProblemBody.listing(error.problems)]
        raise HTTPException(422, {"problems": problems}) from None
    outcomes = dry_run(
        engine,
        draft.placement,
        snapshot.placements.rules[body.placement],
        draft.compiled,
        draft.rule_id,
        [
            PersonalizeRequest(user_id=u.user_id, placement=body.placement, context=u.context)
            for u in body.users
        ],
    )
    users = [
        DryRunUserResult(**vars(o), changed=o.variant_before != o.variant_after) for o in outcomes
    ]
    return DryRunBody(
        placement=body.placement,
        rule_id=draft.rule_id,
        config_version=snapshot.version,
        fired=sum(u.verdict == "fired" for u in users),
        changed=sum(u.changed for u in users),
        users=users,
    )


@router.get("/opt-outs", responses=UNAVAILABLE)
def list_opt_outs(
    services: ServicesDep, limit: int = Query(1000, ge=1, le=100_000)
) -> list[dict[str, Any]]:
    return services.opt_outs.list(limit)


@router.put("/opt-outs/{user_id}", status_code=204, responses=UNPARSABLE | UNAVAILABLE)
def opt_out(user_id: UserId, services: ServicesDep, body: OptOutBody | None = None) -> None:
    """From now on this user gets default content and no behavioral data is used."""
    services.opt_outs.add(user_id, body.reason if body else None)


@router.delete("/opt-outs/{user_id}", status_code=204, responses=UNAVAILABLE)
def opt_in(user_id: UserId, services: ServicesDep) -> None:
    services.opt_outs.remove(user_id)


@router.get("/triggers", responses=UNAVAILABLE)
def triggers(
    services: ServicesDep,
    status: str | None = Query(None, pattern="^(pending|sent|failed|stored)$"),
    limit: int = Query(100, ge=1, le=10_000),
) -> list[dict[str, Any]]:
    """The trigger outbox, newest first."""
    return services.outbox.list(status, limit)
