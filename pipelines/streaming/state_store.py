"""Where session state lives: Redis for any number of workers, memory for one process.

Both apply a batch idempotently: an event id already applied is skipped, so a batch
redelivered after a crash changes nothing, and the returned states are the users'
current states either way (their snapshot is pushed again, which is harmless).
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Container, Iterable, Sequence
from typing import Protocol

import redis

from pipelines.streaming.session_state import (
    EventFacts,
    State,
    apply_event,
    mark_changed,
    new_state,
    restored,
)
from tailor.core.clock import Clock
from tailor.core.events import Event
from tailor.core.live_sessions import session_state_key

WATCH_RETRIES = 20


def apply_new(
    state: State, events: Sequence[EventFacts], already_applied: Container[str], clock: Clock
) -> None:
    """Fold a user's batch (in time order) into the state, minus the events already
    applied, and date the state by the clock if it changed. The history backfill
    (`backfill.py`) runs this same function one event at a time."""
    fresh = [event for event in events if event.event_id not in already_applied]
    for event in fresh:
        apply_event(state, event)
    if fresh:
        mark_changed(state, int(clock.now().timestamp() * 1_000_000))


def _by_user(events: Iterable[Event]) -> dict[int, list[Event]]:
    grouped: dict[int, list[Event]] = {}
    unique = {event.event_id: event for event in reversed(list(events))}  # first one wins
    for event in sorted(unique.values(), key=lambda e: (e.ts, e.event_id)):
        grouped.setdefault(event.user_id, []).append(event)
    return grouped


class SessionStore(Protocol):
    def apply(self, events: Sequence[Event]) -> dict[int, State]: ...

    def erase(self, user_id: int) -> int:
        """Forget the user's state (their right to erasure); how many states went."""


class InMemorySessionStore:
    """The embedded profile's store: one process, so a lock is all the isolation needed."""

    def __init__(self, dedup_ttl_seconds: int, clock: Clock) -> None:
        self._clock = clock
        self._states: dict[int, State] = {}
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._dedup_ttl = dedup_ttl_seconds
        self._lock = threading.Lock()

    def apply(self, events: Sequence[Event]) -> dict[int, State]:
        now = time.monotonic()
        with self._lock:
            while self._seen and next(iter(self._seen.values())) < now - self._dedup_ttl:
                self._seen.popitem(last=False)
            touched: dict[int, State] = {}
            for user_id, user_events in _by_user(events).items():
                state = self._states.setdefault(user_id, new_state())
                apply_new(state, user_events, self._seen, self._clock)
                for event in user_events:
                    self._seen.setdefault(event.event_id, now)
                touched[user_id] = json.loads(json.dumps(state))  # a copy callers may keep
            return touched

    def erase(self, user_id: int) -> int:
        with self._lock:
            return int(self._states.pop(user_id, None) is not None)


DEDUP_SLICES = 24  # the dedup window is kept as this many hashes, one per slice of time


def dedup_buckets(prefix: str, ttl_seconds: int, now: float) -> tuple[list[str], int]:
    """The hashes that may hold an event id applied within `ttl_seconds` before `now`,
    oldest first (the last is where ids applied now go), and when that last one may
    expire (epoch seconds).

    One hash field per id instead of one key per id: 99 instead of 149 bytes of Redis
    memory per remembered event, and one HSET per batch instead of a SET per event.
    Expiry is per hash, so an id lives between one and 1 + 1/DEDUP_SLICES windows.
    """
    span = ttl_seconds / DEDUP_SLICES
    current = int(now // span)
    keys = [f"{prefix}:seen:{slice_}" for slice_ in range(current - DEDUP_SLICES, current + 1)]
    return keys, math.ceil((current + DEDUP_SLICES + 1) * span)


class RedisSessionStore:
    """States as JSON strings, updated in one optimistic transaction per batch.

    WATCH on the users' keys makes two workers that touch the same user at once
    serialise: the loser retries on the winner's state. The applied event ids are
    written in the same transaction, so state and dedup marks never disagree. The
    reads go through a second connection in one round trip after the WATCH: a write
    to a watched key after the WATCH still fails the transaction.
    """

    def __init__(
        self,
        client: redis.Redis,
        prefix: str,
        state_ttl_seconds: int,
        dedup_ttl_seconds: int,
        clock: Clock,
    ) -> None:
        self._clock = clock
        self._client = client
        self._prefix = prefix
        self._state_ttl = state_ttl_seconds
        self._dedup_ttl = dedup_ttl_seconds

    def state_key(self, user_id: int) -> str:
        return session_state_key(self._prefix, user_id)

    def erase(self, user_id: int) -> int:
        return int(self._client.delete(self.state_key(user_id)))

    def _read(self, keys: list[str], buckets: list[str], ids: list[str]) -> tuple[list, set[str]]:
        reads = self._client.pipeline(transaction=False)
        reads.mget(keys)
        for bucket in buckets:
            reads.hmget(bucket, ids)
        raw_states, *marks = reads.execute()
        already = {
            event_id
            for bucket_marks in marks
            for event_id, mark in zip(ids, bucket_marks, strict=True)
            if mark
        }
        return raw_states, already

    def apply(self, events: Sequence[Event]) -> dict[int, State]:
        grouped = _by_user(events)
        if not grouped:
            return {}
        keys = [self.state_key(user_id) for user_id in grouped]
        ids = [event.event_id for user_events in grouped.values() for event in user_events]
        for _ in range(WATCH_RETRIES):
            with self._client.pipeline() as pipe:
                try:
                    pipe.watch(*keys)
                    buckets, expire_at = dedup_buckets(self._prefix, self._dedup_ttl, time.time())
                    raw_states, already = self._read(keys, buckets, ids)
                    states: dict[int, State] = {}
                    for (user_id, user_events), raw in zip(
                        grouped.items(), raw_states, strict=True
                    ):
                        state = restored(json.loads(raw)) if raw else new_state()
                        apply_new(state, user_events, already, self._clock)
                        states[user_id] = state
                    pipe.multi()
                    for key, state in zip(keys, states.values(), strict=True):
                        pipe.set(key, json.dumps(state), ex=self._state_ttl)
                    applied = [event_id for event_id in ids if event_id not in already]
                    if applied:
                        pipe.hset(buckets[-1], mapping=dict.fromkeys(applied, 1))
                        pipe.expireat(buckets[-1], expire_at)
                    pipe.execute()
                    return states
                except redis.WatchError:
                    continue
        raise RuntimeError(f"session state for {len(keys)} users kept changing under the batch")
