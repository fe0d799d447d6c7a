"""GET /health: the model, the online store, the configuration and the pipelines' state."""

from __future__ import annotations

import logging

from fastapi import APIRouter

from serving.api.deps import RunRecordsDep, ServicesDep, SettingsDep
from serving.api.schemas import FeatureStoreHealth, HealthBody
from serving.decision.features import FeatureStoreUnavailable
from tailor.core.run_records import last_success

log = logging.getLogger(__name__)

router = APIRouter(tags=["health"])


@router.get("/health", response_model=HealthBody)
def health(settings: SettingsDep, services: ServicesDep, records: RunRecordsDep) -> HealthBody:
    engine = services.engine
    store_health = FeatureStoreHealth(reachable=False, error="not connected at start-up")
    if engine.features is not None:
        try:
            engine.features.user_features(0, "desktop", "US", int(engine.clock.now().timestamp()))
            store_health = FeatureStoreHealth(reachable=True)
        except FeatureStoreUnavailable as error:
            store_health = FeatureStoreHealth(reachable=False, error=error.reason)
    healthy = store_health.reachable and engine.model is not None
    try:
        last_run = last_success(records)
    except Exception:  # the run records live in Redis under the redis profile
        log.warning("cannot read materialization records", exc_info=True)
        last_run = None
    return HealthBody(
        status="ok" if healthy else "degraded",
        profile=settings.profile,
        model_version=engine.model.version if engine.model else None,
        feature_store=store_health,
        config_version=engine.config.current.version,
        last_materialization=last_run.finished_at if last_run else None,
        config_reload_rejected=engine.config.last_rejection is not None,
        decision_log_backlog=services.decision_log.backlog,
        outcome_log_backlog=services.outcome_log.backlog,
    )
