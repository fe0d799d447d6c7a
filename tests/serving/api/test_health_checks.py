"""/health's checks answer within the budget, and a hung dependency holds one thread."""

from __future__ import annotations

import threading

from serving.api.health_checks import BoundedCheck, CheckResult, results


def test_a_hung_check_is_reported_and_not_started_again():
    release = threading.Event()
    runs: list[int] = []

    def hung() -> str:
        runs.append(1)
        release.wait(30)
        return "late"

    hanging = BoundedCheck("store", hung)
    quick = BoundedCheck("records", lambda: "now")
    running = hanging.start()
    try:
        first = results([hanging, quick], budget_seconds=0.5)
        second = results([hanging, quick], budget_seconds=0.5)
    finally:
        release.set()
    assert first["store"].value is None and "no answer within 0.5 s" in first["store"].error
    assert first["records"].value == "now" and first["records"].error is None
    assert second["store"].error == first["store"].error
    assert len(runs) == 1  # the second poll waited on the same run, it did not pile up
    assert running.result(timeout=30) == "late"  # the hung run ends once its dependency answers
    third = results([hanging], budget_seconds=5)
    hanging.close()
    quick.close()
    assert third["store"] == CheckResult("late", None)
    assert len(runs) == 2  # a finished run is not reused: each poll after it checks anew


def test_a_failing_check_reports_its_error():
    def broken() -> None:
        raise ConnectionError("Redis refused the connection")

    check = BoundedCheck("records", broken)
    try:
        answered = results([check], budget_seconds=5)
    finally:
        check.close()
    assert answered["records"] == CheckResult(None, "Redis refused the connection")
