"""The decision path of POST /v1/personalize: consent -> features -> model -> scores
-> rules -> choice, then triggers and the decision log off the critical path.

Every dependency may fail; each failure narrows the decision (a signal drops out and
gives up its weight, a rule is skipped, the fallback variant serves) and is named in
`degraded`, never raised to the caller.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from feature_repo import feature_service
from feature_repo.feature_services import personalization_v1
from serving.decision.config_holder import ConfigSnapshot, PlacementsHolder
from serving.decision.exploration import Distribution, draw, explored, served, uniform
from serving.decision.features import FeatureStoreUnavailable, OnlineFeatures, UserFeatures
from serving.decision.placements import ArmPlan, Placement
from serving.decision.ports import ConsentList, ConsentUnknown, DecisionRecorder, TriggerRecorder
from serving.decision.response_scoring import ResponseScores, score_candidates
from serving.decision.rules.evaluation import CompiledRule, Evaluation, Verdict, evaluate
from serving.decision.rules.resolution import APPLIED, Resolution, resolve
from serving.decision.rules.symbols import DecisionFacts, SymbolTable
from serving.decision.schemas import (
    CandidateBody,
    Components,
    DecisionBody,
    ExperimentBody,
    FiredRuleBody,
    ModelExplanation,
    PersonalizeRequest,
    TriggerBody,
    VariantBody,
)
from serving.decision.scoring import RequestFacts, UserSignals, rank_candidates
from serving.decision.shadow import ShadowRunner
from serving.decision.triggers import record_triggers
from serving.experiments.assignment import (
    HOLDOUT_ARM,
    NOT_IN_ANY,
    Allocation,
    Exposure,
    StickyAssignments,
    allocate,
)
from serving.experiments.config import NO_MODEL
from serving.metrics import DECISION_SECONDS, DECISIONS, DEGRADED
from tailor.core.clock import Clock, SystemClock
from tailor.core.decision_record import DecisionRecord
from tailor.core.model_artifact import ModelArtifact, ModelNotFoundError
from tailor.core.response_artifact import ResponseModel
from tailor.core.response_features import category_mix

log = logging.getLogger(__name__)

DEFAULT_FEATURE_SERVICE = personalization_v1.name


class IncompatibleModel(ValueError):
    """A model this process cannot serve without a restart."""


def feature_service_for(model: ModelArtifact | None) -> str:
    """The model's own service, so features always match its training; the default
    when serving without a model."""
    return model.feature_service if model else DEFAULT_FEATURE_SERVICE


SESSION_ACTIVE_MINUTES = 30.0
# CUPED's covariate for experiment results: known before the exposure it precedes.
PRE_EXPOSURE_FEATURE = "purchases_30d"


def _as_float(value: Any) -> float:
    return math.nan if value is None else float(value)


def user_signals(features: dict[str, Any], percentile: float | None) -> UserSignals:
    """The taste facts scoring needs; session interest counts only while the session lives."""
    minutes_idle = features.get("minutes_since_session_event_now")
    session_views = features.get("session_views_30m") or 0
    active = minutes_idle is not None and minutes_idle <= SESSION_ACTIVE_MINUTES
    session_top = features.get("session_top_category") if active and session_views else None
    return UserSignals(
        top_category=features.get("top_category_30d"),
        top_category_share=features.get("top_category_share_30d"),
        propensity_percentile=percentile,
        session_top_category=session_top,
        session_top_share=(
            (features.get("session_top_category_views_30m") or 0) / session_views
            if session_top
            else None
        ),
    )


def signals_summary(features: dict[str, Any], user: UserSignals) -> dict[str, Any]:
    return {
        "top_category_30d": user.top_category,
        "top_category_share_30d": user.top_category_share,
        "session_top_category": user.session_top_category,
        "session_top_share": user.session_top_share,
        "session_events_30m": features.get("session_events_30m"),
        "cart_items": features.get("cart_items"),
        "cart_value": features.get("cart_value"),
        "minutes_since_cart_abandoned": features.get("minutes_since_cart_abandoned_now"),
        "category_events_30d": category_mix(features.get("category_events_30d")),
    }


@dataclass
class Gathered:
    """Everything known about the user at decision time, before any rule runs."""

    moment: datetime
    consent: bool  # behavioral data may be used
    personal: bool  # personal features were read, so the ranking can be trusted
    features: dict[str, Any] = field(default_factory=dict)
    popularity: dict[str, float] = field(default_factory=dict)
    model: ModelArtifact | None = None  # the model the score came from
    propensity: float | None = None
    percentile: float | None = None
    explanation: ModelExplanation | None = None
    model_row: np.ndarray | None = None  # the model's inputs as scored, for the log
    response: ResponseScores | None = None  # the response model's per-candidate scores
    degraded: list[str] = field(default_factory=list)
    values: dict[str, Any] = field(default_factory=dict)  # the rules' symbols


@dataclass(frozen=True)
class Choice:
    user: UserSignals
    resolution: Resolution
    evaluations: list[Evaluation]
    triggers: list[CompiledRule]


class DecisionEngine:
    """Decides from what it is given: where decisions, triggers and opt-outs are kept
    (`ports`) and which clock tells the time of a request without one."""

    def __init__(
        self,
        config: PlacementsHolder,
        features: OnlineFeatures | None,
        model: ModelArtifact | None,
        *,
        decisions: DecisionRecorder | None = None,
        triggers: TriggerRecorder | None = None,
        consent: ConsentList | None = None,
        explain_top_features: int = 5,
        clock: Clock | None = None,
        model_versions: Callable[[str], ModelArtifact] | None = None,
        assignments: StickyAssignments | None = None,
        rng: random.Random | None = None,
        shadows: ShadowRunner | None = None,
        feature_log_sample_rate: float = 1.0,
        response_model: ResponseModel | None = None,
        response_unavailable: bool = False,
    ) -> None:
        """`response_model` scores each candidate's predictive signal (without one,
        the propensity model's percentile does); `response_unavailable` says one was
        published but could not be loaded, which every personal decision then names."""
        self.config = config
        self.features = features
        self.model = model  # replaced whole by `swap_model`; read it once per decision
        # Fixed at start-up: the feature reader and the rules' symbols are built for it.
        self.feature_service = feature_service_for(model)
        self.decisions = decisions
        self.triggers = triggers
        self.consent = consent
        self.explain_top_features = explain_top_features
        self.clock = clock or SystemClock()
        self.model_versions = model_versions
        self.assignments = assignments
        self.rng = rng or random.Random()
        self.shadows = shadows
        self.feature_log_sample_rate = feature_log_sample_rate
        self.response_model = response_model
        self.response_unavailable = response_unavailable

    @staticmethod
    def symbols_for(model: ModelArtifact | None) -> SymbolTable:
        return SymbolTable.for_service(feature_service(feature_service_for(model)))

    @property
    def symbols(self) -> SymbolTable:
        return self.config.symbols

    @staticmethod
    def model_row(features: dict[str, Any], model: ModelArtifact) -> np.ndarray:
        return np.array([[_as_float(features.get(name)) for name in model.features]])

    # -- gathering -------------------------------------------------------------------

    def _consent(self, request: PersonalizeRequest, degraded: list[str]) -> bool:
        if not request.personalization_consent:
            degraded.append("consent_withheld")
            return False
        if self.consent is None:
            return True
        try:
            if self.consent.contains(request.user_id):
                degraded.append("opted_out")
                return False
        except ConsentUnknown:
            degraded.append("consent_unknown")  # privacy fails closed
            return False
        return True

    def _read_features(
        self, request: PersonalizeRequest, snapshot: ConfigSnapshot, gathered: Gathered
    ) -> None:
        if self.features is None:
            gathered.degraded.append("feature_store_unavailable")
            return
        context = request.context
        try:
            read: UserFeatures = self.features.user_features(
                request.user_id, context.device, context.country, int(gathered.moment.timestamp())
            )
        except FeatureStoreUnavailable as error:
            log.warning("deciding without features for user %s: %s", request.user_id, error)
            gathered.degraded.append(error.reason)
            return
        gathered.personal = True
        gathered.degraded.extend(f"stale_features:{view}" for view in read.stale_views)
        gathered.features = read.values
        try:
            gathered.popularity = self.features.category_popularity(snapshot.categories)
        except FeatureStoreUnavailable:
            gathered.degraded.append("category_stats_unavailable")

    def _score(self, gathered: Gathered, model: ModelArtifact | None) -> None:
        gathered.model = model
        if model is None:
            gathered.degraded.append("model_unavailable")
            return
        if not gathered.features:
            return
        try:
            row = gathered.model_row = self.model_row(gathered.features, model)
            gathered.propensity = float(model.predict(row)[0])
            gathered.percentile = model.percentile(gathered.propensity)
            gathered.explanation = self._explain(row, model)
        except Exception:
            log.exception("model %s failed to score", model.version)
            gathered.degraded.append("model_failed")
            gathered.propensity = gathered.percentile = gathered.explanation = None
            gathered.model_row = None

    def _respond(
        self, request: PersonalizeRequest, snapshot: ConfigSnapshot, gathered: Gathered
    ) -> None:
        """The response model refines the predictive signal of a decision the
        propensity model scored: it learned from such decisions' logged features. An
        arm without a model, or a propensity model gone or failing, leaves the signal
        out as before, and so does a placement it did not learn from."""
        if self.response_unavailable:
            gathered.degraded.append("response_model_unavailable")
        response = self.response_model
        if response is None or gathered.percentile is None:
            return
        if request.placement not in response.placements:
            return
        placement = snapshot.placements.config.placements[request.placement]
        user = user_signals(gathered.features, gathered.percentile)
        try:
            gathered.response = score_candidates(
                response,
                gathered.features,
                signals_summary(gathered.features, user),
                request.context.device,
                gathered.moment.hour,
                placement.variants,
                self.explain_top_features if request.explain_candidates else None,
            )
        except Exception:
            log.exception("response model %s failed to score", response.version)
            gathered.degraded.append("response_model_failed")

    def _explain(self, row: np.ndarray, model: ModelArtifact) -> ModelExplanation:
        return ModelExplanation.top_of(
            model.contributions(row)[0], row[0], model.features, self.explain_top_features
        )

    def _moment(self, request: PersonalizeRequest) -> datetime:
        return (request.context.timestamp or self.clock.now()).astimezone(UTC)

    def _started(self, request: PersonalizeRequest) -> Gathered:
        """Before any read: the decision's moment, and the context facts it lacks."""
        gathered = Gathered(moment=self._moment(request), consent=True, personal=False)
        gathered.degraded.extend(
            f"context_unknown:{name}"
            for name in ("device", "country")
            if getattr(request.context, name) is None
        )
        return gathered

    def gather(self, request: PersonalizeRequest, snapshot: ConfigSnapshot) -> Gathered:
        """What the champion knows about the user (the dry run's view)."""
        gathered = self._started(request)
        gathered.consent = self._consent(request, gathered.degraded)
        return self._gathered(request, snapshot, gathered, self.model, read=gathered.consent)

    def _gathered(
        self,
        request: PersonalizeRequest,
        snapshot: ConfigSnapshot,
        gathered: Gathered,
        model: ModelArtifact | None,
        read: bool,
    ) -> Gathered:
        """Features and the model's score when `read`, then the rules' symbols."""
        moment = gathered.moment
        if read:
            self._read_features(request, snapshot, gathered)
            self._score(gathered, model)
            self._respond(request, snapshot, gathered)
        facts = DecisionFacts(
            user_id=request.user_id,
            placement=request.placement,
            device=request.context.device,
            country=request.context.country,
            page=request.context.page,
            moment=moment,
            propensity=gathered.propensity,
            propensity_percentile=gathered.percentile,
        )
        gathered.values = self.symbols.values(gathered.features, facts)
        return gathered

    # -- choosing --------------------------------------------------------------------

    def choose(
        self,
        request: PersonalizeRequest,
        placement: Placement,
        rules: tuple[CompiledRule, ...],
        gathered: Gathered,
    ) -> Choice:
        """Pure given its inputs: no side effects, so dry-run can call it twice."""
        user = user_signals(gathered.features, gathered.percentile)
        facts = RequestFacts(
            device=request.context.device, hour=gathered.moment.hour, page=request.context.page
        )
        response = gathered.response
        ranked = rank_candidates(
            placement,
            user,
            facts,
            gathered.popularity,
            None if response is None else response.predictive,
        )
        evaluations = []
        if gathered.consent:  # opted-out users get the default content: no rule runs
            names = set().union(*(rule.symbols for rule in rules))
            context = SymbolTable.context(gathered.values, names)
            evaluations = [
                evaluate(rule, context, gathered.values, gathered.moment) for rule in rules
            ]
        fired = [e.rule for e in evaluations if e.verdict is Verdict.FIRED]
        resolution = resolve(
            placement,
            ranked,
            [rule for rule in fired if not rule.is_trigger],
            gathered.values,
            personalized=gathered.personal,
        )
        return Choice(user, resolution, evaluations, [rule for rule in fired if rule.is_trigger])

    # -- the whole decision ----------------------------------------------------------

    def decide(self, request: PersonalizeRequest, snapshot: ConfigSnapshot) -> DecisionBody:
        """`snapshot` is the config the caller checked the placement against: a reload
        in between must not swap it for one without that placement."""
        with DECISION_SECONDS.time():
            placement = snapshot.placements.config.placements[request.placement]
            gathered = self._started(request)
            gathered.consent = self._consent(request, gathered.degraded)
            allocation = (
                self._allocate(request, snapshot, placement, gathered)
                if gathered.consent
                else NOT_IN_ANY
            )
            plan = allocation.arm
            model = self.model_for(plan, self.model, gathered.degraded)
            self._gathered(
                request,
                snapshot,
                gathered,
                model,
                read=gathered.consent and not allocation.holdout,
            )
            rules = snapshot.placements.rules[request.placement] if plan is None else plan.rules
            if allocation.holdout:
                rules = ()  # the holdout sees the default variant, as before Tailor
            choice = self.choose(
                request, placement if plan is None else plan.placement, rules, gathered
            )
            best = choice.resolution.winner.variant.id
            distribution = self.distribution(
                choice, placement if plan is None else plan.placement, plan, gathered
            )
            choice = dataclasses.replace(
                choice, resolution=served(choice.resolution, draw(distribution, self.rng))
            )
            probability = distribution[choice.resolution.winner.variant.id]
            gathered.degraded.extend(
                f"rule_error:{e.rule.id}" for e in choice.evaluations if e.verdict is Verdict.ERROR
            )
            decision_id = uuid.uuid4().hex
            triggers = record_triggers(
                self.triggers, request, choice.triggers, gathered.moment, decision_id
            )
            gathered.degraded.extend(
                f"trigger_{t.status}:{t.rule_id}"
                for t in triggers
                if t.status in {"deferred", "not_recorded"}
            )
            resolution = choice.resolution
            snapshot.stats.record(
                request.placement,
                choice.evaluations,
                [e.rule.id for e in resolution.effects if e.outcome == APPLIED],
                resolution.winning_rule,
            )
            body = self._body(
                request,
                snapshot,
                placement if plan is None else plan.placement,
                gathered,
                choice,
                triggers,
                decision_id,
                model=model,
                allocation=allocation,
                distribution=distribution,
            )
            if allocation.in_experiment and not allocation.sticky:
                self._remember_exposure(request, snapshot, allocation, gathered)
            DECISIONS.labels(request.placement, body.variant.id).inc()
            for reason in body.degraded:
                DEGRADED.labels(reason.split(":", 1)[0]).inc()
            if self.decisions is not None:
                self.decisions.record(
                    DecisionRecord(
                        decision_id=decision_id,
                        created_at=gathered.moment,
                        user_id=request.user_id,
                        placement=request.placement,
                        variant_id=body.variant.id,
                        config_version=body.config_version,
                        model_version=body.model_version,
                        degraded=body.degraded,
                        request=request.model_dump(mode="json"),
                        decision=body.model_dump(mode="json"),
                        experiment_key=allocation.plan.experiment.key if allocation.plan else None,
                        arm=body.experiment.arm if body.experiment else None,
                        bucket=allocation.bucket,
                        action_probability=probability,
                        propensity=gathered.propensity,
                        features=self._logged_features(decision_id, gathered),
                    )
                )
            if self.shadows is not None and allocation.serves_control:
                self.shadows.submit_all(
                    self, request, snapshot, allocation.plan, gathered, body, best
                )
            return body

    def _logged_features(self, decision_id: str, gathered: Gathered) -> dict[str, Any] | None:
        """The inputs the model scored, for a sampled share of decisions: sampled by the
        decision id (a uuid4, so uniform), not by a draw that would shift the
        exploration's random stream."""
        model = gathered.model
        if model is None or gathered.propensity is None:
            return None
        if int(decision_id[:8], 16) >= self.feature_log_sample_rate * 2**32:
            return None
        if gathered.model_row is None:
            return None
        return {
            name: float(value) if math.isfinite(value) else None
            for name, value in zip(model.features, gathered.model_row[0], strict=True)
        }

    def distribution(
        self, choice: Choice, placement: Placement, plan: ArmPlan | None, gathered: Gathered
    ) -> Distribution:
        """The policy's probabilities over the variants for this decision."""
        if plan is not None and plan.arm.policy.random:
            return uniform(choice.resolution)
        return explored(choice.resolution, placement.exploration, gathered.personal)

    def rescored(
        self,
        request: PersonalizeRequest,
        snapshot: ConfigSnapshot,
        gathered: Gathered,
        model: ModelArtifact | None,
    ) -> Gathered:
        """What another model makes of the same features: its score and the rules'
        symbols that depend on it, in a copy (the served decision's stays as it was)."""
        copy = dataclasses.replace(gathered, degraded=[])
        if model is not gathered.model:
            copy.propensity = copy.percentile = copy.explanation = copy.model_row = None
            if gathered.personal:
                self._score(copy, model)
            if copy.percentile is None:  # see `_respond`
                copy.response = None
        return self._gathered(request, snapshot, copy, model, read=False)

    # -- experiments -----------------------------------------------------------------

    def _allocate(
        self,
        request: PersonalizeRequest,
        snapshot: ConfigSnapshot,
        placement: Placement,
        gathered: Gathered,
    ) -> Allocation:
        """The holdout or an experiment's arm; with the assignment store down, users
        seen before cannot be told from new ones, so everyone gets the champion."""
        plans = snapshot.placements.experiments_on(request.placement)
        if not plans and placement.holdout == 0:
            return NOT_IN_ANY
        try:
            return allocate(
                request.placement,
                placement,
                plans,
                request.user_id,
                gathered.moment,
                self.assignments,
            )
        except Exception:
            log.warning("experiment assignment unavailable; serving the champion", exc_info=True)
            gathered.degraded.append("assignment_unavailable")
            return NOT_IN_ANY

    def model_for(
        self, plan: ArmPlan | None, champion: ModelArtifact | None, degraded: list[str]
    ) -> ModelArtifact | None:
        """`champion` (read once per decision, so a swap cannot split one), none, or the
        arm's version (the champion if it cannot be loaded: the arm then serves as the
        champion, and says so)."""
        version = plan.model if plan is not None else None
        if version is None:
            return champion
        if version == NO_MODEL:
            return None
        if champion is not None and version == champion.version:
            return champion
        try:
            if self.model_versions is None:
                raise ModelNotFoundError(f"no model versions are served here ({version})")
            return self.model_versions(version)
        except Exception:
            log.warning("arm model %s unavailable", version, exc_info=True)
            degraded.append(f"arm_model_unavailable:{version}")
            return champion

    def swap_model(self, model: ModelArtifact) -> ModelArtifact | None:
        """Serve `model` from the next decision on; decisions under way finish with the
        one they read. The online feature reader and the rules' symbols are bound to a
        feature service at start-up, so a model reading another service needs a
        restart (`IncompatibleModel`)."""
        if model.feature_service != self.feature_service:
            raise IncompatibleModel(
                f"model {model.version} reads feature service {model.feature_service!r}, "
                f"this API serves {self.feature_service!r}; restart the API to change services"
            )
        previous, self.model = self.model, model
        return previous

    def _remember_exposure(
        self,
        request: PersonalizeRequest,
        snapshot: ConfigSnapshot,
        allocation: Allocation,
        gathered: Gathered,
    ) -> None:
        assert allocation.plan is not None and allocation.arm is not None
        assert allocation.bucket is not None
        if self.assignments is None:
            return
        purchases = gathered.features.get(PRE_EXPOSURE_FEATURE)
        exposure = Exposure(
            experiment_key=allocation.plan.experiment.key,
            user_id=request.user_id,
            arm=allocation.arm.arm.key,
            bucket=allocation.bucket,
            config_version=snapshot.version,
            first_exposed_at=gathered.moment,
            pre_exposure_purchases=None if purchases is None else float(purchases),
        )
        try:
            self.assignments.remember(exposure)
        except Exception:  # kept in memory by the store; its writer retries the database
            log.warning("exposure of user %s not remembered", request.user_id, exc_info=True)
            gathered.degraded.append("assignment_unavailable")

    def _body(
        self,
        request: PersonalizeRequest,
        snapshot: ConfigSnapshot,
        placement: Placement,
        gathered: Gathered,
        choice: Choice,
        triggers: list[TriggerBody],
        decision_id: str,
        *,
        model: ModelArtifact | None,
        allocation: Allocation,
        distribution: Distribution,
    ) -> DecisionBody:
        resolution = choice.resolution
        chosen = resolution.winner.variant
        response = gathered.response
        fallback = (
            f"propensity:{model.version}"
            if model is not None and gathered.percentile is not None
            else None
        )
        fired_rules = [
            FiredRuleBody(
                id=effect.rule.id,
                priority=effect.rule.config.priority,
                action=effect.rule.config.action.type,
                outcome=effect.outcome,
                variants=effect.variants,
                overridden_by=effect.overridden_by,
            )
            for effect in resolution.effects
        ] + [
            FiredRuleBody(
                id=rule.id,
                priority=rule.config.priority,
                action="trigger",
                outcome="triggered",
                variants=[],
                overridden_by=[],
            )
            for rule in choice.triggers
        ]
        return DecisionBody(
            decision_id=decision_id,
            user_id=request.user_id,
            placement=request.placement,
            variant=VariantBody(
                id=chosen.id,
                content=chosen.content,
                category=chosen.category,
                tags=list(chosen.tags),
                goal=chosen.goal,
            ),
            score=resolution.winner.score,
            personalized=gathered.personal,
            candidates=[
                CandidateBody(
                    variant_id=candidate.variant.id,
                    score=candidate.score,
                    base_score=candidate.scored.score,
                    rule_factor=candidate.factor,
                    suppressed=candidate.suppressed,
                    forced=candidate.forced,
                    eligible=candidate.eligible,
                    decided_by=candidate.decided_by,
                    components=Components(**candidate.scored.components),
                    probability=distribution.get(candidate.variant.id, 0.0),
                    predictive_source=(
                        response.source
                        if response is not None and candidate.variant.id in response.predictive
                        else fallback
                    ),
                    response=(
                        None if response is None else response.candidates.get(candidate.variant.id)
                    ),
                )
                for candidate in resolution.candidates
            ],
            weights=placement.weights.model_dump(),
            propensity=gathered.propensity,
            propensity_percentile=gathered.percentile,
            model_explanation=gathered.explanation,
            rules_fired=sorted(fired_rules, key=lambda rule: -rule.priority),
            winning_rule=resolution.winning_rule,
            triggers=triggers,
            cold_start=not gathered.personal
            or self.features is None
            or self.features.is_cold_start(gathered.features),
            signals=signals_summary(gathered.features, choice.user),
            model_version=model.version if model else None,
            response_model_version=None if response is None else response.version,
            config_version=snapshot.version,
            feature_service=self.feature_service,
            degraded=gathered.degraded,
            experiment=_experiment_body(allocation),
            action_probability=distribution[chosen.id],
        )


def _experiment_body(allocation: Allocation) -> ExperimentBody | None:
    if allocation.holdout:
        return ExperimentBody(key=None, arm=HOLDOUT_ARM, bucket=None, sticky=False)
    if allocation.plan is None or allocation.arm is None:
        return None
    return ExperimentBody(
        key=allocation.plan.experiment.key,
        arm=allocation.arm.arm.key,
        bucket=allocation.bucket,
        sticky=allocation.sticky,
    )
