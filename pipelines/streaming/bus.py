"""Where accepted events go: a Redis Stream, or straight into the processor in-process."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Protocol

import redis

from pipelines.events import Event
from pipelines.streaming.processor import SessionProcessor

PAYLOAD_FIELD = b"e"


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


class InProcessEventBus:
    """The embedded profile: the API process runs the same processor a worker would."""

    def __init__(self, processor: SessionProcessor) -> None:
        self._processor = processor
        self._lock = threading.Lock()

    def publish(self, events: Sequence[Event]) -> None:
        with self._lock:
            self._processor.process(events)
            if self._processor.pusher.offline_due():
                self._processor.pusher.flush_offline()

    def close(self) -> None:
        with self._lock:
            self._processor.pusher.flush_offline()
