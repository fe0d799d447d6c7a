"""The one code path every event takes, in a worker or in the API process."""

from __future__ import annotations

from collections.abc import Sequence

from pipelines.streaming.feature_push import SessionFeaturePusher
from pipelines.streaming.session_state import session_features
from pipelines.streaming.state_store import SessionStore
from tailor.core.events import Event


class SessionProcessor:
    def __init__(self, store: SessionStore, pusher: SessionFeaturePusher) -> None:
        self.store = store
        self.pusher = pusher

    def process(self, events: Sequence[Event]) -> int:
        """Fold events into session state and push the touched users' snapshots online.

        Returns the number of users pushed. Raises if the push fails: the caller must
        then leave the events unacknowledged.
        """
        states = self.store.apply(events)
        rows = [session_features(user_id, state) for user_id, state in states.items()]
        self.pusher.push_online(rows)
        return len(rows)
