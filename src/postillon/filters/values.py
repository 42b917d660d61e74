"""What each operator means, in Python: the reference the SQL compiler must agree with.

Typing is strict: text compares with text, numbers with numbers (true/false are not
numbers), and a missing or null value satisfies nothing but `empty` (so `!=` and `not_in`
are false for it; wrap the condition in `not` to include contacts without the value).
`contains`, `starts_with` and `ends_with` ignore ASCII case; `=` and `in` do not. Text is
ordered by code point. Dates are judged on the UTC calendar day.
"""

from __future__ import annotations

import math
import re
import string
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

from postillon.filters.model import Kind, Op, Test

ASCII_UPPER = string.ascii_uppercase
ASCII_LOWER = string.ascii_lowercase
_FOLD = str.maketrans(ASCII_UPPER, ASCII_LOWER)
DATE_PREFIX = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
ONE_DAY = timedelta(days=1)


def fold(text: str) -> str:
    """ASCII lower case (what SQLite's lower() does, and translate() on PostgreSQL)."""
    return text.translate(_FOLD)


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def same(stored: Any, operand: Any) -> bool:
    """Equality that keeps types apart: "1" is not 1, and true is not 1."""
    if isinstance(operand, bool):
        return isinstance(stored, bool) and stored is operand
    if isinstance(operand, str):
        return isinstance(stored, str) and stored == operand
    return is_number(stored) and stored == operand


def _ordered(stored: Any, operand: Any) -> bool:
    """Whether `stored` can be ordered against `operand` (same kind: text or number)."""
    if isinstance(operand, str):
        return isinstance(stored, str)
    return is_number(stored)


def date_part(stored: Any) -> str | None:
    """The YYYY-MM-DD a text value starts with, if it starts with one."""
    if isinstance(stored, str) and DATE_PREFIX.match(stored):
        return stored[:10]
    return None


def minus_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February in a year without one
        return day.replace(year=day.year - years, day=28)


def anniversary_days(today: date, days: int) -> list[str]:
    """The MM-DD of today and the next `days` days; 29 February counts on the 28th in
    years without it."""
    found: list[str] = []
    for offset in range(days + 1):
        day = today + timedelta(days=offset)
        found.append(day.strftime("%m-%d"))
        if day.month == 2 and day.day == 28 and (day + ONE_DAY).month == 3:
            found.append("02-29")
    return sorted(set(found))


def age_bounds(today: date, youngest: int, oldest: int) -> tuple[str, str]:
    """Birth dates of people aged `youngest`…`oldest` today: after the first bound, on or
    before the second."""
    return (
        minus_years(today, oldest + 1).isoformat(),
        minus_years(today, youngest).isoformat(),
    )


def test_value(test: Test, stored: Any, *, today: date) -> bool:
    """A test on an attribute, event property, text or number: `stored` is the value or
    None when missing."""
    op, operand = test.op, test.value
    if op is Op.exists:
        return stored is not None
    if op is Op.empty:
        return stored is None or stored == "" or (isinstance(stored, list) and not stored)
    if stored is None:
        return False
    if op is Op.eq:
        return same(stored, operand)
    if op is Op.ne:
        return not same(stored, operand)
    if op is Op.in_:
        return any(same(stored, item) for item in operand)
    if op is Op.not_in:
        return not any(same(stored, item) for item in operand)
    if op in (Op.lt, Op.le, Op.gt, Op.ge):
        return _ordered(stored, operand) and _compare(op, stored, operand)
    if op is Op.between:
        low, high = operand
        return _ordered(stored, low) and bool(low <= stored <= high)
    if op is Op.contains:
        if isinstance(stored, list):
            return any(same(item, operand) for item in stored)
        return (
            isinstance(stored, str) and isinstance(operand, str) and fold(operand) in fold(stored)
        )
    if op is Op.starts_with:
        return isinstance(stored, str) and fold(stored).startswith(fold(operand))
    if op is Op.ends_with:
        return isinstance(stored, str) and fold(stored).endswith(fold(operand))
    if op is Op.matches:
        return isinstance(stored, str) and re.search(operand, stored) is not None
    return _test_date(op, operand, date_part(stored), today)


def _compare(op: Op, stored: Any, operand: Any) -> bool:
    if op is Op.lt:
        return bool(stored < operand)
    if op is Op.le:
        return bool(stored <= operand)
    if op is Op.gt:
        return bool(stored > operand)
    return bool(stored >= operand)


def _test_date(op: Op, operand: Any, day: str | None, today: date) -> bool:
    if day is None:
        return False
    if op is Op.before:
        return bool(day < operand)
    if op is Op.after:
        return bool(day > operand)
    if op is Op.within_last_days:
        return (today - timedelta(days=operand)).isoformat() <= day <= today.isoformat()
    if op is Op.more_than_days_ago:
        return day < (today - timedelta(days=operand)).isoformat()
    if op is Op.anniversary_within_days:
        return day[5:10] in anniversary_days(today, operand)
    if op is Op.age_between:
        low, high = age_bounds(today, *operand)
        return low < day <= high
    raise AssertionError(op)


def test_stage(test: Test, stored: str | None, stages: Sequence[str]) -> bool:
    """Stages compare as text for =, != and in; by pipeline position for the order."""
    if test.op in (Op.lt, Op.le, Op.gt, Op.ge, Op.between):
        if stored not in stages:
            return False
        position = stages.index(stored)
        if test.op is Op.between:
            low, high = (stages.index(s) for s in test.value)
            return low <= position <= high
        return _compare(test.op, position, stages.index(test.value))
    return test_value(test, stored, today=date.min)


def test_timestamp(test: Test, stored: datetime | None, *, now: datetime) -> bool:
    op, operand = test.op, test.value
    if op is Op.exists:
        return stored is not None
    if op is Op.empty:
        return stored is None
    if stored is None:
        return False
    if op is Op.before:
        return bool(stored < operand)
    if op is Op.after:
        return bool(stored >= operand)
    if op is Op.between:
        return bool(operand[0] <= stored < operand[1])
    if op is Op.within_last_days:
        return now - timedelta(days=operand) <= stored <= now
    if op is Op.more_than_days_ago:
        return stored < now - timedelta(days=operand)
    raise AssertionError(op)


def days_since(stored: datetime | None, now: datetime) -> int | None:
    if stored is None:
        return None
    return math.floor((now - stored) / ONE_DAY)


def test_subject(
    test: Test, kind: Kind, stored: Any, *, now: datetime, stages: Sequence[str]
) -> bool:
    """A test on a subject of any kind."""
    if kind is Kind.timestamp:
        return test_timestamp(test, stored, now=now)
    if kind is Kind.stage:
        return test_stage(test, stored, stages)
    if kind is Kind.days_since:
        return test_value(test, days_since(stored, now), today=now.date())
    return test_value(test, stored, today=now.date())
