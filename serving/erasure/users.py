"""Erase a user everywhere Tailor keeps them, and say per store what went.

In order: the opt-out (first, so that nothing this process accepts afterwards
recreates the data), the live session with the user's events still queued in the
stream, the user's rows in the online store, then the decision database: the trigger
spool is replayed and every log's buffer flushed (this process's records of the user
reach the database) before the user's rows go. A store that fails is reported as
unavailable with nothing claimed erased there, and the others are still erased; every
step is idempotent, so repeating the call finishes the job.

Beyond reach, and said so in the README: records made after the call began (a decision
served meanwhile), another replica's unflushed buffer or spill files (until its next
flush), a shadow evaluation still running, and the offline files (raw events, marts,
the session log) that training already leaves out while the user stays opted out.
"""

from __future__ import annotations

from dataclasses import dataclass

from feast import FeatureStore
from sqlalchemy.exc import SQLAlchemyError

from serving.decision.ports import ConsentUnknown
from serving.erasure.online_features import OnlineStoreUnavailable, erase_online_features
from serving.persistence.opt_outs import OptOutsUnavailable
from serving.persistence.user_rows import erase_user_rows
from serving.wiring import Services
from tailor.core.live_sessions import SessionEraser, SessionStoreUnavailable

ERASURE_REASON = "erasure requested"


class DecisionDatabaseUnavailable(RuntimeError):
    """The decision database failed, or this process's logs could not reach it in time."""


@dataclass(frozen=True)
class Erasure:
    opted_out: bool | None  # on the opt-out list after the call; None: not known
    erased: dict[str, int]  # records removed, per store (or table)
    unavailable: dict[str, str]  # store -> what failed; nothing is claimed erased there


class UserEraser:
    def __init__(self, services: Services, store: FeatureStore, sessions: SessionEraser) -> None:
        self._services = services
        self._store = store
        self._sessions = sessions

    def erase(self, user_id: int, *, keep_consent: bool = False) -> Erasure:
        erased: dict[str, int] = {}
        unavailable: dict[str, str] = {}
        opted_out = self._consent(user_id, keep_consent, unavailable)
        try:
            sessions = self._sessions.erase(user_id)
            erased["session_states"] = sessions.states
            erased["queued_events"] = sessions.queued_events
        except SessionStoreUnavailable as error:
            unavailable["session_state"] = str(error)
        try:
            erased["online_features"] = erase_online_features(self._store, user_id)
        except OnlineStoreUnavailable as error:
            unavailable["online_store"] = str(error)
        try:
            erased.update(self._decision_rows(user_id))
        except DecisionDatabaseUnavailable as error:
            unavailable["decision_database"] = str(error)
        return Erasure(opted_out, erased, unavailable)

    def _consent(
        self, user_id: int, keep_consent: bool, unavailable: dict[str, str]
    ) -> bool | None:
        opt_outs = self._services.opt_outs
        if keep_consent:
            try:
                return opt_outs.contains(user_id)
            except ConsentUnknown:
                return None
        try:
            opt_outs.add(user_id, ERASURE_REASON)
        except OptOutsUnavailable as error:
            unavailable["decision_database"] = str(error)
            return None
        return True

    def _decision_rows(self, user_id: int) -> dict[str, int]:
        services = self._services
        try:
            with services.database.connect():  # down: say so now, not after the flushes
                pass
            services.trigger_spool.replay()
            writers = (
                services.decision_log,
                services.shadow_log,
                services.assignments,
                services.outcome_log,
            )
            if not all(writer.flush() for writer in writers):
                raise DecisionDatabaseUnavailable(
                    "this process's logs could not write their buffered records in time"
                )
            rows = erase_user_rows(services.database, user_id)
        except (SQLAlchemyError, OSError) as error:
            raise DecisionDatabaseUnavailable(f"decision database: {error}") from error
        services.assignments.forget_user(user_id)
        return rows
