"""A monitoring run as the decision database keeps it: `tailor monitor` writes one per
run, the API's /v1/monitoring and /metrics read the latest. The
`tailor_monitoring_runs` table has one column per field (a test holds them together).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Connection, insert, select

from tailor.core.database.schema import monitoring_runs

Status = Literal["ok", "warn", "alert"]
STATUSES: tuple[Status, ...] = ("ok", "warn", "alert")  # in rising severity


@dataclass(frozen=True)
class MonitoringRun:
    run_id: str
    started_at: datetime  # aware; the instant the windows end at
    model_version: str | None  # the served model judged
    status: Status
    reasons: list[str]  # why the status is not ok, e.g. "feature_psi_alert:is_mobile"
    # Drift: decisions with a logged feature vector in [window_start, window_end).
    window_start: datetime
    window_end: datetime
    decisions: int
    score_psi: float | None  # None: too few decisions, or no reference profile
    max_feature_psi: float | None
    max_feature: str | None
    feature_psi: dict[str, float]
    # Performance: decisions of the served model whose conversion window is over.
    performance_start: datetime
    performance_end: datetime
    outcome_decisions: int
    conversions: int
    auc_live: float | None
    ece_live: float | None
    observed_expected: float | None  # conversions / sum of propensities
    conversion_changes: int  # changes ADWIN found in the conversion rate
    last_change_at: datetime | None
    details: dict[str, Any]  # bucket shares per feature, the notes of the run
    seconds: float

    def to_json_dict(self) -> dict[str, Any]:
        data = asdict(self)
        return {
            key: value.isoformat() if isinstance(value, datetime) else value
            for key, value in data.items()
        }


def save_run(connection: Connection, run: MonitoringRun) -> None:
    connection.execute(insert(monitoring_runs), asdict(run))


def recent_runs(connection: Connection, limit: int) -> list[MonitoringRun]:
    """Newest first."""
    rows = connection.execute(
        select(monitoring_runs).order_by(monitoring_runs.c.started_at.desc()).limit(limit)
    )
    return [MonitoringRun(**row._mapping) for row in rows]


def alerts_since(
    connection: Connection, model_version: str, since: datetime | None
) -> list[MonitoringRun]:
    """The runs that alerted on `model_version` since `since` (all when None), newest
    first: what `retraining.trigger: on_alert` trains on."""
    query = select(monitoring_runs).where(
        monitoring_runs.c.model_version == model_version, monitoring_runs.c.status == "alert"
    )
    if since is not None:
        query = query.where(monitoring_runs.c.started_at >= since)
    rows = connection.execute(query.order_by(monitoring_runs.c.started_at.desc()))
    return [MonitoringRun(**row._mapping) for row in rows]
