"""A user's live session where both halves of Tailor meet it: the stream worker keeps the
state (in Redis under `session_state_key`, or in the API process on the embedded
profile), and the API erases it when the user asks to be forgotten.

Erasing takes the state and the user's events still waiting in the stream (accepted,
not yet folded into the state by a worker), which would otherwise bring the state back.
A batch a worker has already read is beyond reach: it may write the state once more,
which is why erasure is idempotent and can be repeated.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import redis

from tailor.core.clients import redis_client
from tailor.core.event_stream import PAYLOAD_FIELD, EventBus
from tailor.core.settings import TailorSettings

STREAM_SCAN_BATCH = 1000  # stream entries read per XRANGE while looking for a user's


def session_state_key(prefix: str, user_id: int) -> str:
    """The Redis key of a user's session state (a JSON string)."""
    return f"{prefix}:session:{user_id}"


class SessionStoreUnavailable(RuntimeError):
    """The store holding live sessions failed; nothing can be said to be erased there."""


@dataclass(frozen=True)
class SessionsErased:
    states: int  # session states removed (0 or 1)
    queued_events: int  # events removed from the stream before a worker read them


@runtime_checkable
class SessionEraser(Protocol):
    def erase(self, user_id: int) -> SessionsErased:
        """Forget the user's live session; raises `SessionStoreUnavailable`."""


class RedisSessionEraser:
    """The redis profile's sessions: the state key, and the user's stream entries (XDEL;
    a worker skips an entry deleted while it was pending)."""

    def __init__(self, client: redis.Redis, prefix: str, stream_key: str) -> None:
        self._client = client
        self._prefix = prefix
        self._stream_key = stream_key

    def erase(self, user_id: int) -> SessionsErased:
        try:
            queued = self._erase_queued(user_id)
            states = int(self._client.delete(session_state_key(self._prefix, user_id)))
        except redis.RedisError as error:
            raise SessionStoreUnavailable(f"Redis (session state): {error}") from error
        return SessionsErased(states=states, queued_events=queued)

    def _erase_queued(self, user_id: int) -> int:
        """The stream holds only what some consumer group has not acknowledged yet (the
        workers trim it), so reading all of it is cheap while workers keep up."""
        removed = 0
        start = "-"
        while entries := self._client.xrange(self._stream_key, start, "+", STREAM_SCAN_BATCH):
            theirs = [entry_id for entry_id, fields in entries if _user_of(fields) == user_id]
            if theirs:
                removed += self._client.xdel(self._stream_key, *theirs)
            if len(entries) < STREAM_SCAN_BATCH:
                break
            last = entries[-1][0]
            start = "(" + (last.decode() if isinstance(last, bytes) else last)
        return removed


def _user_of(fields: dict[bytes, bytes]) -> int | None:
    """The entry's user; None for an entry that is not a valid event (a worker moves
    those to the dead letters)."""
    try:
        user_id = json.loads(fields[PAYLOAD_FIELD])["user_id"]
    except (KeyError, TypeError, ValueError):
        return None
    return user_id if isinstance(user_id, int) else None


def session_eraser(settings: TailorSettings, bus: EventBus) -> SessionEraser:
    """Redis keeps the sessions on the redis profile; on the embedded profile the API
    process keeps them itself, in the processor behind its event bus, which must then
    be able to erase them."""
    if settings.profile == "redis":
        return RedisSessionEraser(
            redis_client(settings), settings.project, settings.stream.stream_key
        )
    if not isinstance(bus, SessionEraser):
        raise TypeError(
            f"the embedded profile keeps live sessions in the event bus, and "
            f"{type(bus).__name__} cannot erase them (it has no erase(user_id))"
        )
    return bus
