"""When date and schedule triggers happen, pure: on which days a recurring schedule
occurs, and on which day a contact's date attribute makes them enter.

Both answer in local wall-clock time (naive datetimes, days); `localtime` turns those into
instants in the journey's or each contact's zone.

Schedules (`ScheduleTrigger`):
- daily: every day at `at` (only on `weekdays` when the document names some);
- weekly: on each of `weekdays`;
- monthly on `day_of_month`: a day the month does not have (the 31st in April, the 30th
  in February) means the month's last day, so "monthly on the 31st" is "at the end of
  every month" and no month is left out;
- monthly on the `nth` `weekday` ("first Monday"): -1 is the last one; a month without a
  fifth Monday has no occurrence of "fifth Monday" (it is not moved into the next month).

Date triggers (`DateTrigger`): a contact enters on day D when the date attribute's
anniversary (yearly) or the date itself (once), shifted by `offset_days`, is D. An
anniversary is in a year after the date's own (the day itself is not its anniversary);
29 February is celebrated on 28 February in years without it.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterator
from datetime import date, datetime, timedelta

from postillon.automations import model as am

ONE_DAY = timedelta(days=1)
# Every schedule occurs within this many days of any day ("fifth Monday" about every
# three months), so a search for the next occurrence can stop here.
_LONGEST_GAP = 400


def occurs_on(trigger: am.ScheduleTrigger, day: date) -> bool:
    if trigger.frequency is am.Frequency.daily:
        return not trigger.weekdays or day.weekday() in trigger.weekdays
    if trigger.frequency is am.Frequency.weekly:
        return day.weekday() in trigger.weekdays
    last = calendar.monthrange(day.year, day.month)[1]
    if trigger.day_of_month is not None:
        return day.day == min(trigger.day_of_month, last)
    if trigger.nth is None or not trigger.weekdays or day.weekday() != trigger.weekdays[0]:
        return False
    if trigger.nth == -1:
        return day.day + 7 > last
    return (day.day - 1) // 7 + 1 == trigger.nth


def occurrences(trigger: am.ScheduleTrigger, first: date, last: date) -> Iterator[datetime]:
    """The occurrences (wall-clock, at `trigger.at`) on the days `first` … `last`."""
    day = first
    while day <= last:
        if occurs_on(trigger, day):
            yield datetime.combine(day, trigger.at)
        day += ONE_DAY


def next_occurrence(trigger: am.ScheduleTrigger, after: datetime) -> datetime:
    """The first occurrence (wall-clock) later than `after` (wall-clock)."""
    start = after.date()
    for found in occurrences(trigger, start, start + timedelta(days=_LONGEST_GAP)):
        if found > after:
            return found
    raise AssertionError(f"{trigger} does not occur within {_LONGEST_GAP} days")


def anniversary(day: date, year: int) -> date:
    """The day's anniversary in `year`; 29 February is on 28 February in other years."""
    try:
        return day.replace(year=year)
    except ValueError:
        return day.replace(year=year, day=28)


def enters_on(trigger: am.DateTrigger, stored: date, day: date) -> bool:
    """Whether a contact whose attribute holds `stored` enters on local day `day`."""
    shifted = day - timedelta(days=trigger.offset_days)
    if trigger.recurrence is am.Recurrence.once:
        return stored == shifted
    return stored.year < shifted.year and anniversary(stored, shifted.year) == shifted


def month_days(trigger: am.DateTrigger, day: date) -> set[str]:
    """The MM-DD a stored date must have for its contact to enter on `day` (what the
    database narrows the contacts to; `enters_on` decides)."""
    shifted = day - timedelta(days=trigger.offset_days)
    found = {shifted.strftime("%m-%d")}
    if (
        trigger.recurrence is am.Recurrence.yearly
        and shifted.month == 2
        and shifted.day == 28
        and not calendar.isleap(shifted.year)
    ):
        found.add("02-29")
    return found
