"""Local time, pure: wall-clock times as instants, local days and weeks, quiet hours,
across daylight saving changes in Berlin and New York."""

from __future__ import annotations

from datetime import datetime, time
from zoneinfo import ZoneInfo

import pytest

from postillon.automations import localtime
from tests.automations.time_support import utc

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def test_a_wall_clock_time_in_a_gap_is_the_instant_the_clocks_jump() -> None:
    # Berlin, 29 March 2026: 02:00 CET becomes 03:00 CEST (01:00 UTC).
    assert localtime.moments_of(datetime(2026, 3, 29, 2, 30), BERLIN) == []
    assert localtime.first_moment(datetime(2026, 3, 29, 2, 30), BERLIN) == utc(2026, 3, 29, 1)
    assert localtime.first_moment(datetime(2026, 3, 29, 3, 0), BERLIN) == utc(2026, 3, 29, 1)
    assert localtime.first_moment(datetime(2026, 3, 29, 1, 59), BERLIN) == utc(2026, 3, 29, 0, 59)
    # New York, 8 March 2026: 02:00 EST becomes 03:00 EDT (07:00 UTC).
    assert localtime.first_moment(datetime(2026, 3, 8, 2, 15), NEW_YORK) == utc(2026, 3, 8, 7)


def test_a_wall_clock_time_in_a_fold_is_first_its_first_instant() -> None:
    # Berlin, 25 October 2026: 03:00 CEST becomes 02:00 CET; 02:30 happens twice.
    twice = [utc(2026, 10, 25, 0, 30), utc(2026, 10, 25, 1, 30)]
    assert localtime.moments_of(datetime(2026, 10, 25, 2, 30), BERLIN) == twice
    assert localtime.first_moment(datetime(2026, 10, 25, 2, 30), BERLIN) == twice[0]
    second = localtime.first_moment_after(datetime(2026, 10, 25, 2, 30), BERLIN, twice[0])
    assert second == twice[1]
    assert localtime.first_moment_after(datetime(2026, 10, 25, 2, 30), BERLIN, twice[1]) is None
    # New York, 1 November 2026: 01:30 happens at 05:30 and 06:30 UTC.
    assert localtime.moments_of(datetime(2026, 11, 1, 1, 30), NEW_YORK) == [
        utc(2026, 11, 1, 5, 30),
        utc(2026, 11, 1, 6, 30),
    ]


@pytest.mark.parametrize(
    ("zone", "moment", "start", "end", "hours"),
    [
        # An ordinary Berlin winter day.
        (BERLIN, utc(2026, 1, 14, 12), utc(2026, 1, 13, 23), utc(2026, 1, 14, 23), 24),
        # The day Berlin springs forward has 23 hours, the day it falls back 25.
        (BERLIN, utc(2026, 3, 29, 12), utc(2026, 3, 28, 23), utc(2026, 3, 29, 22), 23),
        (BERLIN, utc(2026, 10, 25, 12), utc(2026, 10, 24, 22), utc(2026, 10, 25, 23), 25),
        # Just before local midnight in New York it is already the next day in UTC.
        (NEW_YORK, utc(2026, 1, 15, 4, 59), utc(2026, 1, 14, 5), utc(2026, 1, 15, 5), 24),
        (NEW_YORK, utc(2026, 3, 8, 12), utc(2026, 3, 8, 5), utc(2026, 3, 9, 4), 23),
        (NEW_YORK, utc(2026, 11, 1, 12), utc(2026, 11, 1, 4), utc(2026, 11, 2, 5), 25),
    ],
)
def test_local_days_begin_at_local_midnight(
    zone: ZoneInfo, moment: datetime, start: datetime, end: datetime, hours: int
) -> None:
    assert localtime.day_bounds(moment, zone) == (start, end)
    assert (end - start).total_seconds() == hours * 3600


def test_a_day_that_begins_in_a_gap_begins_when_the_clocks_jump() -> None:
    # Havana springs forward at midnight: 8 March 2026 begins at 01:00 CDT.
    havana = ZoneInfo("America/Havana")
    assert localtime.day_bounds(utc(2026, 3, 8, 12), havana)[0] == utc(2026, 3, 8, 5)


def test_local_weeks_run_from_monday_to_monday() -> None:
    # Sunday 29 March 2026 23:30 in Berlin is still the week of Monday 23 March …
    sunday_night = utc(2026, 3, 29, 21, 30)
    assert localtime.week_bounds(sunday_night, BERLIN) == (
        utc(2026, 3, 22, 23),
        utc(2026, 3, 29, 22),
    )
    # … half an hour later it is Monday and a new week (in UTC it is still Sunday).
    monday = utc(2026, 3, 29, 22, 0)
    assert localtime.week_bounds(monday, BERLIN)[0] == monday
    # In New York the same instant is Sunday afternoon.
    assert localtime.week_bounds(monday, NEW_YORK) == (
        utc(2026, 3, 23, 4),
        utc(2026, 3, 30, 4),
    )
    # A week over the autumn change has 169 hours.
    start, end = localtime.week_bounds(utc(2026, 10, 21, 12), BERLIN)
    assert (end - start).total_seconds() == 169 * 3600


NIGHT = (time(21, 0), time(8, 0))


@pytest.mark.parametrize(
    ("moment", "until"),
    [
        (utc(2026, 1, 14, 19, 59), None),  # 20:59 in Berlin
        (utc(2026, 1, 14, 20, 0), utc(2026, 1, 15, 7)),  # 21:00: until 08:00 tomorrow
        (utc(2026, 1, 14, 23, 30), utc(2026, 1, 15, 7)),  # after midnight UTC too
        (utc(2026, 1, 15, 6, 59), utc(2026, 1, 15, 7)),  # 07:59
        (utc(2026, 1, 15, 7, 0), None),  # 08:00: open
        # The night Berlin springs forward is an hour shorter: 08:00 CEST is 06:00 UTC.
        (utc(2026, 3, 28, 22), utc(2026, 3, 29, 6)),
        # The night it falls back is an hour longer.
        (utc(2026, 10, 24, 22), utc(2026, 10, 25, 7)),
    ],
)
def test_quiet_hours_over_midnight_in_berlin(moment: datetime, until: datetime | None) -> None:
    assert localtime.in_window(moment, BERLIN, *NIGHT) == until


def test_quiet_hours_within_a_day_and_in_new_york() -> None:
    lunch = (time(12, 0), time(14, 0))
    assert localtime.in_window(utc(2026, 7, 1, 16, 30), NEW_YORK, *lunch) == utc(2026, 7, 1, 18)
    assert localtime.in_window(utc(2026, 7, 1, 18, 0), NEW_YORK, *lunch) is None
    assert localtime.in_window(utc(2026, 7, 1, 15, 59), NEW_YORK, *lunch) is None
    # 22:00 EST on the night before the spring change: until 08:00 EDT (12:00 UTC).
    assert localtime.in_window(utc(2026, 3, 8, 3), NEW_YORK, *NIGHT) == utc(2026, 3, 8, 12)


def test_quiet_hours_that_end_in_a_fold_end_after_the_moment() -> None:
    # Quiet 01:00-02:30 in Berlin on 25 October: 02:30 comes twice. On the second pass
    # through 02:15 (CET) the window ends at the second 02:30, not the past first one.
    early = (time(1, 0), time(2, 30))
    first_pass = utc(2026, 10, 25, 0, 15)  # 02:15 CEST
    second_pass = utc(2026, 10, 25, 1, 15)  # 02:15 CET
    assert localtime.in_window(first_pass, BERLIN, *early) == utc(2026, 10, 25, 0, 30)
    assert localtime.in_window(second_pass, BERLIN, *early) == utc(2026, 10, 25, 1, 30)
    # Quiet hours ending in the spring gap end when the clocks jump.
    assert localtime.in_window(utc(2026, 3, 29, 0, 30), BERLIN, *early) == utc(2026, 3, 29, 1)


def test_zones_by_name() -> None:
    assert localtime.zone_of(None, BERLIN) is BERLIN
    assert localtime.zone_of("Not/AZone", BERLIN) is BERLIN
    assert localtime.zone_of("America/New_York", BERLIN) == NEW_YORK
    assert localtime.describe_window(*NIGHT) == "21:00\u201308:00"
