"""Schemathesis against the live OpenAPI document of a real `tailor serve`: every
operation, with the admin key and without it, answers only the statuses it declares,
with bodies matching the declared schemas, and never a 5xx.

Generated requests (valid, invalid, and the documented examples) find what hand-written
cases miss: the 400 FastAPI answers for a body that is not UTF-8 was declared nowhere.
Schemathesis' pytest loader (`schemathesis.pytest.from_fixture`) fails under pytest 9.2
(it sets `Item._nodeid`, which pytest removed), so each operation runs as a Hypothesis
test built here from the schema the server serves.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import APIOperation, BaseSchema, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.support.flow import Flow, start_server

ADMIN_KEY = "fuzzing-admin-key"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
# Per operation and key setting: the whole module stays well under two minutes on a
# slow two-core machine. Derandomized, so a failure here fails the same way again.
FUZZING = settings(
    max_examples=50,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


@pytest.fixture(scope="module")
def schema(flow: Flow, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BaseSchema]:
    """A server with the admin API open, over a copy of the flow's feature store: what
    the fuzzing writes (opt-outs, events, decisions) stays in this module's directory."""
    data_dir = tmp_path_factory.mktemp("fuzzing") / "data"
    shutil.copytree(flow.data_dir / "feast", data_dir / "feast")
    server = start_server(
        flow.env | {"TAILOR_DATA_DIR": str(data_dir), "TAILOR_SERVING__ADMIN_API_KEY": ADMIN_KEY}
    )
    try:
        yield schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    finally:
        server.stop()


def _cases(operation: APIOperation, headers: dict[str, str] | None) -> st.SearchStrategy:
    """Valid and invalid requests, and the schema's own examples; `headers` are fixed
    so that no generated value replaces the key."""
    return st.one_of(
        *operation.get_strategies_from_examples(headers=headers),
        *(operation.as_strategy(mode, headers=headers) for mode in GenerationMode),
    )


def _failures(schema: BaseSchema, headers: dict[str, str] | None) -> list[str]:
    """Every operation is fuzzed, and each one's first failure is kept, so one report
    names all the operations that break their declaration."""
    operations = [result.ok() for result in schema.get_all_operations()]
    assert operations, "the live OpenAPI document lists no operation"
    failures = []
    for operation in operations:

        @FUZZING
        @given(case=_cases(operation, headers))
        def answers_as_declared(case: schemathesis.Case) -> None:
            case.call_and_validate(headers=headers, checks=CHECKS)

        try:
            answers_as_declared()
        except (AssertionError, FailureGroup) as failure:
            failures.append(f"{operation.label}: {failure}")
    return failures


def test_every_operation_answers_as_declared_with_the_admin_key(schema):
    failures = _failures(schema, {"X-API-Key": ADMIN_KEY})
    assert not failures, "\n\n".join(failures)


def test_every_operation_answers_as_declared_without_the_admin_key(schema):
    """No key, or whatever key the generator makes up: the admin routes answer 401."""
    failures = _failures(schema, None)
    assert not failures, "\n\n".join(failures)
