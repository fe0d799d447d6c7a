"""Who opted out, as a job reads it: the list on both databases, and a refusal that
says what to do when it cannot be read."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, insert

from tailor.core.database.consent import OptOutsUnreadable, read_opted_out
from tailor.core.database.engine import open_database
from tailor.core.database.schema import opt_outs, utc_now
from tests.support.services import free_port


def test_the_list_is_read_as_it_stands(database_url):
    engine = open_database(database_url)
    try:
        with engine.begin() as connection:
            connection.execute(delete(opt_outs))
            connection.execute(
                insert(opt_outs),
                [{"user_id": user, "created_at": utc_now()} for user in (3, 2**62)],
            )
        assert read_opted_out(database_url, auto_migrate=True) == {3, 2**62}
        with engine.begin() as connection:
            connection.execute(delete(opt_outs))
        assert read_opted_out(database_url, auto_migrate=True) == set()
    finally:
        engine.dispose()


def test_an_unreachable_database_is_a_refusal_naming_the_setting():
    url = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/tailor"
    with pytest.raises(OptOutsUnreadable, match="TAILOR_DECISIONS__DATABASE_URL"):
        read_opted_out(url, auto_migrate=True)
