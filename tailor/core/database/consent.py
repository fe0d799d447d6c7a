"""Who opted out, read from the decision database's opt-out table.

The API keeps the list in memory (`serving.persistence.opt_outs`) and training leaves
those users out of its rows; both read it with `opted_out_users`, so "opted out" means
one thing everywhere. A job reads it once with `read_opted_out`, which refuses to
answer rather than answer "nobody" when the database cannot be read: training on an
opted-out user's data is worse than not training.
"""

from __future__ import annotations

from sqlalchemy import Connection, make_url, select
from sqlalchemy.exc import SQLAlchemyError

from tailor.core.database.engine import DatabaseUnavailable, open_database
from tailor.core.database.migrations import SchemaOutOfDate
from tailor.core.database.schema import opt_outs


class OptOutsUnreadable(RuntimeError):
    """The opt-out list could not be read, so nobody may be assumed to consent."""


def opted_out_users(connection: Connection) -> set[int]:
    return set(connection.execute(select(opt_outs.c.user_id)).scalars())


def read_opted_out(database_url: str, auto_migrate: bool) -> set[int]:
    """The users on the opt-out list now; raises `OptOutsUnreadable` saying how to fix it."""
    safe_url = make_url(database_url).render_as_string(hide_password=True)
    try:
        engine = open_database(database_url, auto_migrate)
    except (DatabaseUnavailable, SchemaOutOfDate) as error:
        raise OptOutsUnreadable(f"cannot read who opted out: {error}") from error
    try:
        with engine.connect() as connection:
            return opted_out_users(connection)
    except SQLAlchemyError as error:
        raise OptOutsUnreadable(
            f"cannot read who opted out from {safe_url} ({error.__cause__ or error}); "
            "start the decision database or point TAILOR_DECISIONS__DATABASE_URL at it"
        ) from error
    finally:
        engine.dispose()
