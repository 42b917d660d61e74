"""Local times of waits: pure computations, across time zones and clock changes."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

from postillon.automations.journeys.times import (
    date_moment,
    date_value,
    next_time_of_day,
    zone_for,
)

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
WEEKDAYS = (0, 1, 2, 3, 4)


def test_the_next_local_time_of_day_is_today_if_it_has_not_passed() -> None:
    now = datetime(2026, 1, 7, 6, 0, tzinfo=UTC)  # Wednesday, 07:00 in Berlin
    assert next_time_of_day(now, time(9), tuple(range(7)), BERLIN) == datetime(
        2026, 1, 7, 8, 0, tzinfo=UTC
    )
    # 09:00 exactly is now: no day's wait.
    at_nine = datetime(2026, 1, 7, 8, 0, tzinfo=UTC)
    assert next_time_of_day(at_nine, time(9), tuple(range(7)), BERLIN) == at_nine


def test_a_passed_time_waits_for_tomorrow_and_weekdays_skip_the_weekend() -> None:
    friday_evening = datetime(2026, 1, 9, 17, 0, tzinfo=UTC)  # Friday 18:00 Berlin
    assert next_time_of_day(friday_evening, time(9), tuple(range(7)), BERLIN) == datetime(
        2026, 1, 10, 8, 0, tzinfo=UTC
    )
    assert next_time_of_day(friday_evening, time(9), WEEKDAYS, BERLIN) == datetime(
        2026, 1, 12, 8, 0, tzinfo=UTC
    )
    # Sunday only.
    assert next_time_of_day(friday_evening, time(9), (6,), BERLIN) == datetime(
        2026, 1, 11, 8, 0, tzinfo=UTC
    )


def test_the_local_day_is_the_contacts_not_utcs() -> None:
    # 03:00 UTC on Tuesday is still Monday 22:00 in New York.
    now = datetime(2026, 1, 6, 3, 0, tzinfo=UTC)
    assert next_time_of_day(now, time(23), tuple(range(7)), NEW_YORK) == datetime(
        2026, 1, 6, 4, 0, tzinfo=UTC
    )
    assert next_time_of_day(now, time(23), (0,), NEW_YORK) == datetime(2026, 1, 6, 4, 0, tzinfo=UTC)


def test_clock_changes_keep_the_wall_time() -> None:
    # Berlin goes from +01:00 to +02:00 on 29 March 2026: 09:00 is 08:00 UTC before
    # and 07:00 UTC after.
    saturday = datetime(2026, 3, 28, 12, 0, tzinfo=UTC)
    assert next_time_of_day(saturday, time(9), tuple(range(7)), BERLIN) == datetime(
        2026, 3, 29, 7, 0, tzinfo=UTC
    )
    # 02:30 does not exist that night: it is taken just after the gap (03:30 local).
    night = datetime(2026, 3, 28, 23, 0, tzinfo=UTC)
    assert next_time_of_day(night, time(2, 30), tuple(range(7)), BERLIN) == datetime(
        2026, 3, 29, 1, 30, tzinfo=UTC
    )
    # New York falls back on 1 November 2026: 01:30 happens twice; the first one counts.
    evening = datetime(2026, 11, 1, 0, 0, tzinfo=UTC)
    assert next_time_of_day(evening, time(1, 30), tuple(range(7)), NEW_YORK) == datetime(
        2026, 11, 1, 5, 30, tzinfo=UTC
    )


def test_dates_from_attributes() -> None:
    assert date_value("2026-03-14") == date(2026, 3, 14)
    assert date_value("2026-03-14T22:00:00+00:00") == date(2026, 3, 14)
    assert date_value("14.03.2026") is None
    assert date_value(None) is None
    assert date_value(20260314) is None
    assert date_moment("2026-03-14", -3, time(10), BERLIN) == datetime(
        2026, 3, 11, 9, 0, tzinfo=UTC
    )
    assert date_moment("no date", 0, time(10), BERLIN) is None


def test_zones_fall_back_to_the_journeys_then_utc() -> None:
    assert zone_for("America/New_York", "Europe/Berlin") == NEW_YORK
    assert zone_for(None, "Europe/Berlin") == BERLIN
    assert zone_for("Mars/Olympus", "Europe/Berlin") == BERLIN
    assert zone_for(None, "Nowhere/Else").key == "UTC"
