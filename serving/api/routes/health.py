"""GET /health: the model, the online store, the decision database, the configuration
and the pipelines' state, answered within `serving.health_budget_seconds`.

Degraded (no model, the online store unreachable, the decision log failing) answers
`serving.health_degraded_status`: 503 by default, so a load balancer stops sending
traffic; the body says why either way.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from serving.api.deps import HealthChecksDep, ServicesDep, SettingsDep
from serving.api.health_checks import BoundedCheck, results
from serving.api.schemas import FeatureStoreHealth, HealthBody, SpillBody
from serving.wiring import Services
from tailor.core.run_records import RunRecords, last_success

router = APIRouter(tags=["health"])

FEATURE_STORE, MATERIALIZATION = "feature_store", "last_materialization"


def health_checks(services: Services, records: RunRecords) -> list[BoundedCheck]:
    """The checks that wait on a server: a read of the online store (through the
    decisions' own reader, so its circuit breaker answers at once when open) and the
    materialization records (in Redis under the redis profile)."""
    engine = services.engine
    checks: list[BoundedCheck] = [
        BoundedCheck(MATERIALIZATION, lambda: last_success(records)),
    ]
    if engine.features is not None:
        features = engine.features
        checks.append(
            BoundedCheck(
                FEATURE_STORE,
                lambda: features.user_features(
                    0, "desktop", "US", int(engine.clock.now().timestamp())
                ),
            )
        )
    return checks


@router.get(
    "/health",
    response_model=HealthBody,
    responses={503: {"model": HealthBody, "description": "Degraded; the body says why."}},
)
def health(settings: SettingsDep, services: ServicesDep, checks: HealthChecksDep) -> Any:
    engine = services.engine
    answered = results(checks, settings.serving.health_budget_seconds)
    store = answered.get(FEATURE_STORE)
    if store is None:
        store_health = FeatureStoreHealth(reachable=False, error="not connected at start-up")
    else:
        store_health = FeatureStoreHealth(reachable=store.error is None, error=store.error)
    last_run = answered[MATERIALIZATION].value
    database_failing = services.decision_log.failing
    model = engine.model
    healthy = store_health.reachable and model is not None and not database_failing
    body = HealthBody(
        status="ok" if healthy else "degraded",
        profile=settings.profile,
        model_version=model.version if model else None,
        feature_store=store_health,
        config_version=engine.config.current.version,
        last_materialization=last_run.finished_at if last_run else None,
        last_materialization_error=answered[MATERIALIZATION].error,
        config_reload_rejected=engine.config.last_rejection is not None,
        model_reload_rejected=services.models.rejected,
        decision_database_failing=database_failing,
        decision_log_backlog=services.decision_log.backlog,
        outcome_log_backlog=services.outcome_log.backlog,
        spilled={
            name: SpillBody(files=backlog.files, bytes=backlog.bytes)
            for name, backlog in (
                ("decisions", services.decision_log.spilled()),
                ("outcomes", services.outcome_log.spilled()),
                ("assignments", services.assignments.spilled()),
                ("shadow_decisions", services.shadow_log.spilled()),
                ("triggers", services.trigger_spool.spilled()),
            )
        },
    )
    if healthy:
        return body
    return JSONResponse(
        status_code=settings.serving.health_degraded_status, content=body.model_dump(mode="json")
    )
