"""The small values of automation documents (durations, times of day, weekdays, choices,
filters) and the problem list every part of the parser writes to; see `documents.py`."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import time, timedelta
from typing import Any, TypeVar

from postillon.errors import FieldProblem, InvalidInput
from postillon.filters import model as fm
from postillon.filters.parsing import parse_property_filter

FilterParser = Callable[[Any, str], fm.Filter]
T = TypeVar("T")

_KEY = re.compile(r"^[a-z0-9][a-z0-9_-]{0,99}$")
_STEP_ID = re.compile(r"^[A-Za-z0-9_-]{1,60}$")
_EVENT = re.compile(r"^[A-Za-z0-9_.:$ -]{1,200}$")
_DURATION_PART = re.compile(r"(\d+)\s*(w|d|h|m|s)")
_UNITS = {"w": 604_800, "d": 86_400, "h": 3_600, "m": 60, "s": 1}
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
MAX_STEPS = 200
MAX_ACTIONS = 50
MAX_WAIT = timedelta(days=3 * 366)


def parse_duration(raw: Any) -> timedelta | None:
    """`90m`, `1h`, `3d`, `2w`, `1d12h` (or a number of seconds) → timedelta."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int) and raw > 0:
        return _seconds(raw)
    if not isinstance(raw, str):
        return None
    text = raw.strip().lower().replace(" ", "")
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        return None
    seconds = sum(int(n) * _UNITS[u] for n, u in parts)
    return _seconds(seconds) if seconds > 0 else None


def _seconds(seconds: int) -> timedelta:
    # Longer than timedelta can hold: as long as it can (callers refuse it as too long).
    return timedelta(seconds=seconds) if seconds < 10**14 else timedelta.max


def format_duration(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    out = ""
    for unit, size in _UNITS.items():
        if seconds >= size:
            out += f"{seconds // size}{unit}"
            seconds %= size
    return out or "0s"


@dataclass
class Values:
    """Reads small values, collecting every problem with its path."""

    parse_filter: FilterParser
    problems: list[FieldProblem] = field(default_factory=list)

    def problem(self, at: str, message: str) -> None:
        self.problems.append(FieldProblem(at, message))

    # --- small values ---

    def obj(self, doc: Any, at: str, allowed: set[str]) -> Mapping[str, Any] | None:
        if not isinstance(doc, dict):
            self.problem(at, "must be an object")
            return None
        for key in sorted(set(doc) - allowed, key=str):
            self.problem(
                join_path(at, key), f"is not known here (known: {', '.join(sorted(allowed))})"
            )
        return doc

    def text(
        self,
        doc: Mapping[str, Any],
        key: str,
        at: str,
        *,
        required: bool = True,
        longest: int = 200,
    ) -> str | None:
        raw = doc.get(key)
        if raw is None:
            if required:
                self.problem(join_path(at, key), "is required")
            return None
        if not isinstance(raw, str) or not raw.strip() or len(raw) > longest:
            self.problem(join_path(at, key), f"must be text of 1 to {longest} characters")
            return None
        return raw.strip()

    def duration(self, raw: Any, at: str) -> timedelta | None:
        value = parse_duration(raw)
        if value is None:
            self.problem(at, "must be a duration such as 30m, 1h, 3d, 2w or 1d12h")
        elif value > MAX_WAIT:
            self.problem(at, "must be at most 3 years")
            return None
        return value

    def time_of_day(self, raw: Any, at: str) -> time | None:
        if isinstance(raw, str):
            match = re.fullmatch(r"(\d{1,2}):(\d{2})", raw.strip())
            if match and int(match[1]) < 24 and int(match[2]) < 60:
                return time(int(match[1]), int(match[2]))
        self.problem(at, "must be a local time of day such as 09:00")
        return None

    def weekdays(self, raw: Any, at: str) -> tuple[int, ...] | None:
        items = raw if isinstance(raw, list) else [raw]
        days: list[int] = []
        for item in items:
            name = item.strip().lower() if isinstance(item, str) else None
            if name not in _WEEKDAYS:
                self.problem(at, f"must be weekdays among {', '.join(_WEEKDAYS)}")
                return None
            days.append(_WEEKDAYS.index(name))
        if not days:
            self.problem(at, "must name at least one weekday")
            return None
        return tuple(sorted(set(days)))

    def integer(self, raw: Any, at: str, low: int, high: int) -> int | None:
        if isinstance(raw, bool) or not isinstance(raw, int) or not low <= raw <= high:
            self.problem(at, f"must be a whole number from {low} to {high}")
            return None
        return raw

    def choice(self, raw: Any, at: str, enum: type[T]) -> T | None:
        try:
            return enum(raw)  # type: ignore[call-arg]
        except ValueError:
            names = ", ".join(str(e.value) for e in enum)  # type: ignore[attr-defined]
            self.problem(at, f"must be one of {names}")
            return None

    def boolean(self, doc: Mapping[str, Any], key: str, at: str) -> bool:
        raw = doc.get(key, False)
        if not isinstance(raw, bool):
            self.problem(join_path(at, key), "must be true or false")
            return False
        return raw

    def filter(self, raw: Any, at: str) -> fm.Filter | None:
        try:
            return self.parse_filter(raw, at)
        except InvalidInput as error:
            self.problems.extend(error.problems)
            return None

    def property_filter(self, raw: Any, at: str) -> fm.PropertyFilter | None:
        try:
            return parse_property_filter(raw, where=at)
        except InvalidInput as error:
            self.problems.extend(error.problems)
            return None


def join_path(at: str, key: object) -> str:
    """The path of `key` inside `at` (the document itself when `at` is empty)."""
    return f"{at}.{key}" if at else str(key)
