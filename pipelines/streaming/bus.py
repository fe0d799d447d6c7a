"""The embedded profile's event bus: the API process runs the worker's processor itself."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from pipelines.streaming.processor import SessionProcessor
from tailor.core.events import Event


class InProcessEventBus:
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
