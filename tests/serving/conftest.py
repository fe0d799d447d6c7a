"""Fixtures of the serving tests: each module gets one SQLite and one PostgreSQL database."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.services import scratch_database


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path_factory) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'decisions.db'}"
    else:
        with scratch_database() as url:
            yield url
