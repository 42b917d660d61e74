"""When schedules occur and on which day a date attribute lets a contact in, pure."""

from __future__ import annotations

from datetime import date, datetime, time

import pytest

from postillon.automations import model as am
from postillon.automations import occurrences

NINE = time(9, 0)


def schedule(frequency: str, **fields: object) -> am.ScheduleTrigger:
    return am.ScheduleTrigger(am.Frequency(frequency), NINE, **fields)  # type: ignore[arg-type]


def all_in(trigger: am.ScheduleTrigger, first: date, last: date) -> list[date]:
    return [moment.date() for moment in occurrences.occurrences(trigger, first, last)]


def test_daily_and_weekly() -> None:
    daily = schedule("daily")
    assert all_in(daily, date(2026, 2, 27), date(2026, 3, 2)) == [
        date(2026, 2, 27), date(2026, 2, 28), date(2026, 3, 1), date(2026, 3, 2),
    ]  # fmt: skip
    workdays = schedule("daily", weekdays=(0, 1, 2, 3, 4))
    assert all_in(workdays, date(2026, 3, 6), date(2026, 3, 9)) == [
        date(2026, 3, 6), date(2026, 3, 9),
    ]  # fmt: skip
    tuesday_thursday = schedule("weekly", weekdays=(1, 3))
    assert all_in(tuesday_thursday, date(2026, 3, 1), date(2026, 3, 14)) == [
        date(2026, 3, 3), date(2026, 3, 5), date(2026, 3, 10), date(2026, 3, 12),
    ]  # fmt: skip


def test_a_monthly_day_the_month_lacks_is_its_last_day() -> None:
    thirty_first = schedule("monthly", day_of_month=31)
    assert all_in(thirty_first, date(2026, 1, 1), date(2026, 6, 30)) == [
        date(2026, 1, 31), date(2026, 2, 28), date(2026, 3, 31),
        date(2026, 4, 30), date(2026, 5, 31), date(2026, 6, 30),
    ]  # fmt: skip
    thirtieth = schedule("monthly", day_of_month=30)
    assert all_in(thirtieth, date(2028, 2, 1), date(2028, 3, 31)) == [
        date(2028, 2, 29), date(2028, 3, 30),
    ]  # fmt: skip


def test_the_nth_weekday_of_the_month() -> None:
    first_monday = schedule("monthly", weekdays=(0,), nth=1)
    assert all_in(first_monday, date(2026, 1, 1), date(2026, 4, 30)) == [
        date(2026, 1, 5), date(2026, 2, 2), date(2026, 3, 2), date(2026, 4, 6),
    ]  # fmt: skip
    last_friday = schedule("monthly", weekdays=(4,), nth=-1)
    assert all_in(last_friday, date(2026, 1, 1), date(2026, 3, 31)) == [
        date(2026, 1, 30), date(2026, 2, 27), date(2026, 3, 27),
    ]  # fmt: skip
    # A month without a fifth Monday has no occurrence of it.
    fifth_monday = schedule("monthly", weekdays=(0,), nth=5)
    assert all_in(fifth_monday, date(2026, 1, 1), date(2026, 6, 30)) == [
        date(2026, 3, 30), date(2026, 6, 29),
    ]  # fmt: skip


def test_the_next_occurrence_is_strictly_later() -> None:
    first_monday = schedule("monthly", weekdays=(0,), nth=1)
    at_nine = datetime(2026, 2, 2, 9, 0)
    assert occurrences.next_occurrence(first_monday, datetime(2026, 1, 20)) == at_nine
    assert occurrences.next_occurrence(first_monday, at_nine) == datetime(2026, 3, 2, 9, 0)
    assert occurrences.next_occurrence(first_monday, datetime(2026, 2, 2, 8, 59)) == at_nine
    fifth_monday = schedule("monthly", weekdays=(0,), nth=5)
    assert occurrences.next_occurrence(fifth_monday, datetime(2026, 7, 1)) == datetime(
        2026, 8, 31, 9, 0
    )


def birthday(offset: int = 0, recurrence: str = "yearly") -> am.DateTrigger:
    return am.DateTrigger("birthday", am.Recurrence(recurrence), offset, NINE)


@pytest.mark.parametrize(
    ("stored", "day", "enters"),
    [
        (date(1990, 5, 4), date(2026, 5, 4), True),
        (date(1990, 5, 4), date(2026, 5, 5), False),
        (date(2026, 5, 4), date(2026, 5, 4), False),  # the day itself is no anniversary
        (date(2030, 5, 4), date(2026, 5, 4), False),  # nor a day in the future
        # 29 February on 28 February in years without it, on the 29th in leap years.
        (date(1992, 2, 29), date(2027, 2, 28), True),
        (date(1992, 2, 29), date(2027, 3, 1), False),
        (date(1992, 2, 29), date(2028, 2, 28), False),
        (date(1992, 2, 29), date(2028, 2, 29), True),
        (date(1990, 2, 28), date(2027, 2, 28), True),
    ],
)
def test_yearly_anniversaries(stored: date, day: date, enters: bool) -> None:
    assert occurrences.enters_on(birthday(), stored, day) is enters


def test_offsets_shift_the_day_across_years() -> None:
    week_before = birthday(-7)
    # A 3 January birthday is greeted a week before, in the previous year.
    assert occurrences.enters_on(week_before, date(1990, 1, 3), date(2026, 12, 27))
    assert occurrences.month_days(week_before, date(2026, 12, 27)) == {"01-03"}
    # 29 February with an offset: the day before the 28th in a year without it.
    day_before = birthday(-1)
    assert occurrences.month_days(day_before, date(2027, 2, 27)) == {"02-28", "02-29"}
    assert occurrences.enters_on(day_before, date(1992, 2, 29), date(2027, 2, 27))
    assert occurrences.month_days(day_before, date(2028, 2, 27)) == {"02-28"}
    after_thirty = am.DateTrigger("signup", am.Recurrence.once, 30, NINE)
    assert occurrences.enters_on(after_thirty, date(2026, 1, 10), date(2026, 2, 9))
    assert not occurrences.enters_on(after_thirty, date(2025, 1, 10), date(2026, 2, 9))
