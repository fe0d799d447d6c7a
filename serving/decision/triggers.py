"""Trigger rules that fired become durable records, one per user, rule and window.

Recorded before the decision returns (persistence's outbox insert is the durable step;
the webhook call happens later, in its dispatcher), and only when a trigger fires, so
the cost falls on few decisions. With the database down, the recorder keeps the trigger
on a local spool and it reaches the outbox later (`deferred`).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from serving.decision.ports import Trigger, TriggerRecorder
from serving.decision.rules.config import TriggerAction
from serving.decision.rules.evaluation import CompiledRule
from serving.decision.schemas import PersonalizeRequest, TriggerBody

log = logging.getLogger(__name__)


def window_start(moment: datetime, rule: TriggerAction) -> datetime:
    """Windows are aligned to the epoch, so every replica computes the same one."""
    seconds = rule.once_per.total_seconds()
    return datetime.fromtimestamp(moment.timestamp() // seconds * seconds, UTC)


def record_triggers(
    recorder: TriggerRecorder | None,
    request: PersonalizeRequest,
    rules: list[CompiledRule],
    moment: datetime,
    decision_id: str,
) -> list[TriggerBody]:
    bodies = []
    for rule in rules:
        action = rule.config.action
        assert isinstance(action, TriggerAction)
        trigger = Trigger(
            user_id=request.user_id,
            placement=request.placement,
            rule_id=rule.id,
            notification=action.notification,
            window_start=window_start(moment, action),
            decision_id=decision_id,
            payload=action.payload,
            webhook_url=str(action.webhook_url) if action.webhook_url else None,
        )
        outbox_id, status = None, "not_recorded"
        if recorder is not None:
            try:
                enqueued = recorder.record(trigger)
            except Exception:  # the spool's disk, or a bug: the decision still answers
                log.exception("trigger %s for user %s not recorded", rule.id, request.user_id)
            else:
                if enqueued is None:
                    status = "deferred"
                else:
                    outbox_id = enqueued.outbox_id
                    status = "queued" if enqueued.created else "duplicate"
        bodies.append(
            TriggerBody(
                rule_id=rule.id,
                notification=action.notification,
                outbox_id=outbox_id,
                status=status,
            )
        )
    return bodies
