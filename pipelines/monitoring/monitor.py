"""One monitoring run (`tailor monitor`): drift of the served model's inputs and score
against its reference profile, its live performance from outcomes, and changes in
the conversion rate; stored as a row of `tailor_monitoring_runs`.

The status is the worst level among the reasons found:
- alert: an input's or the score's PSI at or above `psi_alert`; the live AUC more than
  `auc_drop_alert` below the model's test AUC (when set);
- warn: a PSI at or above `psi_warn`; ADWIN found a change in the conversion rate; the
  model has no reference profile, so drift cannot be judged.
Too few decisions to judge a window is a note, not a reason: no traffic is not drift.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from pipelines.monitoring.conversion_change import detect_changes
from pipelines.monitoring.decision_window import (
    ConversionStream,
    ScoredDecision,
    conversion_stream,
    scored_decisions,
)
from pipelines.monitoring.drift import input_shifts, score_shift
from pipelines.monitoring.performance import live_performance
from pipelines.monitoring.profile import ReferenceProfileError, load_reference_profile
from tailor.core.database.engine import open_database
from tailor.core.model_artifact import ModelArtifact, load_artifact
from tailor.core.monitoring_run import STATUSES, MonitoringRun, Status, save_run
from tailor.core.settings import MonitoringSettings, TailorSettings


@dataclass(frozen=True)
class Reason:
    name: str
    level: Status


def psi_level(value: float | None, config: MonitoringSettings) -> Status:
    if value is None or value < config.psi_warn:
        return "ok"
    return "alert" if value >= config.psi_alert else "warn"


def run_monitor(settings: TailorSettings, now: datetime | None = None) -> MonitoringRun:
    """Judge the windows that end at `now` (default: the settings' clock) and store the
    run. Raises `ModelNotFoundError` without a model, `DatabaseUnavailable` or
    `SchemaOutOfDate` when the decision database cannot be used."""
    started = time.perf_counter()
    config = settings.monitoring
    now = now or settings.clock.now()
    artifact = load_artifact(settings.models_dir)
    window_start = now - timedelta(hours=config.window_hours)
    performance_end = now - timedelta(seconds=settings.outcomes.conversion_window_seconds)
    performance_start = performance_end - timedelta(hours=config.performance_window_hours)
    database = open_database(settings.decision_database_url, settings.decisions.auto_migrate)
    try:
        with database.connect() as connection:
            window = scored_decisions(connection, window_start, now, config.max_decisions)
            stream = conversion_stream(
                connection, performance_start, performance_end, config.max_decisions
            )
        reasons: list[Reason] = []
        notes: list[str] = []
        details: dict[str, Any] = {
            "thresholds": {"warn": config.psi_warn, "alert": config.psi_alert},
            "notes": notes,
        }
        drift = _drift(settings, artifact, window, reasons, notes, details)
        performance = _performance(config, artifact, stream, reasons, notes, details)
        run = MonitoringRun(
            run_id=uuid.uuid4().hex,
            started_at=now,
            model_version=artifact.version,
            status=max((r.level for r in reasons), key=STATUSES.index, default="ok"),
            reasons=[reason.name for reason in reasons],
            window_start=window_start,
            window_end=now,
            decisions=len(window),
            **drift,
            performance_start=performance_start,
            performance_end=performance_end,
            **performance,
            details=details,
            seconds=time.perf_counter() - started,
        )
        with database.begin() as connection:
            save_run(connection, run)
        return run
    finally:
        database.dispose()


def _drift(
    settings: TailorSettings,
    artifact: ModelArtifact,
    window: list[ScoredDecision],
    reasons: list[Reason],
    notes: list[str],
    details: dict[str, Any],
) -> dict[str, Any]:
    config = settings.monitoring
    try:
        profile = load_reference_profile(settings.models_dir, artifact.version)
    except ReferenceProfileError as error:
        reasons.append(Reason("no_reference_profile", "warn"))
        notes.append(str(error))
        return {"score_psi": None, "max_feature_psi": None, "max_feature": None, "feature_psi": {}}
    minimum, epsilon = config.min_decisions, config.psi_epsilon
    shifts = input_shifts(profile, window, minimum, epsilon)
    score = score_shift(profile, window, minimum, epsilon)
    judged = {name: s.psi for name, s in shifts.items() if s.psi is not None}
    unjudged = sorted(set(shifts) - set(judged))
    if unjudged:
        notes.append(
            f"fewer than monitoring.min_decisions={minimum} values in the window for "
            f"{len(unjudged)} input(s), not judged: {', '.join(unjudged[:5])}"
            + (" ..." if len(unjudged) > 5 else "")
        )
    if score.psi is None:
        notes.append(f"fewer than {minimum} scores of model {artifact.version} in the window")
    for name, value in sorted(judged.items(), key=lambda item: -item[1]):
        level = psi_level(value, config)
        if level != "ok":
            reasons.append(Reason(f"feature_psi_{level}:{name}", level))
    level = psi_level(score.psi, config)
    if level != "ok":
        reasons.append(Reason(f"score_psi_{level}", level))
    details["inputs"] = {name: s.to_json() for name, s in shifts.items()}
    details["score"] = score.to_json()
    worst = max(judged, key=judged.__getitem__, default=None)
    return {
        "score_psi": score.psi,
        "max_feature_psi": judged[worst] if worst else None,
        "max_feature": worst,
        "feature_psi": judged,
    }


def _performance(
    config: MonitoringSettings,
    artifact: ModelArtifact,
    stream: ConversionStream,
    reasons: list[Reason],
    notes: list[str],
    details: dict[str, Any],
) -> dict[str, Any]:
    # The served model's own decisions: another version's scores are another model's.
    scored = np.array([v == artifact.version for v in stream.model_version], dtype=bool)
    scored &= ~np.isnan(stream.propensity)
    result = live_performance(
        stream.propensity[scored],
        stream.converted[scored],
        config.min_conversions,
        config.calibration_bins,
    )
    if result.auc is None:
        notes.append(
            f"{result.conversions} conversions among {result.decisions} matured decisions of "
            f"model {artifact.version}: fewer than monitoring.min_conversions="
            f"{config.min_conversions} of either class, no live AUC or calibration"
        )
    test_auc = artifact.metadata.get("metrics", {}).get("auc")
    if (
        config.auc_drop_alert is not None
        and result.auc is not None
        and test_auc is not None
        and result.auc < test_auc - config.auc_drop_alert
    ):
        reasons.append(Reason("auc_drop", "alert"))
    change = detect_changes(stream.converted, config.adwin_delta)
    if change.detected:
        reasons.append(Reason("conversion_rate_change", "warn"))
    details["performance"] = {"model_test_auc": test_auc, "decisions_in_window": len(stream)}
    details["conversion_change"] = {
        "detected_at": [stream.created_at[p].isoformat() for p in change.positions],
        "rate_now": change.rate_now,
        "rate_all": change.rate_all,
    }
    return {
        "outcome_decisions": result.decisions,
        "conversions": result.conversions,
        "auc_live": result.auc,
        "ece_live": result.ece,
        "observed_expected": result.observed_expected,
        "conversion_changes": len(change.positions),
        "last_change_at": stream.created_at[change.positions[-1]] if change.detected else None,
    }
