"""Tests on one value in SQL (text, numbers, JSON values, timestamps, dates, stages), the
part of the filter compiler (`filters.sql`) that knows what each operator means there.

Values that follow the time (the start of a window, age bounds) are bound under names of
their own, each with the function that gives it for a time, so that a statement can be
built once and run later with the values of another moment (`timed`).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Boolean,
    ColumnElement,
    Float,
    Integer,
    String,
    and_,
    bindparam,
    case,
    false,
    func,
    literal,
    not_,
    or_,
)
from sqlalchemy.dialects.postgresql import JSONB

from postillon.filters import values
from postillon.filters.json_path import JsonPath
from postillon.filters.model import Kind, Op, Test
from postillon.kit.types import UTCDateTime

Condition = ColumnElement[bool]


@dataclass(frozen=True)
class Catalog:
    """What compiling (and evaluating) a filter needs to know besides the filter: the
    time, the pipeline, and the ids behind score model and segment keys."""

    now: datetime
    stages: tuple[str, ...] = ()
    score_models: dict[str, uuid.UUID] = field(default_factory=dict)
    segments: dict[str, uuid.UUID] = field(default_factory=dict)
    purchase_event: str = "Order Completed"


class ValueTests:
    def __init__(
        self,
        dialect: str,
        catalog: Catalog,
        timed: dict[str, Callable[[datetime], Any]] | None = None,
    ) -> None:
        self.dialect = dialect
        self.sqlite = dialect == "sqlite"
        self.catalog = catalog
        self.now = catalog.now
        self.today = catalog.now.date()
        # The values that follow the time, by parameter name (it may be shared).
        self.timed: dict[str, Callable[[datetime], Any]] = {} if timed is None else timed

    def at(
        self, value_at: Callable[[datetime], Any], kind: Any, expanding: bool = False
    ) -> ColumnElement[Any]:
        """A value that follows the time, bound under its own name."""
        name = f"at_{len(self.timed)}"
        self.timed[name] = value_at
        bound: ColumnElement[Any] = bindparam(
            name, value_at(self.now), type_=kind, expanding=expanding
        )
        return bound

    def moment(self, days_ago: int) -> ColumnElement[Any]:
        return self.at(lambda now: now - timedelta(days=days_ago), UTCDateTime())

    def _two_valued(self, condition: Condition) -> Condition:
        return func.coalesce(condition, false(), type_=Boolean)

    def subject_test(self, column: Any, kind: Kind, test: Test) -> Condition:
        if kind is Kind.timestamp:
            return self.timestamp_test(column, test)
        if kind is Kind.stage:
            return self.stage_test(column, test)
        if kind is Kind.number:
            return self.number_test(column, test)
        return self.text_test(column, test)

    def json_test(self, subject: JsonPath, test: Test) -> Condition:
        op, operand = test.op, test.value
        if op is Op.exists:
            return subject.is_("value")
        if op is Op.empty:
            return or_(
                subject.kind.is_(None),
                subject.kind.in_(["null"]),
                subject.text() == "",
                subject.array_length() == 0,
            )
        if op is Op.contains and not isinstance(operand, str):
            return subject.array_has(operand)
        if op is Op.contains:
            return or_(subject.array_has(operand), self.text_test(subject.text(), test))
        if op in (Op.eq, Op.ne, Op.in_, Op.not_in):
            operands = operand if op in (Op.in_, Op.not_in) else (operand,)
            same = or_(*(self._json_same(subject, item) for item in operands))
            if op in (Op.eq, Op.in_):
                return same
            return and_(subject.is_("value"), not_(self._two_valued(same)))
        if op in (Op.lt, Op.le, Op.gt, Op.ge, Op.between):
            sample = operand[0] if op is Op.between else operand
            if isinstance(sample, str):
                return self.text_test(subject.text(), test)
            return self.number_test(subject.number(), test)
        if op in (Op.starts_with, Op.ends_with, Op.matches):
            return self.text_test(subject.text(), test)
        # Only text can look like YYYY-MM-DD (numbers, true/false, arrays and objects read
        # as text start otherwise), so the date check needs no type check before it.
        return self._date_test(subject.as_text(), test)

    def _json_same(self, subject: JsonPath, item: Any) -> Condition:
        """Typed equality with one read of the value where the database allows it."""
        if not self.sqlite:
            if isinstance(item, str):
                # Read as text, a value equals a text only if it is that text, or a
                # number, true or false, an array or an object written like it.
                text: Condition = subject.as_text() == literal(item, String)
                return and_(subject.is_("string"), text) if _json_like(item) else text
            # jsonb equality keeps types apart: true is not 1, and 1 is 1.0.
            same: Condition = subject.raw == literal(item, JSONB)
            return same
        if isinstance(item, bool):
            kind: Condition = subject.kind == ("true" if item else "false")
            return kind
        plain: Condition = subject.raw == literal(item)
        # json_extract hands back arrays and objects as their JSON text, and true and
        # false as 1 and 0: only then is the type worth asking as well.
        if isinstance(item, str) and item[:1] in ("[", "{"):
            return and_(subject.is_("string"), plain)
        if not isinstance(item, str) and item in (0, 1):
            return and_(subject.is_("number"), plain)
        return plain

    def text_test(self, value: ColumnElement[Any], test: Test) -> Condition:
        op, operand = test.op, test.value
        if op is Op.exists:
            return value.is_not(None)
        if op is Op.empty:
            return or_(value.is_(None), value == "")
        if op in (Op.lt, Op.le, Op.gt, Op.ge, Op.between):
            ordered = value if self.sqlite else value.collate("C")
            return _compare(ordered, op, operand)
        if op in (Op.eq, Op.ne, Op.in_, Op.not_in):
            return _compare(value, op, operand)
        if op is Op.matches:
            return value.regexp_match(operand)
        folded = (
            func.lower(value)
            if self.sqlite
            else func.translate(value, values.ASCII_UPPER, values.ASCII_LOWER)
        )
        needle = values.fold(operand)
        if op is Op.contains:
            position = func.instr(folded, needle) if self.sqlite else func.strpos(folded, needle)
            return position > 0
        if op is Op.starts_with:
            return func.substr(folded, 1, len(needle)) == needle
        if op is Op.ends_with:
            length = func.length(folded)
            return and_(
                length >= len(needle), func.substr(folded, length - len(needle) + 1) == needle
            )
        return self._date_test(value, test)

    def number_test(self, value: ColumnElement[Any], test: Test) -> Condition:
        if test.op is Op.exists:
            return value.is_not(None)
        if test.op is Op.empty:
            return value.is_(None)
        # Each number keeps its own type: bound as the column's type, 2.5 would become an
        # integer (3) when compared with an integer column.
        operand = test.value
        if isinstance(operand, tuple):
            return _compare(value, test.op, tuple(_number(v) for v in operand))
        return _compare(value, test.op, _number(operand))

    def stage_test(self, column: Any, test: Test) -> Condition:
        stages = self.catalog.stages
        if test.op not in (Op.lt, Op.le, Op.gt, Op.ge, Op.between):
            return self.text_test(column, test)
        if not stages:
            return false()
        position = case(*((column == stage, index) for index, stage in enumerate(stages)))
        operand = (
            tuple(stages.index(s) for s in test.value) if test.op is Op.between
            else stages.index(test.value)
        )  # fmt: skip
        return _compare(position, test.op, operand)

    def timestamp_test(self, value: ColumnElement[Any], test: Test) -> Condition:
        op, operand = test.op, test.value
        if op is Op.exists:
            return value.is_not(None)
        if op is Op.empty:
            return value.is_(None)
        if op in (Op.before, Op.after):
            return _compare(value, Op.lt if op is Op.before else Op.ge, operand)
        if op is Op.between:
            return and_(value >= operand[0], value < operand[1])
        if op is Op.within_last_days:
            return and_(value >= self.moment(operand), value <= self.moment(0))
        if op is Op.more_than_days_ago:
            return value < self.moment(operand)
        raise AssertionError(op)

    def _days_since(self, column: Any, test: Test) -> Condition:
        """Whole days since `column` (floor), tested without date arithmetic in SQL:
        days >= n exactly when the moment is at or before now - n days."""
        op, operand = test.op, test.value
        if op in (Op.exists, Op.empty):
            return self.timestamp_test(column, test)

        def at_least(n: int) -> Condition:
            found: Condition = column <= self.moment(n)
            return found

        def at_most(n: int) -> Condition:
            found: Condition = column > self.moment(n + 1)
            return found

        if op is Op.ge:
            return at_least(operand)
        if op is Op.gt:
            return at_least(operand + 1)
        if op is Op.le:
            return at_most(operand)
        if op is Op.lt:
            return at_most(operand - 1)
        if op is Op.between:
            return and_(at_least(operand[0]), at_most(operand[1]))
        listed = operand if op in (Op.in_, Op.not_in) else (operand,)
        same = or_(*(and_(at_least(n), at_most(n)) for n in listed))
        if op in (Op.eq, Op.in_):
            return same
        return and_(column.is_not(None), not_(self._two_valued(same)))

    def _date_test(self, value: ColumnElement[Any], test: Test) -> Condition:
        """Date operators on text that starts with YYYY-MM-DD (a date attribute).

        The day is the text's first ten characters, so the text itself can be compared:
        day <= D exactly when text < D with its last character moved on by one. That
        needs no substring, and the comparisons come first in one expression, the shape
        check last: most values are turned away by a comparison alone."""
        if self.sqlite:
            ordered = value
            looks_like_date = value.op("GLOB")("[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]*")
        else:
            ordered = value.collate("C")
            looks_like_date = value.op("~")("^[0-9]{4}-[0-9]{2}-[0-9]{2}")
        if test.op is Op.anniversary_within_days:
            ahead = test.value
            days = self.at(lambda now: values.anniversary_days(now.date(), ahead), String, True)
            return and_(func.substr(value, 6, 5).in_(days), looks_like_date)
        first, after = self._day_bounds(test)
        found: list[Condition] = []
        if first is not None:
            found.append(ordered >= first)
        if after is not None:
            found.append(ordered < after)
        return and_(*found, looks_like_date)

    def _day_bounds(self, test: Test) -> tuple[Any, Any]:  # text or bound text, or None
        """The days a date test accepts as text bounds on a value that starts with the
        day: the first text accepted (or None) and the first text after them (or None)."""
        op, operand = test.op, test.value
        if op is Op.before:
            return None, operand
        if op is Op.after:
            return _next_text(operand), None
        if op is Op.within_last_days:
            return (
                self.at(lambda now: (now.date() - timedelta(days=operand)).isoformat(), String),
                self.at(lambda now: _next_text(now.date().isoformat()), String),
            )
        if op is Op.more_than_days_ago:
            return None, self.at(
                lambda now: (now.date() - timedelta(days=operand)).isoformat(), String
            )
        if op is Op.age_between:
            return (
                self.at(lambda now: _next_text(values.age_bounds(now.date(), *operand)[0]), String),
                self.at(lambda now: _next_text(values.age_bounds(now.date(), *operand)[1]), String),
            )
        raise AssertionError(op)


def _next_text(day: str) -> str:
    """The first ten-character text after `day`: every text starting with a day up to
    `day` sorts before it, every text starting with a later day at or after it."""
    return day[:-1] + chr(ord(day[-1]) + 1)


def _json_like(text: str) -> bool:
    """Whether another JSON value than this string reads as this text on PostgreSQL."""
    return text in ("true", "false") or text[:1] in ("[", "{", "-", *"0123456789")


def _number(value: int | float) -> ColumnElement[Any]:
    return literal(value, Float if isinstance(value, float) else Integer)


def _compare(value: Any, op: Op, operand: Any) -> Condition:
    if op is Op.eq:
        return value == operand  # type: ignore[no-any-return]
    if op is Op.ne:
        return value != operand  # type: ignore[no-any-return]
    if op is Op.lt:
        return value < operand  # type: ignore[no-any-return]
    if op is Op.le:
        return value <= operand  # type: ignore[no-any-return]
    if op is Op.gt:
        return value > operand  # type: ignore[no-any-return]
    if op is Op.ge:
        return value >= operand  # type: ignore[no-any-return]
    if op is Op.in_:
        return value.in_(operand)  # type: ignore[no-any-return]
    if op is Op.not_in:
        return value.not_in(operand)  # type: ignore[no-any-return]
    if op is Op.between:
        return and_(value >= operand[0], value <= operand[1])
    raise AssertionError(op)
