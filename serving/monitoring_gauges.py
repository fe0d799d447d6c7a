"""The latest monitoring run as Prometheus gauges on the API's /metrics.

`tailor monitor` runs in another process and stores its runs in the decision
database; each API process re-reads the latest one on a thread of its own every
`monitoring.metrics_refresh_seconds`, and a scrape only reads that copy: /metrics runs
on the event loop, where a slow database must never be waited on. A failed read keeps
the last values and sets `tailor_monitoring_read_ok` to 0.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from tailor.core.monitoring_run import STATUSES, MonitoringRun, recent_runs

log = logging.getLogger(__name__)


class MonitoringGauges(Collector):
    def __init__(self, database: Engine, refresh_seconds: float) -> None:
        self._database = database
        self._refresh_seconds = refresh_seconds
        self._run: MonitoringRun | None = None
        self._read_ok = False
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="monitoring-gauges", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._stopped.set()
        if self._thread.is_alive():
            self._thread.join()

    def refresh(self) -> None:
        try:
            with self._database.connect() as connection:
                runs = recent_runs(connection, 1)
        except SQLAlchemyError as error:
            log.warning("cannot read the latest monitoring run (%s); keeping the last", error)
            self._read_ok = False
            return
        self._run = runs[0] if runs else None
        self._read_ok = True

    def _loop(self) -> None:
        self.refresh()
        while not self._stopped.wait(self._refresh_seconds):
            self.refresh()

    def describe(self) -> Iterator[Metric]:
        """The names alone: registering must not read the database."""
        return self._families(None, read_ok=False)

    def collect(self) -> Iterator[Metric]:
        return self._families(self._run, self._read_ok)

    @staticmethod
    def _families(run: MonitoringRun | None, read_ok: bool) -> Iterator[Metric]:
        feature = GaugeMetricFamily(
            "tailor_feature_psi",
            "PSI of each model input (and request context field) in the latest monitoring "
            "run's window against the model's reference profile",
            labels=["feature"],
        )
        score = GaugeMetricFamily(
            "tailor_score_psi", "PSI of the served model's score in the latest monitoring run"
        )
        auc = GaugeMetricFamily(
            "tailor_model_auc_live",
            "AUC of the logged propensities against observed conversions, latest run",
        )
        status = GaugeMetricFamily(
            "tailor_monitoring_status", "Latest monitoring run: 0 ok, 1 warn, 2 alert"
        )
        started = GaugeMetricFamily(
            "tailor_monitoring_last_run_timestamp_seconds", "When the latest run's windows end"
        )
        if run is not None:
            for name, value in sorted(run.feature_psi.items()):
                feature.add_metric([name], value)
            if run.score_psi is not None:
                score.add_metric([], run.score_psi)
            if run.auc_live is not None:
                auc.add_metric([], run.auc_live)
            status.add_metric([], STATUSES.index(run.status))
            started.add_metric([], run.started_at.timestamp())
        read = GaugeMetricFamily(
            "tailor_monitoring_read_ok",
            "1 if the last read of the latest monitoring run from the database succeeded",
        )
        read.add_metric([], 1.0 if read_ok else 0.0)
        yield from (feature, score, auc, status, started, read)
