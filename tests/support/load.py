"""Load a test keeps up while it breaks the servers under it: paced threads whose every
request is recorded with the phase of the scenario it was sent and answered in.

Phases order requests against what the test did (an answer sent and received while
Redis was dead) without reading any clock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass(frozen=True)
class Exchange:
    path: str
    sent: Any
    sent_in: str
    answered_in: str
    status: int | None  # None: no HTTP answer at all
    answer: Any  # the JSON body, or the transport error's text

    def within(self, phase: str) -> bool:
        """Sent and answered while the scenario was in `phase`."""
        return self.sent_in == self.answered_in == phase


class Recording:
    """The scenario's phases and every exchange the load made, safe across threads."""

    def __init__(self, first_phase: str) -> None:
        self._lock = threading.Lock()
        self._phases = [first_phase]
        self._exchanges: list[Exchange] = []

    @property
    def phase(self) -> str:
        return self._phases[-1]

    def enter(self, phase: str) -> None:
        with self._lock:
            assert phase not in self._phases, f"phase {phase} entered twice"
            self._phases.append(phase)

    def add(self, exchange: Exchange) -> None:
        with self._lock:
            self._exchanges.append(exchange)

    def exchanges(self, path: str) -> list[Exchange]:
        with self._lock:
            return [exchange for exchange in self._exchanges if exchange.path == path]


Post = Callable[[str, Any], Exchange]


def recording_client(
    base_url: str, recording: Recording, timeout: float
) -> tuple[Post, httpx.Client]:
    """A `post` that records its exchange whatever happens, and the client to close."""
    client = httpx.Client(base_url=base_url, timeout=timeout)

    def post(path: str, body: Any) -> Exchange:
        sent_in = recording.phase
        try:
            response = client.post(path, json=body)
            status, answer = response.status_code, response.json()
        except (httpx.HTTPError, ValueError) as error:  # ValueError: a body that is not JSON
            status, answer = None, repr(error)
        exchange = Exchange(path, body, sent_in, recording.phase, status, answer)
        recording.add(exchange)
        return exchange

    return post, client


class PacedLoad:
    """One thread per step function, each calling it `per_second` times a second at
    most (fewer when the server is slower: one request at a time per thread), until
    stopped or after `limit` calls, so a scenario that goes wrong still ends."""

    def __init__(
        self,
        base_url: str,
        recording: Recording,
        steps: Sequence[Callable[[Post], object]],
        per_second: float,
        limit: int,
        timeout: float = 30.0,
    ) -> None:
        self._base_url = base_url
        self._recording = recording
        self._interval = 1 / per_second
        self._limit = limit
        self._timeout = timeout
        self._stop = threading.Event()
        self._failures: list[BaseException] = []
        self._threads = [
            threading.Thread(target=self._run, args=(step,), daemon=True) for step in steps
        ]

    def __enter__(self) -> PacedLoad:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=self._timeout + 5)
        assert not self._failures, f"a load thread failed: {self._failures[0]!r}"

    def _run(self, step: Callable[[Post], object]) -> None:
        post, client = recording_client(self._base_url, self._recording, self._timeout)
        try:
            for _ in range(self._limit):
                due = time.monotonic() + self._interval
                step(post)
                if self._stop.wait(max(0.0, due - time.monotonic())):
                    return
        except BaseException as error:  # a bug in a step: the test must not pass quietly
            self._failures.append(error)
        finally:
            client.close()
