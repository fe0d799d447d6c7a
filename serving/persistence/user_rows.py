"""A user's rows in the decision database, deleted together (their right to erasure).

Outcomes and shadow decisions name a decision, not a user, so they go by the user's
decision ids, before the decisions themselves; everything else carries the user id.
One transaction: a failure leaves every row in place, and a repeat finishes the job.
"""

from __future__ import annotations

from sqlalchemy import Engine, delete, select

from tailor.core.database.schema import (
    assignments,
    decisions,
    outcomes,
    shadow_decisions,
    trigger_outbox,
)


def erase_user_rows(engine: Engine, user_id: int) -> dict[str, int]:
    """Rows deleted per table; raises SQLAlchemyError when the database fails."""
    theirs = select(decisions.c.decision_id).where(decisions.c.user_id == user_id)
    statements = {
        "outcomes": delete(outcomes).where(outcomes.c.decision_id.in_(theirs)),
        "shadow_decisions": delete(shadow_decisions).where(
            shadow_decisions.c.decision_id.in_(theirs)
        ),
        "decisions": delete(decisions).where(decisions.c.user_id == user_id),
        "assignments": delete(assignments).where(assignments.c.user_id == user_id),
        "trigger_outbox": delete(trigger_outbox).where(trigger_outbox.c.user_id == user_id),
    }
    with engine.begin() as connection:
        return {
            table: connection.execute(statement).rowcount for table, statement in statements.items()
        }
