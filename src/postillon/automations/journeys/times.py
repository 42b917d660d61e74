"""Local times for waits, pure: "until 09:00 on a weekday" and "3 days before the
contract ends, at 10:00", in the contact's time zone (the journey's when they have none).

A local time that does not exist (the hour skipped when clocks go forward) is taken as
the same wall time on the old offset, so it falls just after the gap (02:30 becomes
03:30); a local time that happens twice (the hour repeated when clocks go back) is the
first of the two.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


@lru_cache(maxsize=1024)
def _zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def zone_for(contact_zone: str | None, journey_zone: str) -> ZoneInfo:
    """The contact's zone if they have a valid one, else the journey's, else UTC."""
    for name in (contact_zone, journey_zone):
        if name:
            found = _zone(name)
            if found is not None:
                return found
    return ZoneInfo("UTC")


def local_moment(day: date, at: time, zone: ZoneInfo) -> datetime:
    """The UTC instant of wall time `at` on `day` in `zone`."""
    return datetime.combine(day, at, tzinfo=zone).astimezone(UTC)


def next_time_of_day(
    now: datetime, at: time, weekdays: tuple[int, ...], zone: ZoneInfo
) -> datetime:
    """The first moment at or after `now` that is `at` local time on one of `weekdays`
    (0 = Monday)."""
    allowed = set(weekdays) or set(range(7))
    today = now.astimezone(zone).date()
    for offset in range(8):
        day = today + timedelta(days=offset)
        if day.weekday() not in allowed:
            continue
        moment = local_moment(day, at, zone)
        if moment >= now:
            return moment
    # Unreachable with at least one weekday allowed; a week on is the safe answer.
    return local_moment(today + timedelta(days=7), at, zone)


def date_value(value: Any) -> date | None:
    """A date attribute's day: `2026-03-14`, or the date of an ISO timestamp."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if not isinstance(value, str) or len(value) < 10:
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


def date_moment(value: Any, offset_days: int, at: time, zone: ZoneInfo) -> datetime | None:
    """`at` local time on the date in `value` shifted by `offset_days`; None without a
    date."""
    day = date_value(value)
    if day is None:
        return None
    try:
        return local_moment(day + timedelta(days=offset_days), at, zone)
    except OverflowError:
        return None
