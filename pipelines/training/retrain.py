"""Train a challenger, judge it against the champion, and record the outcome.

`tailor train` and `tailor retrain` both come here, so no model becomes champion
without the gate or a person's explicit `tailor models promote`. A champion that no
longer loads is no champion: the challenger replaces it, and the ledger says why.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC

from pipelines.training.gate import GateVerdict, judge
from pipelines.training.train import TrainReport, train_model
from tailor.core.database.engine import open_database
from tailor.core.model_artifact import ModelArtifact, ModelNotFoundError, load_artifact
from tailor.core.model_registry import (
    LedgerEntry,
    champion_version,
    ledger,
    promote,
    reject,
)
from tailor.core.monitoring_run import alerts_since
from tailor.core.settings import TailorSettings

log = logging.getLogger(__name__)

GATE_FILE = "gate.json"


@dataclass(frozen=True)
class RetrainOutcome:
    report: TrainReport
    verdict: GateVerdict
    entry: LedgerEntry


def _champion(settings: TailorSettings) -> tuple[ModelArtifact | None, str | None]:
    """The champion, or None with the reason it cannot be judged against."""
    version = champion_version(settings.models_dir)
    if version is None:
        return None, None
    try:
        return load_artifact(settings.models_dir, version), None
    except (ModelNotFoundError, ValueError, KeyError, OSError) as error:
        log.error("champion %s does not load: %s", version, error)
        return None, f"champion {version} does not load ({error})"


def retrain_trigger(settings: TailorSettings) -> str | None:
    """Why a `tailor retrain` run should train now, or None to skip it: under
    `retraining.trigger: on_alert`, only a monitoring alert on the champion since it
    was made champion is a reason (an alert on an older champion was already answered).
    Raises `DatabaseUnavailable` when the monitoring runs cannot be read."""
    if settings.retraining.trigger == "always":
        return "retraining.trigger is always"
    champion = champion_version(settings.models_dir)
    if champion is None:
        return "no champion yet"
    made_champion = [
        entry.at
        for entry in ledger(settings.models_dir)
        if entry.version == champion and entry.action != "reject"
    ]
    since = made_champion[-1].astimezone(UTC) if made_champion else None
    database = open_database(settings.decision_database_url, settings.decisions.auto_migrate)
    try:
        with database.connect() as connection:
            alerts = alerts_since(connection, champion, since)
    finally:
        database.dispose()
    if not alerts:
        return None
    latest = alerts[0]
    return (
        f"monitoring alerted on {champion} at {latest.started_at.isoformat()} "
        f"({', '.join(latest.reasons)})"
    )


def train_and_judge(
    settings: TailorSettings,
    *,
    actor: str,
    reason: str,
    on_step: Callable[[str], None] | None = None,
) -> RetrainOutcome:
    """`actor` and `reason` go to the ledger: who asked, and why a model was trained."""
    report = train_model(settings, on_step)
    challenger = load_artifact(settings.models_dir, report.version)
    champion, broken = _champion(settings)
    verdict = judge(
        challenger,
        champion,
        report.test_split,
        settings.retraining,
        settings.training.calibration_bins,
    )
    if broken is not None:
        verdict = GateVerdict(True, broken, len(report.test_split), None, None, None)
    (report.path / GATE_FILE).write_text(json.dumps(verdict.as_evidence(), indent=2))
    record = promote if verdict.promote else reject
    entry = record(
        settings.models_dir,
        report.version,
        actor=actor,
        reason=f"{reason}; {verdict.reason}",
        at=settings.clock.now(),
        evidence=verdict.as_evidence(),
    )
    return RetrainOutcome(report, verdict, entry)
