"""The operands of the filter language's operators, checked: each check returns the value
as the tree keeps it, or a `Wrong` saying what is expected."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from postillon.filters.model import Kind, Op

MAX_LIST = 1000
MAX_DAYS = 36_600
MAX_PATTERN = 200
_ONE_DAY = timedelta(days=1)
# Regular-expression syntax that means something else (or nothing) in PostgreSQL.
_UNPORTABLE_PATTERN = re.compile(r"\(\?P|\(\?<|\(\?#|\\[AZzbBG]|\(\?[a-hj-z]|\\[0-9]")


@dataclass(frozen=True)
class Wrong:
    message: str


def check_operand(op: Op, raw: Any, kind: Kind) -> Any:
    return OPERAND_CHECKS[op](raw, kind)


def _scalar(raw: Any, kind: Kind) -> Any:
    expected = {
        Kind.json: "text, a number or true/false",
        Kind.text: "text",
        Kind.stage: "a stage",
        Kind.number: "a number",
        Kind.days_since: "a whole number of days",
    }[kind]
    if kind in (Kind.text, Kind.stage) and isinstance(raw, str):
        return raw
    if kind is Kind.json and (isinstance(raw, str | bool) or _is_number(raw)):
        return raw
    if kind is Kind.number and _is_number(raw):
        return raw
    if kind is Kind.days_since and is_int(raw):
        return raw
    return Wrong(f"must be {expected}")


def _ordered(raw: Any, kind: Kind) -> Any:
    if kind is Kind.json and isinstance(raw, bool):
        return Wrong("must be text or a number (true/false have no order)")
    return _scalar(raw, kind)


def _listed(raw: Any, kind: Kind) -> Any:
    if not isinstance(raw, list) or not raw or len(raw) > MAX_LIST:
        return Wrong(f"must be a list of 1…{MAX_LIST} values")
    values = [_scalar(v, kind) for v in raw]
    wrong = next((v for v in values if isinstance(v, Wrong)), None)
    return Wrong(f"every item {wrong.message}") if wrong else tuple(values)


def _between(raw: Any, kind: Kind) -> Any:
    if kind is Kind.timestamp:
        if isinstance(raw, list) and len(raw) == 2:
            low, high = (instant(b, upper=i == 1) for i, b in enumerate(raw))
            if low is not None and high is not None and low <= high:
                return (low, high)
        return Wrong("must be [from, to]: two dates or date-times, in order")
    if not isinstance(raw, list) or len(raw) != 2:
        return Wrong("must be [low, high]")
    low, high = (_ordered(v, kind) for v in raw)
    for bound in (low, high):
        if isinstance(bound, Wrong):
            return bound
    if isinstance(low, str) != isinstance(high, str):
        return Wrong("low and high must both be numbers or both be text")
    if kind is not Kind.stage and low > high:
        return Wrong("low must not be greater than high")
    return (low, high)


def _text(raw: Any, kind: Kind) -> Any:
    if not isinstance(raw, str) or not raw:
        return Wrong("must be non-empty text")
    return raw


def _contains(raw: Any, kind: Kind) -> Any:
    if kind is Kind.json and (isinstance(raw, bool) or _is_number(raw)):
        return raw  # an element of a list attribute
    return _text(raw, kind)


def _pattern(raw: Any, kind: Kind) -> Any:
    if not isinstance(raw, str) or not raw or len(raw) > MAX_PATTERN:
        return Wrong(f"must be a regular expression of at most {MAX_PATTERN} characters")
    try:
        re.compile(raw)
    except re.error as error:
        return Wrong(f"is not a regular expression: {error}")
    if _UNPORTABLE_PATTERN.search(raw):
        return Wrong(
            "uses syntax outside the portable subset (no named groups, lookbehind, "
            "back-references, \\A \\Z \\b; flags only as a leading (?i))"
        )
    return raw


def _before(raw: Any, kind: Kind) -> Any:
    """Timestamps: the instant they must be earlier than; dates: the day, as text."""
    if kind is Kind.timestamp:
        moment = instant(raw, upper=False)
        return moment if moment is not None else Wrong("must be a date or date-time")
    day = _date(raw)
    return day.isoformat() if day else Wrong("must be a date (YYYY-MM-DD)")


def _after(raw: Any, kind: Kind) -> Any:
    """Timestamps: the first instant that is after (the next day's start for a date);
    dates: the day, as text."""
    if kind is Kind.timestamp:
        moment = instant(raw, upper=True)
        if moment is None:
            return Wrong("must be a date or date-time")
        return moment if _date(raw) else moment + timedelta(microseconds=1)
    return _before(raw, kind)


def _days(raw: Any, kind: Kind) -> Any:
    if is_int(raw) and 0 <= raw <= MAX_DAYS:
        return raw
    return Wrong(f"must be a whole number of days, 0…{MAX_DAYS}")


def _anniversary(raw: Any, kind: Kind) -> Any:
    if is_int(raw) and 0 <= raw <= 366:
        return raw
    return Wrong("must be a whole number of days, 0 (today) … 366")


def _ages(raw: Any, kind: Kind) -> Any:
    if (
        isinstance(raw, list)
        and len(raw) == 2
        and all(is_int(v) and 0 <= v <= 150 for v in raw)
        and raw[0] <= raw[1]
    ):
        return (raw[0], raw[1])
    return Wrong("must be [youngest, oldest]: whole numbers of years, in order")


OPERAND_CHECKS: dict[Op, Callable[[Any, Kind], Any]] = {
    Op.eq: _scalar,
    Op.ne: _scalar,
    Op.lt: _ordered,
    Op.le: _ordered,
    Op.gt: _ordered,
    Op.ge: _ordered,
    Op.in_: _listed,
    Op.not_in: _listed,
    Op.between: _between,
    Op.contains: _contains,
    Op.starts_with: _text,
    Op.ends_with: _text,
    Op.matches: _pattern,
    Op.before: _before,
    Op.after: _after,
    Op.within_last_days: _days,
    Op.more_than_days_ago: _days,
    Op.anniversary_within_days: _anniversary,
    Op.age_between: _ages,
}


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return math.isfinite(value) and abs(value) < 1e15


def _date(raw: Any) -> date | None:
    if isinstance(raw, datetime):
        return None
    if isinstance(raw, date):  # YAML reads 2026-01-05 as a date
        return raw
    if isinstance(raw, str) and re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", raw):
        try:
            return date.fromisoformat(raw)
        except ValueError:
            return None
    return None


def instant(raw: Any, *, upper: bool) -> datetime | None:
    """A date (its start; with `upper`, the start of the next day: bounds of whole days
    are inclusive) or an ISO date-time (UTC if it names no offset)."""
    day = _date(raw)
    if day is not None:
        start = datetime(day.year, day.month, day.day, tzinfo=UTC)
        return start + _ONE_DAY if upper else start
    if isinstance(raw, datetime):
        parsed = raw
    elif isinstance(raw, str):
        try:
            parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            return None
    else:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
