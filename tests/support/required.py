"""Real services a test needs: one that cannot be had fails the test with how to get
it, never skips it (`services` raises; these turn that into a test failure)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.support import services
from tests.support.services import PrivateRedis


def private_redis(port: int | None = None, data_dir: Path | None = None) -> PrivateRedis:
    try:
        return services.start_private_redis(port, data_dir)
    except services.ServiceUnavailable as error:
        pytest.fail(str(error))


@contextmanager
def scratch_database() -> Iterator[str]:
    try:
        with services.scratch_database() as url:
            yield url
    except services.ServiceUnavailable as error:
        pytest.fail(str(error))
