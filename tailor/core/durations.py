"""Durations written the way operators type them: `90s`, `15m`, `24h`, `7d`.

The CLI's `--every` and the rules' `once_per` share this one grammar, so a value that
works in one place works in the other.
"""

from __future__ import annotations

import re
from datetime import timedelta

_DURATION = re.compile(r"^(\d+)(s|m|h|d)$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_duration(text: str) -> timedelta:
    """A positive duration; ValueError with an example otherwise."""
    match = _DURATION.match(text.strip())
    if not match or int(match.group(1)) == 0:
        raise ValueError(
            f"{text!r} is not a duration: a positive number and s, m, h or d, e.g. 15m"
        )
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
