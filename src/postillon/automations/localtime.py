"""Local time for automations, pure: which instant a wall-clock time in a zone is, where a
contact's local day and week begin and end, and whether a moment lies in quiet hours.

Moments are timezone-aware UTC; wall-clock times are naive datetimes read in a zone.
Daylight saving time makes some wall-clock times happen twice (clocks go back: a fold)
and some never (clocks go forward: a gap). The rules here, used by collision control and
the date and schedule triggers alike:

- a wall-clock time that happens twice means its first instant (`first_moment`), unless
  the first is already past (`first_moment_after`);
- a wall-clock time that never happens means the instant the clocks jump over it: the
  first instant whose wall-clock time is later (02:30 on the night Berlin moves to
  summer time is 03:00 CEST).
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

ONE_DAY = timedelta(days=1)
_MIDNIGHT = time(0, 0)


@lru_cache(maxsize=1024)
def zone_named(name: str) -> ZoneInfo | None:
    """The zone of an IANA name, None for a name that is not one."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def zone_of(name: str | None, default: ZoneInfo) -> ZoneInfo:
    """A contact's zone, or `default` for none (or a name that is no zone)."""
    if not name:
        return default
    return zone_named(name) or default


def wall(moment: datetime, where: ZoneInfo) -> datetime:
    """What the clocks in `where` read at `moment` (naive)."""
    return moment.astimezone(where).replace(tzinfo=None)


def moments_of(wall_time: datetime, where: ZoneInfo) -> list[datetime]:
    """Every instant whose wall-clock time in `where` is `wall_time`, earliest first: one,
    two in a fold, none in a gap."""
    found: list[datetime] = []
    for fold in (0, 1):
        moment = wall_time.replace(tzinfo=where, fold=fold).astimezone(UTC)
        if wall(moment, where) == wall_time and moment not in found:
            found.append(moment)
    return sorted(found)


def first_moment(wall_time: datetime, where: ZoneInfo) -> datetime:
    """The first instant at which the clocks in `where` read `wall_time` (or, in a gap,
    the instant they jump over it)."""
    found = moments_of(wall_time, where)
    return found[0] if found else _gap_end(wall_time, where)


def first_moment_after(wall_time: datetime, where: ZoneInfo, after: datetime) -> datetime | None:
    """The first instant later than `after` at which the clocks read `wall_time` (or jump
    over it); None if every such instant is at or before `after`."""
    found = moments_of(wall_time, where) or [_gap_end(wall_time, where)]
    later = [moment for moment in found if moment > after]
    return later[0] if later else None


def _gap_end(wall_time: datetime, where: ZoneInfo) -> datetime:
    """The instant the clocks jump over `wall_time`, which they never read.

    Read with the offset before the jump, `wall_time` falls after it; read with the offset
    after, before it: the jump lies between, found by bisection on whole seconds (zone
    transitions fall on them)."""
    readings = sorted(wall_time.replace(tzinfo=where, fold=fold).astimezone(UTC) for fold in (0, 1))
    after_offset = readings[1].astimezone(where).utcoffset()
    # Invariant: second `low` is before the jump, second `high` at or after it.
    low = math.floor(readings[0].timestamp())
    high = math.ceil(readings[1].timestamp())
    while high - low > 1:
        middle = (low + high) // 2
        if datetime.fromtimestamp(middle, where).utcoffset() == after_offset:
            high = middle
        else:
            low = middle
    return datetime.fromtimestamp(high, UTC)


def day_start(day: date, where: ZoneInfo) -> datetime:
    """The instant the local day `day` begins in `where`."""
    return first_moment(datetime.combine(day, _MIDNIGHT), where)


def day_bounds(moment: datetime, where: ZoneInfo) -> tuple[datetime, datetime]:
    """The local day of `moment` in `where`: its first instant and the next day's first
    (23 or 25 hours apart when the clocks change that day)."""
    today = wall(moment, where).date()
    return day_start(today, where), day_start(today + ONE_DAY, where)


def week_bounds(moment: datetime, where: ZoneInfo) -> tuple[datetime, datetime]:
    """The local week of `moment` in `where`, Monday 00:00 to the next Monday 00:00."""
    today = wall(moment, where).date()
    monday = today - timedelta(days=today.weekday())
    return day_start(monday, where), day_start(monday + timedelta(days=7), where)


def in_window(moment: datetime, where: ZoneInfo, start: time, end: time) -> datetime | None:
    """Whether `moment` lies in the daily window from `start` to `end` local time (which
    wraps over midnight when `end` is not after `start`: 21:00 to 08:00): the instant the
    window it lies in ends, or None outside it."""
    local = wall(moment, where)
    now = local.time()
    if start < end:
        if not start <= now < end:
            return None
        end_day = local.date()
    elif now >= start:
        end_day = local.date() + ONE_DAY
    elif now < end:
        end_day = local.date()
    else:
        return None
    until = first_moment_after(datetime.combine(end_day, end), where, moment)
    # A window that ends in a fold (clocks going back over `end`) ends at the instant
    # after `moment`; there always is one, since `moment` reads earlier than `end`.
    assert until is not None
    return until


def describe_window(start: time, end: time) -> str:
    """The window as reasons show it: 21:00, an en dash, 08:00."""
    return f"{start.strftime('%H:%M')}\u2013{end.strftime('%H:%M')}"
