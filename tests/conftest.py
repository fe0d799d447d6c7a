"""Shared fixtures: one real run of the whole flow, and real HTTP servers over it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from pipelines.local_services import ApiProcess, PrivateRedis, start_api
from pipelines.settings import TailorSettings
from tests.services import scratch_database, start_private_redis

TAILOR = Path(sys.executable).parent / "tailor"
FLOW_USERS = 2500
FLOW_DAYS = 40


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

    def settings(self, **overrides: Any) -> TailorSettings:
        """The settings the flow's commands ran with, for in-process checks."""
        values: dict[str, Any] = {"data_dir": self.data_dir, "models_dir": self.models_dir}
        if self.env.get("TAILOR_PROFILE") == "redis":
            values["profile"] = "redis"
            values["servers"] = {
                "redis_url": self.env["TAILOR_SERVERS__REDIS_URL"],
                "registry_url": self.env["TAILOR_SERVERS__REGISTRY_URL"],
            }
        return TailorSettings(**values | overrides)


def tailor_env(home: Path, **overrides: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("TAILOR_")}
    env.update(
        TAILOR_DATA_DIR=str(home / "data"),
        TAILOR_MODELS_DIR=str(home / "models"),
        TAILOR_GENERATOR__USERS=str(FLOW_USERS),
        TAILOR_GENERATOR__DAYS=str(FLOW_DAYS),
        COLUMNS="200",
    )
    env.update(overrides)
    return env


def run_tailor(
    env: dict[str, str], *args: str, timeout: float = 600
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(TAILOR), *args], env=env, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="session")
def flow(tmp_path_factory: pytest.TempPathFactory) -> Flow:
    """`tailor demo --no-serve` on a small generated data set: every later test reads it."""
    home = tmp_path_factory.mktemp("flow")
    env = tailor_env(home)
    result = run_tailor(env, "demo", "--no-serve")
    assert result.returncode == 0, f"tailor demo failed:\n{result.stdout}\n{result.stderr}"
    return Flow(home=home, env=env, output=result.stdout)


class Server(ApiProcess):
    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30)


def start_server(env: dict[str, str]) -> Server:
    started = start_api(env)
    return Server(started.url, started.process, started.log)


def stop_server(server: Server) -> None:
    server.stop()


@pytest.fixture(scope="session")
def api(flow: Flow) -> Iterator[Server]:
    server = start_server(flow.env)
    yield server
    stop_server(server)


@pytest.fixture(scope="session")
def private_redis() -> Iterator[PrivateRedis]:
    server = start_private_redis()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def registry_url() -> Iterator[str]:
    with scratch_database() as url:
        yield url


@pytest.fixture(scope="session")
def redis_flow(
    flow: Flow, private_redis: PrivateRedis, registry_url: str, tmp_path_factory
) -> Flow:
    """The demo's marts and model served from Redis with the registry on PostgreSQL."""
    home = tmp_path_factory.mktemp("redis_flow")
    shutil.copytree(flow.data_dir / "marts", home / "data" / "marts")
    env = tailor_env(
        home,
        TAILOR_PROFILE="redis",
        TAILOR_MODELS_DIR=str(flow.models_dir),
        TAILOR_SERVERS__REDIS_URL=private_redis.url,
        TAILOR_SERVERS__REGISTRY_URL=registry_url,
        TAILOR_STREAM__CLAIM_IDLE_MS="1000",
        TAILOR_STREAM__OFFLINE_FLUSH_SECONDS="0.5",
    )
    for command in ("apply", "materialize"):
        result = run_tailor(env, command)
        assert result.returncode == 0, f"tailor {command}:\n{result.stdout}\n{result.stderr}"
    return Flow(home=home, env=env, output="")
