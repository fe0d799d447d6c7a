"""How far a client's timestamp may stray from the server's clock.

A time sent by a client decides things: an event's time moves the user's session
window, a decision's `context.timestamp` chooses which rules are in their window. A
time far ahead would hide every real event behind it or open a campaign early; one far
behind would replay a closed campaign or an event the stream's deduplication no longer
remembers. Within the bounds (settings) it is trusted, as clock skew and delivery
delays need.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from tailor.core.settings import TailorSettings


@dataclass(frozen=True)
class ClockBounds:
    ahead_seconds: int
    behind_seconds: int
    settings: str  # where the bounds are set, named in the error

    def problem(self, moment: datetime, now: datetime) -> str | None:
        """Why `moment` is refused, naming the setting and the fix; None if it is not."""
        offset = (moment - now).total_seconds()
        if offset > self.ahead_seconds:
            return (
                f"is {offset:.0f} s ahead of the server's clock, more than the "
                f"{self.ahead_seconds} s allowed ({self.settings}); check the sender's clock"
            )
        if -offset > self.behind_seconds:
            return (
                f"is {-offset:.0f} s behind the server's clock ({now:%Y-%m-%dT%H:%M:%SZ}), more "
                f"than the {self.behind_seconds} s allowed ({self.settings}); send current "
                "times, or load history with `tailor import`"
            )
        return None


def event_bounds(settings: TailorSettings) -> ClockBounds:
    """For the `ts` of posted events and outcomes."""
    stream = settings.stream
    return ClockBounds(
        stream.max_future_seconds,
        stream.max_past_seconds,
        "stream.max_future_seconds, stream.max_past_seconds",
    )


def context_bounds(settings: TailorSettings) -> ClockBounds:
    """For a decision's `context.timestamp`."""
    serving = settings.serving
    return ClockBounds(
        serving.context_max_ahead_seconds,
        serving.context_max_behind_seconds,
        "serving.context_max_ahead_seconds, serving.context_max_behind_seconds",
    )
