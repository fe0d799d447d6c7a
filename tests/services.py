"""Real Redis and PostgreSQL for tests; a missing service fails the test, never skips it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from pipelines import local_services
from pipelines.local_services import PrivateRedis


def start_private_redis() -> PrivateRedis:
    try:
        return local_services.start_private_redis()
    except local_services.ServiceUnavailable as error:
        pytest.fail(str(error))


@contextmanager
def scratch_database() -> Iterator[str]:
    try:
        with local_services.scratch_database() as url:
            yield url
    except local_services.ServiceUnavailable as error:
        pytest.fail(str(error))
