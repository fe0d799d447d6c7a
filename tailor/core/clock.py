"""Where "now" comes from, so that nothing depends on the calendar day it runs on.

Production reads the system clock. A replay, a demo on fixed data or a test pins the
clock to a chosen instant at start-up (`TAILOR_CLOCK_START`); it then advances at the
normal rate, measured on the monotonic clock, so timeouts and windows still behave.
A simulation sets a `ManualClock` to each visit's instant.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, timezone-aware UTC."""


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass(frozen=True)
class PinnedClock:
    """Reads `start` at creation, then advances with the monotonic clock."""

    start: datetime
    _origin: float = field(default_factory=time.monotonic, repr=False)

    def __post_init__(self) -> None:
        if self.start.tzinfo is None:
            raise ValueError("PinnedClock.start must be timezone-aware")

    def now(self) -> datetime:
        return self.start.astimezone(UTC) + timedelta(seconds=time.monotonic() - self._origin)


class ManualClock:
    """Moves only when told: a simulation steps it from visit to visit."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("ManualClock start must be timezone-aware")
        self._now = start.astimezone(UTC)

    def now(self) -> datetime:
        return self._now

    def set(self, moment: datetime) -> None:
        self._now = moment.astimezone(UTC)
