"""`tailor db` and start-up with an old schema: what an operator sees, on real databases."""

from __future__ import annotations

from pathlib import Path

import pytest

from tailor.core.database.engine import database_engine
from tests.support.databases import previous_release_tables
from tests.support.flow import Flow, run_tailor, tailor_env
from tests.support.services import ServiceUnavailable, start_api


def _legacy_database(path: Path) -> str:
    """A SQLite file as the release before migrations left it."""
    url = f"sqlite:///{path}"
    engine = database_engine(url)
    previous_release_tables().create_all(engine)
    engine.dispose()
    return url


def test_status_then_upgrade_then_status(tmp_path):
    env = tailor_env(tmp_path, TAILOR_DECISIONS__DATABASE_URL=_legacy_database(tmp_path / "d.db"))
    behind = run_tailor(env, "db", "status")
    assert behind.returncode == 3, behind.stdout + behind.stderr
    assert "before migrations" in behind.stdout and "tailor db upgrade" in behind.stdout
    upgraded = run_tailor(env, "db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stdout + upgraded.stderr
    current = run_tailor(env, "db", "status")
    assert current.returncode == 0, current.stdout
    assert "tailor db upgrade" not in current.stdout


def test_an_unreachable_database_is_named_not_a_traceback(tmp_path):
    env = tailor_env(
        tmp_path,
        TAILOR_DECISIONS__DATABASE_URL="postgresql+psycopg://postgres@127.0.0.1:1/nowhere",
    )
    result = run_tailor(env, "db", "status")
    assert result.returncode == 1
    assert "cannot reach the decision database" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_the_api_refuses_an_old_schema_when_it_may_not_migrate(flow: Flow, tmp_path):
    env = flow.env | {
        "TAILOR_DECISIONS__DATABASE_URL": _legacy_database(tmp_path / "d.db"),
        "TAILOR_DECISIONS__AUTO_MIGRATE": "false",
    }
    with pytest.raises(ServiceUnavailable) as refused:
        start_api(env, startup_seconds=60).stop()
    assert "tailor db upgrade" in str(refused.value)
