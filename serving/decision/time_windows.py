"""Hour ranges shared by a variant's context fit and a rule's active window.

One definition, so `[22, 6]` means the same night in both places: start > end wraps
past midnight. Hours are UTC, like every timestamp Tailor stores.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator


def _valid_hours(hours: tuple[int, int]) -> tuple[int, int]:
    if not all(0 <= hour <= 24 for hour in hours):
        raise ValueError("hours must be two numbers between 0 and 24, e.g. [18, 23]")
    if hours[0] == hours[1]:
        raise ValueError("an empty range of hours never matches; for all day leave hours out")
    return hours


HourRange = Annotated[tuple[int, int], AfterValidator(_valid_hours)]


def hour_in_range(hours: tuple[int, int], hour: int) -> bool:
    """[start, end) in UTC hours; start > end wraps past midnight."""
    start, end = hours
    return start <= hour < end if start <= end else hour >= start or hour < end
