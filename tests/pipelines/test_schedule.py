"""Scheduled materialization: schedules, the crash-proof lock, run records."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest
import redis

from pipelines.run_lock import FileRunLock, RedisRunLock
from pipelines.schedule import Schedule
from tailor.core.run_records import RunRecord, last_success, run_records
from tests.support.flow import TAILOR, run_tailor

NOON = datetime(2026, 11, 23, 12, 7, tzinfo=UTC)


@pytest.mark.parametrize(
    ("every", "cron", "expected"),
    [
        ("15m", None, NOON + timedelta(minutes=15)),
        ("2h", None, NOON + timedelta(hours=2)),
        ("30s", None, NOON + timedelta(seconds=30)),
        (None, "*/15 * * * *", NOON.replace(minute=15)),
        (None, "0 3 * * *", NOON.replace(day=24, hour=3, minute=0)),
    ],
)
def test_schedules_give_the_next_run(every, cron, expected):
    assert Schedule.parse(every, cron).next_after(NOON) == expected


@pytest.mark.parametrize(
    ("every", "cron", "message"),
    [
        ("15", None, "not a duration"),
        ("0m", None, "not a duration"),
        (None, "every day", "not a cron expression"),
        ("15m", "* * * * *", "give one of"),
        (None, None, "give one of"),
    ],
)
def test_bad_schedules_say_how_to_write_them(every, cron, message):
    with pytest.raises(ValueError, match=message):
        Schedule.parse(every, cron)


HOLD_LOCK = """
import sys, time
from pathlib import Path
from pipelines.run_lock import FileRunLock
with FileRunLock(Path(sys.argv[1])).hold() as acquired:
    print("held" if acquired else "busy", flush=True)
    time.sleep(60)
"""


def test_a_file_lock_keeps_runs_apart_and_dies_with_its_holder(tmp_path):
    path = tmp_path / "materialize.lock"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(path)], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout.readline().strip() == "held"
    with FileRunLock(path).hold() as acquired:
        assert acquired is False
    holder.send_signal(signal.SIGKILL)  # a crash: no cleanup runs
    holder.wait()
    with FileRunLock(path).hold() as acquired:
        assert acquired is True


def test_a_redis_lock_keeps_runs_apart_and_lapses_after_a_crash(private_redis):
    client = private_redis.client()
    crashed = client.lock("test:materialize:lock", timeout=1, blocking=False)
    assert crashed.acquire()  # and never released, as if the holder died
    with RedisRunLock(client, "test:materialize:lock", 1).hold() as acquired:
        assert acquired is False
    time.sleep(1.2)
    with RedisRunLock(client, "test:materialize:lock", 1).hold() as acquired:
        assert acquired is True


def test_a_redis_lock_held_longer_than_its_ttl_is_renewed_not_lost(private_redis):
    client = private_redis.client()
    with RedisRunLock(client, "test:materialize:long", 0.6).hold() as acquired:
        assert acquired is True
        for _ in range(4):  # 2 s in all: over three TTLs
            time.sleep(0.5)
            with RedisRunLock(client, "test:materialize:long", 0.6).hold() as other:
                assert other is False
    with RedisRunLock(client, "test:materialize:long", 0.6).hold() as acquired:
        assert acquired is True  # released at the end of the run


def test_two_schedulers_never_run_at_once_and_the_last_success_is_recorded(redis_flow):
    schedulers = [
        subprocess.Popen(
            [str(TAILOR), "materialize", "--every", "1s"],
            env=redis_flow.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(2)
    ]
    settings = redis_flow.settings()
    records = run_records(settings)
    before = len(records.recent())
    deadline = time.monotonic() + 60
    while len(records.recent()) < before + 4 and time.monotonic() < deadline:
        time.sleep(0.2)
    for scheduler in schedulers:
        scheduler.send_signal(signal.SIGTERM)
    outputs = [scheduler.communicate(timeout=30)[0] for scheduler in schedulers]
    runs: list[RunRecord] = records.recent()[: len(records.recent()) - before]
    assert len(runs) >= 4, outputs
    assert all(run.ok and run.mode == "incremental" for run in runs), runs
    intervals = sorted((run.started_at, run.finished_at) for run in runs)
    for (_, previous_end), (next_start, _) in pairwise(intervals):
        assert previous_end <= next_start, f"overlapping runs: {intervals}"
    assert last_success(records) == runs[0]
    status = run_tailor(redis_flow.env, "materialize", "--status")
    assert "incremental" in status.stdout


def test_a_new_online_store_under_an_old_registry_gets_the_full_history(redis_flow, private_redis):
    env = {**redis_flow.env, "TAILOR_SERVERS__REDIS_URL": private_redis.url[:-1] + "3"}
    result = run_tailor(env, "materialize")
    assert result.returncode == 0, result.stderr
    assert "materialized (full)" in result.stdout
    client = redis.Redis(port=private_redis.port, db=3)
    assert client.dbsize() > 0
