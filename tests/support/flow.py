"""The demo's flow as tests run it: its environment, its settings and its servers.

Every run is pinned to `CLOCK_START` (`TAILOR_CLOCK_START`), and the generated history
ends the day before it, so no test depends on the day the suite runs: the instant lies
outside every rule window the shipped placements have.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from tailor.core.settings import TailorSettings
from tests.support.services import ApiProcess, start_api

TAILOR = Path(sys.executable).parent / "tailor"
FLOW_USERS = 2500
FLOW_DAYS = 40
# A Wednesday morning, far from the shipped Black Friday window and any midnight.
CLOCK_START = datetime(2026, 3, 4, 10, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Flow:
    home: Path
    env: dict[str, str]
    output: str

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def models_dir(self) -> Path:
        return Path(self.env["TAILOR_MODELS_DIR"])

    def propensity_models(self, home: Path) -> Path:
        """A models folder under `home` holding the flow's propensity model and no
        response model (the demo trains one from its simulated week)."""
        models = home / "models"
        models.mkdir()
        (models / "latest").symlink_to((self.models_dir / "latest").resolve())
        return models

    def settings(self, **overrides: Any) -> TailorSettings:
        """The settings the flow's commands ran with, for in-process checks."""
        values: dict[str, Any] = {
            "data_dir": self.data_dir,
            "models_dir": self.models_dir,
            "clock_start": self.env["TAILOR_CLOCK_START"],
        }
        if self.env.get("TAILOR_PROFILE") == "redis":
            values["profile"] = "redis"
            values["servers"] = {
                "redis_url": self.env["TAILOR_SERVERS__REDIS_URL"],
                "registry_url": self.env["TAILOR_SERVERS__REGISTRY_URL"],
            }
        return TailorSettings(**values | overrides)


# The model's inputs read from the live session view and its on-demand recency.
SESSION_FEATURES = frozenset(
    {
        "session_events_30m",
        "session_views_30m",
        "session_top_category_views_30m",
        "cart_items",
        "cart_value",
        "minutes_since_session_event_now",
        "minutes_since_cart_abandoned_now",
    }
)

# Tests decide and post at chosen instants around the pinned clock (days before it, a
# campaign's dates), so the bounds against the server's clock are wide for them;
# tests/serving/api/test_hostile_input.py runs without these and checks the defaults.
TIME_TRAVEL = {
    name: str(10 * 365 * 86_400)
    for name in (
        "TAILOR_SERVING__CONTEXT_MAX_AHEAD_SECONDS",
        "TAILOR_SERVING__CONTEXT_MAX_BEHIND_SECONDS",
        "TAILOR_STREAM__MAX_PAST_SECONDS",
    )
}


def tailor_env(home: Path, **overrides: str) -> dict[str, str]:
    """A clean `TAILOR_*` environment for the commands a test runs under `home`."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("TAILOR_")}
    env.update(
        TAILOR_DATA_DIR=str(home / "data"),
        TAILOR_MODELS_DIR=str(home / "models"),
        TAILOR_GENERATOR__USERS=str(FLOW_USERS),
        TAILOR_GENERATOR__DAYS=str(FLOW_DAYS),
        TAILOR_CLOCK_START=CLOCK_START.isoformat(),
        # A short search: the flow's tests read that one ran and what it chose; the
        # search itself is tested in tests/pipelines/test_tuning.py.
        TAILOR_TRAINING__TUNING_TRIALS="2",
        COLUMNS="200",
        # The API's gauges show a new monitoring run this soon (default 15 s).
        TAILOR_MONITORING__METRICS_REFRESH_SECONDS="0.5",
        **TIME_TRAVEL,
    )
    env.update(overrides)
    return env


def run_tailor(
    env: dict[str, str], *args: str, timeout: float = 600
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(TAILOR), *args], env=env, capture_output=True, text=True, timeout=timeout
    )


class Server(ApiProcess):
    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30)


def start_server(env: dict[str, str]) -> Server:
    started = start_api(env)
    return Server(started.url, started.process, started.log)
