"""The live event stream: how the API hands accepted events on, and how they are encoded.

The API publishes; a stream worker (or, on the embedded profile, the API process
itself) consumes. Both sides meet here, on the `EventBus` protocol and on the Redis
Stream entry format, so neither needs the other's code.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import redis

from tailor.core.events import Event

PAYLOAD_FIELD = b"e"  # each stream entry holds one event as JSON under this field


class EventBus(Protocol):
    def publish(self, events: Sequence[Event]) -> None:
        """Durably accept the events or raise; nothing is half-accepted silently."""

    def close(self) -> None: ...


class RedisStreamBus:
    def __init__(self, client: redis.Redis, stream_key: str) -> None:
        self._client = client
        self._stream_key = stream_key

    def publish(self, events: Sequence[Event]) -> None:
        with self._client.pipeline(transaction=True) as pipe:
            for event in events:
                pipe.xadd(self._stream_key, {PAYLOAD_FIELD: event.model_dump_json()})
            pipe.execute()

    def close(self) -> None:
        self._client.close()
