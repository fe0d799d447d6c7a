"""Assemble the serving side from settings: the decision engine and the persistence it
records to, built once per process (the API's start-up, `tailor demo`'s samples).

Invalid placements stop start-up; a missing model, store or database only degrades
decisions.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from functools import lru_cache, partial

from feast import FeatureStore
from sqlalchemy import Engine

from feature_repo.store import open_store
from serving.decision.config_holder import PlacementsHolder
from serving.decision.engine import DecisionEngine, feature_service_for
from serving.decision.features import OnlineFeatures
from serving.decision.model_reloader import ModelReloader
from serving.decision.placements import placements_path
from serving.decision.shadow import ShadowRunner
from serving.persistence.assignments import AssignmentStore
from serving.persistence.decision_log import DecisionLog
from serving.persistence.durable_writer import WriterOptions
from serving.persistence.opt_outs import OptOutList
from serving.persistence.outbox import Outbox, TriggerDispatcher
from serving.persistence.outcome_log import OutcomeLog
from serving.persistence.shadow_log import ShadowLog
from serving.persistence.trigger_spool import TriggerSpool
from tailor.core.clock import Clock
from tailor.core.database.engine import DatabaseUnavailable, database_engine, open_database
from tailor.core.model_artifact import ModelNotFoundError, load_artifact
from tailor.core.response_artifact import ResponseModel, has_response_model, load_response_model
from tailor.core.settings import TailorSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Services:
    """The engine and everything it records to; `close` flushes and stops them all."""

    engine: DecisionEngine
    database: Engine
    decision_log: DecisionLog
    outcome_log: OutcomeLog
    assignments: AssignmentStore
    outbox: Outbox
    trigger_spool: TriggerSpool
    opt_outs: OptOutList
    shadow_log: ShadowLog
    shadows: ShadowRunner
    models: ModelReloader

    def dispatcher(self, settings: TailorSettings) -> TriggerDispatcher:
        """The webhook dispatcher over this outbox (started by the API, not the demo)."""
        decisions = settings.decisions
        return TriggerDispatcher(
            self.database,
            replay_spooled=self.trigger_spool.replay,
            timeout_seconds=decisions.webhook_timeout_seconds,
            max_attempts=decisions.webhook_max_attempts,
            backoff_seconds=decisions.webhook_backoff_seconds,
            interval_seconds=decisions.dispatch_interval_seconds,
        )

    def close(self) -> None:
        """Stop watching the config and the models; commit (or spill) every logged decision."""
        self.engine.config.close()
        self.models.close()
        self.shadows.close()  # its last rows go to the shadow log, closed below
        self.shadow_log.close()
        self.decision_log.close()
        self.outcome_log.close()
        self.assignments.close()
        self.opt_outs.close()
        self.trigger_spool.close()
        self.database.dispose()


def decision_database(settings: TailorSettings) -> Engine:
    """A database that is down at start-up degrades decisions (default content until
    the opt-out list is read, triggers spooled, the log buffered), never stops them; an
    old schema with auto-migration off stops start-up (`SchemaOutOfDate`)."""
    url = settings.decision_database_url
    try:
        return open_database(url, settings.decisions.auto_migrate)
    except DatabaseUnavailable as error:
        log.error("%s Serving anyway; the decision log buffers until it answers.", error)
        return database_engine(url)


def _online_features(
    settings: TailorSettings, store: FeatureStore | None, service: str, categories: list[str]
) -> OnlineFeatures | None:
    try:
        features = OnlineFeatures(
            store or open_store(settings),
            service,
            budget_ms=settings.serving.feature_budget_ms,
            breaker_seconds=settings.serving.feature_breaker_seconds,
            breaker_failures=settings.serving.feature_breaker_failures,
            session_ahead_seconds=settings.serving.session_ahead_tolerance_seconds,
        )
    except Exception:
        log.exception("feature store unavailable at start-up; decisions fall back")
        return None
    try:
        features.warm_up(categories, settings.clock.now())
    except Exception:
        log.warning("online store not answering at start-up; reads will retry", exc_info=True)
    return features


def response_model(settings: TailorSettings) -> tuple[ResponseModel | None, bool]:
    """The published response model, and whether one was published but cannot be
    read. None was ever trained is the normal state below
    `response_model.min_conversions`, so it is no degradation."""
    if not has_response_model(settings.models_dir):
        return None, False
    try:
        return load_response_model(settings.models_dir), False
    except ModelNotFoundError as error:  # `latest` dangles, or its files are unusable
        log.error("serving with the propensity fallback: %s", error)
        return None, True


def build_services(
    settings: TailorSettings,
    store: FeatureStore | None = None,
    *,
    clock: Clock | None = None,
    rng: random.Random | None = None,
    inline_shadows: bool = False,
) -> Services:
    """`clock` and `rng` replace the settings' clock and a fresh random source (a
    simulation steps its own clock and seeds its draws); `inline_shadows` runs shadow
    arms in the deciding thread (a simulation wants every shadow row, in order)."""
    try:
        model = load_artifact(settings.models_dir)
    except ModelNotFoundError as error:
        log.warning("serving without a model: %s", error)
        model = None
    response, response_unavailable = response_model(settings)
    config = PlacementsHolder(
        placements_path(settings.serving.placements_file), DecisionEngine.symbols_for(model)
    )
    database = decision_database(settings)
    decisions = settings.decisions
    webhook = str(decisions.webhook_url) if decisions.webhook_url else None
    outbox = Outbox(database, webhook)
    writers = WriterOptions(
        spill_dir=settings.decision_spill_dir,
        flush_seconds=decisions.log_flush_seconds,
        batch_size=decisions.log_batch_size,
        queue_max=decisions.log_queue_max,
        auto_migrate=decisions.auto_migrate,
        stall_seconds=decisions.log_stall_seconds,
    )
    decision_log = DecisionLog(database, writers)
    trigger_spool = TriggerSpool(
        outbox, settings.trigger_spool_dir, budget_seconds=decisions.lookup_budget_ms / 1000
    )
    opt_outs = OptOutList(database, decisions.opt_out_refresh_seconds)
    outcome_log = OutcomeLog(database, settings.outcomes, writers)
    assignments = AssignmentStore(
        database, writers, lookup_budget_seconds=decisions.lookup_budget_ms / 1000
    )
    shadow_log = ShadowLog(database, writers)
    shadows = ShadowRunner(
        shadow_log,
        workers=settings.serving.shadow_workers,
        queue_max=settings.serving.shadow_queue_max,
        inline=inline_shadows,
    )
    engine = DecisionEngine(
        config,
        _online_features(settings, store, feature_service_for(model), config.current.categories),
        model,
        decisions=decision_log,
        triggers=trigger_spool,
        consent=opt_outs,
        explain_top_features=settings.serving.explain_top_features,
        clock=clock or settings.clock,
        model_versions=lru_cache(maxsize=8)(partial(load_artifact, settings.models_dir)),
        assignments=assignments,
        rng=rng,
        shadows=shadows,
        feature_log_sample_rate=decisions.feature_log_sample_rate,
        response_model=response,
        response_unavailable=response_unavailable,
    )
    return Services(
        engine,
        database,
        decision_log,
        outcome_log,
        assignments,
        outbox,
        trigger_spool,
        opt_outs,
        shadow_log,
        shadows,
        ModelReloader(engine, settings.models_dir, settings.serving.model_poll_seconds),
    )
