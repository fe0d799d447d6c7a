"""The admin API: reload, rule dry-run and stats, opt-outs, triggers.

Everything here changes what users see or reads who opted out, so every route needs
the `X-API-Key` header; with no key configured the admin API stays closed.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Security
from fastapi import Path as PathParam
from fastapi.security import APIKeyHeader
from pydantic import BaseModel, Field, ValidationError

from pipelines.settings import TailorSettings
from serving.dry_run import dry_run
from serving.engine import DecisionEngine
from serving.opt_outs import OptOutList
from serving.placements import Placement, compile_placement_rules, located_problem
from serving.rules.evaluation import CompiledRule, ConfigProblem
from serving.schemas import MAX_USER_ID, PersonalizeRequest, RequestContextBody

API_KEY_HEADER = APIKeyHeader(name="X-API-Key", auto_error=False)
UserId = Annotated[int, PathParam(ge=1, le=MAX_USER_ID)]


class ProblemBody(BaseModel):
    placement: str
    rule: str | None
    field: str
    message: str


def _problems(problems: list[ConfigProblem]) -> list[ProblemBody]:
    return [
        ProblemBody(placement=p.placement, rule=p.rule, field=p.field, message=p.message)
        for p in problems
    ]


class ReloadBody(BaseModel):
    outcome: str = Field(description="reloaded, unchanged or rejected")
    version: str = Field(description="The configuration version in force now.")
    problems: list[ProblemBody]


class ConfigBody(BaseModel):
    version: str
    loaded_at: datetime
    file: str
    placements: dict[str, dict[str, int]]
    last_rejected_at: datetime | None
    last_rejection: list[ProblemBody]


class DryRunUser(BaseModel):
    user_id: int = Field(ge=1, le=MAX_USER_ID)
    context: RequestContextBody


class DryRunRequest(BaseModel):
    placement: str
    rule: dict[str, Any] = Field(
        description="A draft rule as in the placements file; a rule with the same id is "
        "replaced by it for the dry-run."
    )
    users: list[DryRunUser] = Field(min_length=1, max_length=100)


class DryRunUserResult(BaseModel):
    user_id: int
    verdict: str = Field(
        description="fired, not_matched, inactive, missing_inputs or error for the draft."
    )
    error: str | None
    outcome: str | None = Field(
        description="What the draft did once fired: applied, overridden, no_target, would_trigger."
    )
    variant_before: str
    variant_after: str
    changed: bool
    winning_rule_before: str | None
    winning_rule_after: str | None
    degraded: list[str]


class DryRunBody(BaseModel):
    placement: str
    rule_id: str
    config_version: str
    fired: int
    changed: int
    users: list[DryRunUserResult]


class OptOutBody(BaseModel):
    reason: str | None = Field(None, max_length=200)


def admin_router(settings: TailorSettings) -> APIRouter:
    def require_key(key: str | None = Security(API_KEY_HEADER)) -> None:
        configured = settings.serving.admin_api_key
        if configured is None:
            raise HTTPException(
                403, "the admin API is closed: set TAILOR_SERVING__ADMIN_API_KEY to open it"
            )
        if key is None or not secrets.compare_digest(key, configured.get_secret_value()):
            raise HTTPException(401, "missing or wrong X-API-Key header")

    router = APIRouter(prefix="/v1/admin", tags=["admin"], dependencies=[Depends(require_key)])

    def engine_of(request: Request) -> DecisionEngine:
        return request.app.state.engine

    @router.post("/reload", response_model=ReloadBody, responses={422: {"model": ReloadBody}})
    def reload(request: Request) -> Any:
        """Re-read the placements file; an invalid file is rejected and the running
        version stays in force."""
        outcome = engine_of(request).config.reload()
        body = ReloadBody(
            outcome=outcome.outcome, version=outcome.version, problems=_problems(outcome.problems)
        )
        if outcome.outcome == "rejected":
            raise HTTPException(422, body.model_dump())
        return body

    @router.get("/config", response_model=ConfigBody)
    def config(request: Request) -> ConfigBody:
        holder = engine_of(request).config
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
            last_rejection=_problems(rejection[1]) if rejection else [],
        )

    @router.get("/rules/symbols")
    def symbols(request: Request) -> dict[str, str]:
        """Names a rule condition may use, with their types."""
        return engine_of(request).symbols.describe()

    @router.get("/rules/stats")
    def stats(request: Request) -> dict[str, Any]:
        """Per-rule counts in this process since the running version was loaded."""
        snapshot = engine_of(request).config.current
        rules = snapshot.stats.report()
        return {
            "config_version": snapshot.version,
            "since": snapshot.stats.since,
            "rules": rules,
            "never_fired": [r["rule_id"] for r in rules if r["never_fired"]],
        }

    @router.post("/rules/dry-run", response_model=DryRunBody)
    def dry_run_rule(body: DryRunRequest, request: Request) -> DryRunBody:
        """Evaluate a draft rule for the given users: does it fire, and what changes."""
        engine = engine_of(request)
        snapshot = engine.config.current
        placements = snapshot.placements.config.placements
        if body.placement not in placements:
            raise HTTPException(
                422, f"unknown placement {body.placement!r}; known: {sorted(placements)}"
            )
        drafted, compiled = placement_with_draft(
            body.placement, placements[body.placement], body.rule, engine
        )
        # The draft sits where the rule it replaces was, or last when it is new.
        draft = next(rule for rule in drafted.rules if rule.id == body.rule.get("id"))
        outcomes = dry_run(
            engine,
            drafted,
            snapshot.placements.rules[body.placement],
            compiled,
            draft.id,
            [
                PersonalizeRequest(user_id=u.user_id, placement=body.placement, context=u.context)
                for u in body.users
            ],
        )
        users = [
            DryRunUserResult(**vars(o), changed=o.variant_before != o.variant_after)
            for o in outcomes
        ]
        return DryRunBody(
            placement=body.placement,
            rule_id=draft.id,
            config_version=snapshot.version,
            fired=sum(u.verdict == "fired" for u in users),
            changed=sum(u.changed for u in users),
            users=users,
        )

    @router.get("/opt-outs")
    def list_opt_outs(
        request: Request, limit: int = Query(1000, ge=1, le=100_000)
    ) -> list[dict[str, Any]]:
        return _opt_outs(request).list(limit)

    @router.put("/opt-outs/{user_id}", status_code=204)
    def opt_out(user_id: UserId, request: Request, body: OptOutBody | None = None) -> None:
        """From now on this user gets default content and no behavioral data is used."""
        _opt_outs(request).add(user_id, body.reason if body else None)

    @router.delete("/opt-outs/{user_id}", status_code=204)
    def opt_in(user_id: UserId, request: Request) -> None:
        _opt_outs(request).remove(user_id)

    @router.get("/triggers")
    def triggers(
        request: Request,
        status: str | None = Query(None, pattern="^(pending|sent|failed|stored)$"),
        limit: int = Query(100, ge=1, le=10_000),
    ) -> list[dict[str, Any]]:
        """The trigger outbox, newest first."""
        outbox = engine_of(request).outbox
        if outbox is None:
            raise HTTPException(503, "the trigger outbox is not configured")
        return outbox.list(status, limit)

    return router


def _opt_outs(request: Request) -> OptOutList:
    opt_outs = request.app.state.engine.opt_outs
    if opt_outs is None:
        raise HTTPException(503, "the opt-out list is not configured")
    return opt_outs


def placement_with_draft(
    name: str, placement: Placement, raw_rule: dict[str, Any], engine: DecisionEngine
) -> tuple[Placement, tuple[CompiledRule, ...]]:
    """The placement with the draft in place of the rule of the same id (at its position:
    file order breaks priority ties), or added last, compiled; HTTP 422 naming the field
    when the draft is invalid."""
    rules: list[Any] = [rule.model_dump() for rule in placement.rules]
    ids = [rule.id for rule in placement.rules]
    if raw_rule.get("id") in ids:
        rules[ids.index(raw_rule["id"])] = raw_rule
    else:
        rules.append(raw_rule)
    document = {"placements": {name: {**placement.model_dump(), "rules": rules}}}
    try:
        drafted = Placement.model_validate(document["placements"][name])
    except ValidationError as error:
        problems = [
            located_problem({**issue, "loc": ("placements", name, *issue["loc"])}, document)
            for issue in error.errors()
        ]
        raise HTTPException(
            422, {"problems": [p.model_dump() for p in _problems(problems)]}
        ) from None
    compiled, problems = compile_placement_rules(name, drafted, engine.symbols)
    if problems:
        raise HTTPException(422, {"problems": [p.model_dump() for p in _problems(problems)]})
    return drafted, compiled
