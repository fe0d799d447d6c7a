"""Settings: paths under one home, and a clock that can be pinned to any instant."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tailor.core.clock import PinnedClock, SystemClock
from tailor.core.settings import TailorSettings


def test_data_and_models_live_under_home_unless_set(tmp_path: Path):
    settings = TailorSettings(home=tmp_path)
    assert (settings.data_dir, settings.models_dir) == (tmp_path / "data", tmp_path / "models")
    elsewhere = TailorSettings(home=tmp_path, models_dir=tmp_path / "m")
    assert (elsewhere.data_dir, elsewhere.models_dir) == (tmp_path / "data", tmp_path / "m")


def test_home_comes_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("TAILOR_HOME", str(tmp_path))
    assert TailorSettings().data_dir == tmp_path / "data"


def test_a_pinned_clock_starts_at_its_instant_and_then_advances():
    start = datetime(2026, 11, 28, 12, tzinfo=UTC)
    settings = TailorSettings(clock_start=start)
    clock = settings.clock
    assert isinstance(clock, PinnedClock) and settings.clock is clock  # one per settings
    first = clock.now()
    time.sleep(0.01)
    assert start <= first < clock.now()
    assert (clock.now() - start).total_seconds() < 60


def test_without_a_start_the_clock_is_the_system_clock():
    assert isinstance(TailorSettings().clock, SystemClock)


def test_a_clock_start_needs_a_time_zone():
    with pytest.raises(ValueError, match="timezone"):
        TailorSettings(clock_start="2026-11-28T12:00:00")


def test_device_shares_must_cover_every_device_and_sum_to_one():
    with pytest.raises(ValueError, match="give a share >= 0 for each of"):
        TailorSettings(generator={"device_shares": {"mobile": 1.0}})
    with pytest.raises(ValueError, match=r"must sum to 1, not 1\.2"):
        TailorSettings(generator={"device_shares": {"mobile": 1, "desktop": 0.1, "tablet": 0.1}})


def test_device_shares_come_from_the_environment(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv(
        "TAILOR_GENERATOR__DEVICE_SHARES", '{"tablet": 0.1, "mobile": 0.1, "desktop": 0.8}'
    )
    shares = TailorSettings().generator.device_shares
    assert list(shares.items()) == [("mobile", 0.1), ("desktop", 0.8), ("tablet", 0.1)]


def test_psi_thresholds_must_rise_from_warn_to_alert():
    with pytest.raises(ValueError, match=r"psi_warn \(0.3\) must be below psi_alert \(0.25\)"):
        TailorSettings(monitoring={"psi_warn": 0.3})
