"""What the decision logic needs from storage, as interfaces it owns.

The engine decides; where decisions, triggers and opt-outs are kept is persistence's
business (`serving.persistence` implements these over SQL and local spool files). So
the decision logic holds no SQL, and tests or a simulator can plug in their own.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from tailor.core.decision_record import DecisionRecord


class ConsentUnknown(RuntimeError):
    """The opt-out list has never been read (its database unreachable since start)."""


class ConsentList(Protocol):
    def contains(self, user_id: int) -> bool:
        """Whether the user opted out; raises ConsentUnknown when that cannot be known."""


class DecisionRecorder(Protocol):
    def record(self, record: DecisionRecord) -> None:
        """Keep the decision; must not block the request that made it."""


@dataclass(frozen=True)
class Trigger:
    """A notification a rule fired, once per user, placement, rule and window."""

    user_id: int
    placement: str
    rule_id: str
    notification: str
    window_start: datetime  # start of the dedup window the caller computed; aware
    decision_id: str
    payload: dict[str, Any]  # JSON-ready
    webhook_url: str | None

    def __post_init__(self) -> None:
        if self.window_start.tzinfo is None:
            raise ValueError("Trigger.window_start must be timezone-aware")


@dataclass(frozen=True)
class Enqueued:
    outbox_id: str
    created: bool  # False: this user/placement/rule/window already had one (its id)


class TriggerRecorder(Protocol):
    def record(self, trigger: Trigger) -> Enqueued | None:
        """Record durably: the outbox row, or None when it was deferred to a local spool.
        Raises only when neither could take it."""
