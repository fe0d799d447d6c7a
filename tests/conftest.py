"""Session fixtures: one real run of the whole flow, real servers over it, and private
Redis and PostgreSQL. Helpers live in `tests.support`, never imported from here."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support import required
from tests.support.flow import Flow, Server, run_tailor, start_server, tailor_env
from tests.support.redis_profile import redis_profile_env
from tests.support.services import PrivateRedis


@pytest.fixture(scope="session")
def flow(tmp_path_factory: pytest.TempPathFactory) -> Flow:
    """`tailor demo --no-serve` on a small generated data set: every later test reads it."""
    home = tmp_path_factory.mktemp("flow")
    env = tailor_env(home)
    result = run_tailor(env, "demo", "--no-serve")
    assert result.returncode == 0, f"tailor demo failed:\n{result.stdout}\n{result.stderr}"
    return Flow(home=home, env=env, output=result.stdout)


@pytest.fixture(scope="session")
def api(flow: Flow) -> Iterator[Server]:
    server = start_server(flow.env)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def private_redis() -> Iterator[PrivateRedis]:
    server = required.private_redis()
    yield server
    server.stop()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path_factory) -> Iterator[str]:
    """A decision database per module that asks: one SQLite file, one PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'decisions.db'}"
    else:
        with required.scratch_database() as url:
            yield url


@pytest.fixture(scope="session")
def registry_url() -> Iterator[str]:
    with required.scratch_database() as url:
        yield url


@pytest.fixture(scope="session")
def redis_flow(
    flow: Flow, private_redis: PrivateRedis, registry_url: str, tmp_path_factory
) -> Flow:
    """The demo's marts and model served from Redis with the registry on PostgreSQL."""
    home = tmp_path_factory.mktemp("redis_flow")
    env = redis_profile_env(
        flow,
        home,
        private_redis.url,
        registry_url,
        TAILOR_STREAM__CLAIM_IDLE_MS="1000",
        TAILOR_STREAM__OFFLINE_FLUSH_SECONDS="0.5",
    )
    return Flow(home=home, env=env, output="")
