"""The opt-out list on real databases: shared across processes, closed when unknown."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, delete

from serving.decision.ports import ConsentUnknown
from serving.persistence.opt_outs import OptOutList, OptOutsUnavailable
from tailor.core.database.engine import database_engine, open_database
from tailor.core.database.schema import opt_outs
from tests.support.services import free_port
from tests.support.waiting import wait_for


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = open_database(database_url)
    with engine.begin() as connection:
        connection.execute(delete(opt_outs))
    yield engine
    engine.dispose()


@pytest.fixture
def opt_out_list(engine: Engine) -> Iterator[OptOutList]:
    users = OptOutList(engine, refresh_seconds=0.05)
    yield users
    users.close()


def test_add_and_remove_apply_at_once(opt_out_list):
    assert not opt_out_list.contains(7)
    opt_out_list.add(7, reason="asked by email")
    assert opt_out_list.contains(7)
    opt_out_list.add(7, reason="asked again")
    opt_out_list.add(8)
    listed = opt_out_list.list()
    assert [(entry["user_id"], entry["reason"]) for entry in listed] == [
        (8, None),
        (7, "asked by email"),
    ]
    assert listed[0]["created_at"].endswith("+00:00")
    opt_out_list.remove(7)
    assert not opt_out_list.contains(7)
    assert opt_out_list.contains(8)
    assert [entry["user_id"] for entry in opt_out_list.list(limit=5)] == [8]


def test_another_process_sees_changes_at_its_next_refresh(opt_out_list, database_url):
    other_engine = open_database(database_url)
    other = OptOutList(other_engine, refresh_seconds=0.05)
    try:
        assert not other.contains(42)
        opt_out_list.add(42)
        wait_for(lambda: other.contains(42), "the other process to see the opt-out")
        opt_out_list.remove(42)
        wait_for(lambda: not other.contains(42), "the other process to see the opt-in")
    finally:
        other.close()
        other_engine.dispose()


def test_consent_is_unknown_while_the_list_was_never_read():
    engine = database_engine(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/x")
    users = OptOutList(engine, refresh_seconds=0.05)
    try:
        with pytest.raises(ConsentUnknown):
            users.contains(1)
        with pytest.raises(OptOutsUnavailable):
            users.add(1)
        with pytest.raises(ConsentUnknown):
            users.contains(1)
    finally:
        users.close()
        engine.dispose()
