"""A stream worker: one consumer of the Redis Stream's consumer group.

Delivery is at least once: entries are acknowledged only after their snapshots are
pushed online and the offline flush covering them is done. Idempotence comes from
the session store (event ids already applied are skipped). Entries left pending by
a worker that died are claimed with XAUTOCLAIM once idle for `claim_idle_ms`. The
stream is trimmed only below what every consumer group has acknowledged.

Consumers are named per process, so each restart adds one to the group: a worker
removes its own on a clean stop, and the trim pass removes those of workers that died
(idle past `claim_idle_ms`, nothing pending). The check and the removal are one Lua
script, because XGROUP DELCONSUMER drops whatever the consumer still has pending.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis
from pydantic import ValidationError

from pipelines.streaming.processor import SessionProcessor
from tailor.core.event_stream import PAYLOAD_FIELD
from tailor.core.events import Event
from tailor.core.settings import StreamSettings

log = logging.getLogger(__name__)

Entry = tuple[bytes, dict[bytes, bytes]]
FAILURE_BACKOFF_SECONDS = 0.5

# KEYS[1] stream; ARGV: group, the caller's own name (kept), minimum idle ms.
_FORGET_STOPPED_CONSUMERS = """
local removed = {}
for _, consumer in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])) do
  local field = {}
  for index = 1, #consumer, 2 do field[consumer[index]] = consumer[index + 1] end
  if field['name'] ~= ARGV[2] and field['pending'] == 0
      and field['idle'] >= tonumber(ARGV[3]) then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], field['name'])
    table.insert(removed, field['name'])
  end
end
return removed
"""


def stream_id(raw: bytes | str) -> tuple[int, int]:
    text = raw.decode() if isinstance(raw, bytes) else raw
    milliseconds, _, sequence = text.partition("-")
    return int(milliseconds), int(sequence or 0)


@dataclass(frozen=True)
class BatchStats:
    entry_ids: list[bytes]
    event_ids: list[str]
    users: int
    pushed_at: float  # wall clock, seconds: when the batch became visible online


class StreamWorker:
    def __init__(
        self,
        client: redis.Redis,
        config: StreamSettings,
        processor: SessionProcessor,
        consumer: str,
        on_batch: Callable[[BatchStats], None] | None = None,
    ) -> None:
        self._client = client
        self._config = config
        self._processor = processor
        self.consumer = consumer
        self._on_batch = on_batch
        self._unacked: list[bytes] = []
        self._unacked_lock = threading.Lock()
        self._flusher: threading.Thread | None = None
        # Where to re-read this consumer's own pending entries from: "0" after a restart
        # under the same name or a failure, then past each batch re-read; None once they
        # are all re-read (new entries only). Re-reading from "0" every time would return
        # the same first batch until the flush acknowledged it.
        self._pending_from: bytes | str | None = "0"
        # XAUTOCLAIM scans the pending list, which holds ~offline_flush_seconds of this
        # worker's own entries; looking a few times per idle period is enough.
        self._claim_every = min(config.claim_idle_ms / 4000, 5.0)
        self._next_claim = 0.0
        self._next_trim = time.monotonic() + config.trim_every_seconds
        self._forget_stopped = client.register_script(_FORGET_STOPPED_CONSUMERS)
        self.processed_events = 0

    def ensure_group(self) -> None:
        try:
            self._client.xgroup_create(
                self._config.stream_key, self._config.group, id="0", mkstream=True
            )
        except redis.ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise

    def _claim(self) -> list[Entry]:
        _, entries, _ = self._client.xautoclaim(
            self._config.stream_key,
            self._config.group,
            self.consumer,
            min_idle_time=self._config.claim_idle_ms,
            start_id="0-0",
            count=self._config.batch_size,
        )
        return [entry for entry in entries if entry[1]]

    def _read(self) -> list[Entry]:
        rereading = self._pending_from is not None
        response = self._client.xreadgroup(
            self._config.group,
            self.consumer,
            {self._config.stream_key: self._pending_from if rereading else ">"},
            count=self._config.batch_size,
            block=None if rereading else self._config.block_ms,
        )
        entries = response[0][1] if response else []
        if rereading:
            self._pending_from = entries[-1][0] if entries else None
        return entries

    def _parse(self, entries: list[Entry]) -> list[Event]:
        events = []
        for entry_id, fields in entries:
            if not fields:  # deleted from the stream while pending: nothing to apply
                continue
            try:
                events.append(Event.model_validate_json(fields[PAYLOAD_FIELD]))
            except (KeyError, ValidationError) as error:
                # Not from our API (which validates); park it rather than block the stream.
                log.error(
                    "entry %s is not a valid event, moved to the dead letters: %s", entry_id, error
                )
                self._client.xadd(f"{self._config.stream_key}:dead", fields)
        return events

    def _handle(self, entries: list[Entry]) -> None:
        events = self._parse(entries)
        users = self._processor.process(events) if events else 0
        ids = [entry_id for entry_id, _ in entries]
        with self._unacked_lock:
            self._unacked.extend(ids)
        self.processed_events += len(events)
        if self._on_batch:
            self._on_batch(BatchStats(ids, [e.event_id for e in events], users, time.time()))

    def _flush_and_ack(self) -> None:
        """Write the buffered offline rows, then acknowledge the entries they cover.

        Rows of an entry are buffered before its id joins `_unacked`, so the ids taken
        here are all covered by the flush that follows. On failure the ids go back and
        the next flush retries them.
        """
        with self._unacked_lock:
            ids, self._unacked = self._unacked, []
        try:
            self._processor.pusher.flush_offline()
            if ids:
                self._client.xack(self._config.stream_key, self._config.group, *ids)
        except Exception:
            log.exception("offline flush failed; its entries stay pending and are retried")
            with self._unacked_lock:
                self._unacked = ids + self._unacked

    def _flush_in_background(self) -> None:
        """The offline write is file I/O: off the read loop, so it never delays fresh
        events."""
        if self._flusher is None or not self._flusher.is_alive():
            self._flusher = threading.Thread(target=self._flush_and_ack, name="offline-flush")
            self._flusher.start()

    def trim(self) -> tuple[int, int] | None:
        """Drop entries every group has acknowledged; returns the new floor id, if any."""
        floor: tuple[int, int] | None = None
        for group in self._client.xinfo_groups(self._config.stream_key):
            candidate = stream_id(group["last-delivered-id"])
            if group["pending"]:
                summary = self._client.xpending(self._config.stream_key, group["name"])
                if summary["min"] is not None:  # None: acknowledged since XINFO answered
                    candidate = min(candidate, stream_id(summary["min"]))
            floor = candidate if floor is None else min(floor, candidate)
        if floor and floor != (0, 0):
            self._client.xtrim(
                self._config.stream_key, minid=f"{floor[0]}-{floor[1]}", approximate=False
            )
        return floor

    def forget_stopped_consumers(self) -> list[str]:
        """Remove the group's consumers that stopped or died with nothing pending; a
        live one merely idle is recreated by its next read. Returns their names."""
        removed = self._forget_stopped(
            keys=[self._config.stream_key],
            args=[self._config.group, self.consumer, self._config.claim_idle_ms],
        )
        return [name.decode() for name in removed]

    def step(self) -> int:
        """One read-process cycle; returns the number of entries handled."""
        entries: list[Entry] = []
        if time.monotonic() >= self._next_claim:
            entries = self._claim()
            self._next_claim = time.monotonic() + self._claim_every
        entries = entries or self._read()
        if entries:
            self._handle(entries)
        if self._unacked and self._processor.pusher.offline_due():
            self._flush_in_background()
        if time.monotonic() >= self._next_trim:
            self.trim()
            self.forget_stopped_consumers()
            self._next_trim = time.monotonic() + self._config.trim_every_seconds
        return len(entries)

    def run(self, stop: threading.Event) -> None:
        self.ensure_group()
        while not stop.is_set():
            try:
                self.step()
            except Exception:  # any failure: keep the entries pending and retry them
                log.exception("batch failed; its entries stay pending and are retried")
                self._pending_from = "0"
                stop.wait(FAILURE_BACKOFF_SECONDS)
        if self._flusher is not None:
            self._flusher.join()
        self._flush_and_ack()
        self._leave_group()

    def _leave_group(self) -> None:
        """Remove this consumer if everything it read is acknowledged (entries still
        pending keep it, for a restart under the same name or a claim)."""
        key, group = self._config.stream_key, self._config.group
        try:
            if not self._client.xpending_range(key, group, "-", "+", 1, self.consumer):
                self._client.xgroup_delconsumer(key, group, self.consumer)
        except redis.RedisError:
            log.warning("could not leave the consumer group; the next trim pass will")
