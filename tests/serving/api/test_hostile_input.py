"""Hostile input over HTTP: values JSON cannot carry back, loose types, control
characters, odd header bytes and oversized bodies all get a 4xx that names the field,
never a 500, and a 422 repeats at most a short, encodable excerpt of the input."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest

from tests.support.flow import CLOCK_START, TIME_TRAVEL, Flow, Server, start_server

ADMIN_KEY = "hostile-admin-key"
DECIDE = (
    '{"user_id": %s, "placement": "homepage_banner", "personalization_consent": %s, '
    '"context": {"device": "mobile", "country": "DE"%s}}'
)
MAX_BODY = 64 * 1024


@pytest.fixture(scope="module")
def server(flow: Flow, tmp_path_factory) -> Iterator[Server]:
    home = tmp_path_factory.mktemp("hostile")
    defaults = {name: value for name, value in flow.env.items() if name not in TIME_TRAVEL}
    started = start_server(
        defaults
        | {
            "TAILOR_SERVING__ADMIN_API_KEY": ADMIN_KEY,
            "TAILOR_SERVING__MAX_BODY_BYTES": str(MAX_BODY),
            "TAILOR_DECISIONS__DATABASE_URL": f"sqlite:///{home / 'decisions.db'}",
        }
    )
    yield started
    started.stop()


def _raw(
    server: Server,
    method: str,
    path: str,
    body: bytes | str | Iterator[bytes] | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, bytes]:
    """Bytes on the wire, as a hostile client sends them (no client-side encoding)."""
    address = urlsplit(server.url)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=60)
    try:
        connection.request(
            method, path, body=body, headers={"content-type": "application/json"} | (headers or {})
        )
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


@pytest.mark.parametrize(
    ("user_id", "consent", "context", "field"),
    [
        ("NaN", "true", "", "user_id"),
        ("Infinity", "true", "", "user_id"),
        ("1e400", "true", "", "user_id"),
        ('"\\ud800"', "true", "", "user_id"),
        ("true", "true", "", "user_id"),
        ('"42"', "true", "", "user_id"),
        ("42", "0", "", "personalization_consent"),
        ("42", "true", ', "timestamp": 1772600000', "timestamp"),
        ("42", "true", ', "page": "\\ud83d"', "page"),
        ("42", "true", ', "\\udfff": 1', "\\udfff"),
    ],
)
def test_a_bad_value_is_a_422_naming_its_field(server, user_id, consent, context, field):
    status, body = _raw(server, "POST", "/v1/personalize", DECIDE % (user_id, consent, context))
    assert status == 422, body
    text = body.decode("utf-8")  # valid UTF-8, whatever came in
    assert f'"{field}"' in text.replace("\\\\", "\\"), text


def test_a_control_character_in_an_identifier_is_refused(server):
    placement = DECIDE.replace("homepage_banner", "home\\u0000") % ("1", "true", "")
    assert _raw(server, "POST", "/v1/personalize", placement)[0] == 422
    status, body = _raw(
        server,
        "PUT",
        "/v1/admin/opt-outs/123456",
        '{"reason": "a\\u0000b"}',
        {"X-API-Key": ADMIN_KEY},
    )
    assert status == 422 and b"reason" in body
    status, body = _raw(server, "GET", "/v1/decisions/abc%00def")
    assert status == 422 and b"decision_id" in body and b"SELECT" not in body


def test_a_non_ascii_api_key_is_a_401(server):
    key = "ключ".encode().decode("latin-1")  # the bytes a client may put in a header
    status, body = _raw(server, "GET", "/v1/admin/config", headers={"X-API-Key": key})
    assert status == 401, body
    assert _raw(server, "GET", "/v1/admin/config", headers={"X-API-Key": ADMIN_KEY})[0] == 200


def test_a_large_input_is_answered_with_an_excerpt(server):
    long_placement = "p" * 5_000
    body = (DECIDE % ("1", "true", "")).replace("homepage_banner", long_placement)
    status, answer = _raw(server, "POST", "/v1/personalize", body)
    assert status == 422 and len(answer) < 1_000, answer


def test_a_body_over_the_limit_is_a_413_declared_or_chunked(server):
    oversized = "[" + ",".join(['{"event_id": "x"}'] * (MAX_BODY // 10)) + "]"
    status, body = _raw(server, "POST", "/v1/events", oversized)
    assert status == 413 and b"max_body_bytes" in body

    def chunks() -> Iterator[bytes]:
        for _ in range(MAX_BODY // 1024 + 2):
            yield b" " * 1024

    status, body = _raw(server, "POST", "/v1/events", chunks())  # no length: chunked
    assert status == 413, body
    assert _raw(server, "GET", "/health")[0] in {200, 503}  # still serving


def test_a_control_character_in_an_event_or_outcome_identifier_is_refused(server):
    event = (
        '[{"event_id": "e\\u0000", "user_id": 1, "session_id": "s\\u001b1", '
        '"event_type": "view", "category": "c\\u007f", "ts": "2026-03-04T09:00:00Z"}]'
    )
    status, body = _raw(server, "POST", "/v1/events", event)
    assert status == 422, body
    fields = {error["field"] for error in json.loads(body)["errors"]}
    assert {"event_id", "session_id", "category"} <= fields, fields
    outcome = (
        '[{"outcome_id": "o\\u0000", "decision_id": "' + "a" * 32 + '", '
        '"type": "click", "ts": "2026-03-04T09:00:00Z"}]'
    )
    status, body = _raw(server, "POST", "/v1/outcomes", outcome)
    assert status == 422 and "outcome_id" in {e["field"] for e in json.loads(body)["errors"]}


def _decide_at(server: Server, offset: timedelta) -> tuple[int, dict]:
    timestamp = f', "timestamp": "{(CLOCK_START + offset).isoformat()}"'
    status, body = _raw(server, "POST", "/v1/personalize", DECIDE % ("27", "true", timestamp))
    return status, json.loads(body)


# The server's pinned clock started at CLOCK_START when this module's server did, a
# minute or two ago: two hours either way is out of the 300 s bounds, a minute ahead
# of CLOCK_START is within them.
def test_context_timestamps_are_bounded_by_the_servers_clock(server):
    for offset, direction in ((timedelta(hours=2), "ahead"), (timedelta(hours=-2), "behind")):
        status, body = _decide_at(server, offset)
        assert status == 422, body
        (error,) = body["detail"]
        assert error["loc"] == ["body", "context", "timestamp"]
        assert direction in error["msg"] and "serving.context_max_" in error["msg"]
    status, body = _decide_at(server, timedelta(minutes=1))
    assert status == 200, body


def test_event_times_are_bounded_by_the_servers_clock(server):
    def event(moment: datetime) -> str:
        return json.dumps(
            [
                {
                    "event_id": f"bounded-{moment.timestamp()}",
                    "user_id": 1,
                    "session_id": "s",
                    "event_type": "view",
                    "ts": moment.isoformat(),
                }
            ]
        )

    for moment, setting in (
        (datetime(1970, 1, 1, tzinfo=UTC), "stream.max_past_seconds"),
        (CLOCK_START - timedelta(days=2), "stream.max_past_seconds"),
        (CLOCK_START + timedelta(hours=2), "stream.max_future_seconds"),
    ):
        status, body = _raw(server, "POST", "/v1/events", event(moment))
        assert status == 422, body
        (error,) = json.loads(body)["errors"]
        assert error["field"] == "ts" and setting in error["message"], error
    status, body = _raw(server, "POST", "/v1/events", event(CLOCK_START))
    assert status == 200, body
