"""The live event stream: how the API hands accepted events on, and how they are encoded.

The API publishes; a stream worker (or, on the embedded profile, the API process
itself) consumes. Both sides meet here, on the `EventBus` protocol and on the Redis
Stream entry format, so neither needs the other's code.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import redis

from tailor.core.clients import redis_client
from tailor.core.events import Event
from tailor.core.settings import TailorSettings

PAYLOAD_FIELD = b"e"  # each stream entry holds one event as JSON under this field

# Appends a batch only while Redis's own clock is before a deadline taken from that
# same clock. A batch that reaches Redis late (Redis paused, a slow network, a client
# that already gave up and answered 503) is refused by Redis itself, so the 503 the API
# answered stays true without comparing two machines' clocks.
_APPEND_BEFORE_DEADLINE = """
local now = redis.call('TIME')
local micros = tonumber(now[1]) * 1000000 + tonumber(now[2])
if micros > tonumber(ARGV[1]) then
  return redis.error_reply('LATE the batch reached Redis after its deadline')
end
for index = 3, #ARGV do
  redis.call('XADD', KEYS[1], '*', ARGV[2], ARGV[index])
end
return #ARGV - 2
"""


class EventBus(Protocol):
    def publish(self, events: Sequence[Event]) -> None:
        """Durably accept the events or raise; nothing is half-accepted silently."""

    def close(self) -> None: ...


class RedisStreamBus:
    """Publishes a batch atomically, within `deadline_seconds` by Redis's clock.

    Either the whole batch is in the stream or none of it is, and a batch that arrives
    after its deadline is refused, so a caller that times out and reports failure is
    not contradicted by a late write. One race remains: Redis appends in time and its
    answer is lost or late; the events then count, and a retry with the same event ids
    is dropped by the stream worker's deduplication.
    """

    def __init__(self, client: redis.Redis, stream_key: str, deadline_seconds: float) -> None:
        self._client = client
        self._stream_key = stream_key
        self._deadline_micros = int(deadline_seconds * 1_000_000)
        self._append = client.register_script(_APPEND_BEFORE_DEADLINE)

    def publish(self, events: Sequence[Event]) -> None:
        seconds, micros = self._client.time()
        deadline = seconds * 1_000_000 + micros + self._deadline_micros
        payloads = [event.model_dump_json() for event in events]
        self._append(keys=[self._stream_key], args=[deadline, PAYLOAD_FIELD, *payloads])

    def close(self) -> None:
        self._client.close()


def redis_stream_bus(settings: TailorSettings) -> RedisStreamBus:
    """The bus the API publishes to: no client retries (each would cost another timeout
    past the deadline), and the deadline is the Redis timeout."""
    return RedisStreamBus(
        redis_client(settings, retries=0),
        settings.stream.stream_key,
        deadline_seconds=settings.servers.redis_timeout_seconds,
    )
