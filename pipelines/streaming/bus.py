"""The embedded profile's event bus: the API process runs the worker's processor itself,
so the live session state lives here too, and is erased here (`erase`)."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from pipelines.streaming.processor import SessionProcessor
from tailor.core.events import Event
from tailor.core.live_sessions import SessionsErased


class InProcessEventBus:
    def __init__(self, processor: SessionProcessor) -> None:
        self._processor = processor
        self._lock = threading.Lock()

    def publish(self, events: Sequence[Event]) -> None:
        with self._lock:
            self._processor.process(events)
            if self._processor.pusher.offline_due():
                self._processor.pusher.flush_offline()

    def erase(self, user_id: int) -> SessionsErased:
        """Under the publish lock, so a batch being folded in cannot bring the state back;
        nothing waits in a queue here (a publish is processed before it returns)."""
        with self._lock:
            return SessionsErased(states=self._processor.store.erase(user_id), queued_events=0)

    def close(self) -> None:
        with self._lock:
            self._processor.pusher.flush_offline()
