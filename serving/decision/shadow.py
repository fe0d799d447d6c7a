"""Shadow arms: a challenger decides beside the champion's decisions (the experiment's
control arm), is logged, and serves nobody.

The challenger sees what the served decision saw (the same features, read once) and
runs its own model, rules and weights over them; what it would have served, its
candidate scores and its full action distribution go to the shadow log, where
off-policy evaluation reads them against the served decisions' outcomes. It runs after
the response is built, on a worker thread with a bounded queue: when the queue is full
the evaluation is skipped and counted, never waited for. Any failure (a model version
that will not load, an exception anywhere) becomes a shadow row with an `error`; the
served answer never knows.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from prometheus_client import Counter, Histogram

from serving.decision.placements import ArmPlan, ExperimentPlan
from serving.experiments.assignment import in_share

if TYPE_CHECKING:
    from serving.decision.config_holder import ConfigSnapshot
    from serving.decision.engine import DecisionEngine, Gathered
    from serving.decision.schemas import DecisionBody, PersonalizeRequest

log = logging.getLogger(__name__)

SHADOW_SECONDS = Histogram(
    "tailor_shadow_decision_seconds",
    "Time a shadow arm takes to decide, off the request path",
    ["experiment", "arm"],
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1),
)
SHADOW_SKIPPED = Counter(
    "tailor_shadow_skipped", "Shadow evaluations not run, by reason", ["reason"]
)


@dataclass(frozen=True)
class ShadowRecord:
    """One shadow arm's decision beside one served decision (a row of the shadow log)."""

    decision_id: str
    experiment_key: str
    arm: str
    created_at: datetime  # the served decision's moment; aware
    served_variant_id: str  # what the user got
    champion_variant_id: str  # what the serving policy ranked best (before exploring)
    variant_id: str | None  # what the shadow ranks best; None when it failed
    action_distribution: dict[str, float]  # the shadow's probabilities; empty on failure
    scores: dict[str, float]  # the shadow's final score per candidate
    model_version: str | None
    latency_ms: float
    error: str | None = None

    def __post_init__(self) -> None:
        if self.created_at.tzinfo is None:
            raise ValueError("ShadowRecord.created_at must be timezone-aware")

    def to_json_dict(self) -> dict:
        return {**vars(self), "created_at": self.created_at.isoformat()}

    @classmethod
    def from_json_dict(cls, data: dict) -> ShadowRecord:
        return cls(**{**data, "created_at": datetime.fromisoformat(data["created_at"])})


class ShadowRecorder(Protocol):
    def record(self, record: ShadowRecord) -> None:
        """Keep the shadow row; must not block."""


def shadow_decision(
    engine: DecisionEngine,
    request: PersonalizeRequest,
    snapshot: ConfigSnapshot,
    experiment_key: str,
    plan: ArmPlan,
    gathered: Gathered,
    served: DecisionBody,
    champion_variant_id: str,
) -> ShadowRecord:
    """What `plan` would have done with the served decision's features."""
    started = time.perf_counter()

    def record(**fields) -> ShadowRecord:
        return ShadowRecord(
            decision_id=served.decision_id,
            experiment_key=experiment_key,
            arm=plan.arm.key,
            created_at=gathered.moment,
            served_variant_id=served.variant.id,
            champion_variant_id=champion_variant_id,
            latency_ms=(time.perf_counter() - started) * 1000,
            **fields,
        )

    failed = dict(variant_id=None, action_distribution={}, scores={}, model_version=None)
    try:
        problems: list[str] = []
        model = engine.model_for(plan, engine.model, problems)
        if problems:  # the arm's own model would not load: judging it as the champion lies
            return record(**failed, error=problems[0])
        if model is not None and gathered.personal:
            missing = [name for name in model.features if name not in gathered.features]
            if missing:
                return record(**failed, error=f"features_missing:{','.join(missing[:5])}")
        seen = engine.rescored(request, snapshot, gathered, model)
        if "model_failed" in seen.degraded:
            return record(**failed, error="model_failed")
        choice = engine.choose(request, plan.placement, plan.rules, seen)
        distribution = engine.distribution(choice, plan.placement, plan, seen)
        return record(
            variant_id=choice.resolution.winner.variant.id,
            action_distribution=distribution,
            scores={c.variant.id: c.score for c in choice.resolution.candidates},
            model_version=model.version if model else None,
        )
    except Exception as error:  # the shadow's failure is the shadow log's business only
        log.warning("shadow arm %s failed", plan.arm.key, exc_info=True)
        return record(**failed, error=f"exception:{type(error).__name__}")


class ShadowRunner:
    """Runs shadow arms after the served decision: on `workers` threads with at most
    `queue_max` waiting, or in the caller's thread when `inline` (a simulation wants
    every shadow row, in order)."""

    def __init__(
        self,
        recorder: ShadowRecorder,
        *,
        workers: int = 1,
        queue_max: int = 1000,
        inline: bool = False,
    ) -> None:
        self.recorder = recorder
        self.inline = inline
        self._slots = threading.BoundedSemaphore(queue_max)
        self._pool = None if inline else ThreadPoolExecutor(workers, "tailor-shadow")

    def submit_all(
        self,
        engine: DecisionEngine,
        request: PersonalizeRequest,
        snapshot: ConfigSnapshot,
        experiment: ExperimentPlan,
        gathered: Gathered,
        served: DecisionBody,
        champion_variant_id: str,
    ) -> None:
        key = experiment.experiment.key
        for plan in experiment.arms:
            arm = plan.arm
            if not arm.shadow or not in_share(
                f"shadow:{key}:{arm.key}", served.decision_id, arm.shadow_share
            ):
                continue
            self._submit(
                lambda plan=plan: shadow_decision(
                    engine, request, snapshot, key, plan, gathered, served, champion_variant_id
                )
            )

    def _submit(self, task: Callable[[], ShadowRecord]) -> None:
        if self._pool is None:
            self._run(task)
            return
        if not self._slots.acquire(blocking=False):
            SHADOW_SKIPPED.labels("queue_full").inc()
            return
        try:
            self._pool.submit(self._run_and_release, task)
        except RuntimeError:  # shut down: the process is stopping
            self._slots.release()
            SHADOW_SKIPPED.labels("stopping").inc()

    def _run_and_release(self, task: Callable[[], ShadowRecord]) -> None:
        try:
            self._run(task)
        finally:
            self._slots.release()

    def _run(self, task: Callable[[], ShadowRecord]) -> None:
        try:
            shadow = task()
            SHADOW_SECONDS.labels(shadow.experiment_key, shadow.arm).observe(
                shadow.latency_ms / 1000
            )
            self.recorder.record(shadow)
        except Exception:
            log.exception("shadow evaluation not recorded")
            SHADOW_SKIPPED.labels("failed").inc()

    def close(self) -> None:
        """Finish what is queued (its rows reach the recorder before it closes)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
