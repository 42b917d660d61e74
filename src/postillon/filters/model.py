"""The checked filter tree. Built by `parsing`, read by `sql` and `evaluate`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class Op(StrEnum):
    eq = "="
    ne = "!="
    lt = "<"
    le = "<="
    gt = ">"
    ge = ">="
    in_ = "in"
    not_in = "not_in"
    contains = "contains"
    starts_with = "starts_with"
    ends_with = "ends_with"
    exists = "exists"
    empty = "empty"
    between = "between"
    matches = "matches"
    before = "before"
    after = "after"
    within_last_days = "within_last_days"
    more_than_days_ago = "more_than_days_ago"
    anniversary_within_days = "anniversary_within_days"
    age_between = "age_between"


class Kind(StrEnum):
    """What a condition's subject holds, which decides what its operators mean."""

    json = "json"  # an attribute or event property: any JSON value, typed by the operand
    text = "text"
    number = "number"
    timestamp = "timestamp"
    stage = "stage"  # text ordered by the lifecycle pipeline
    days_since = "days_since"  # whole days since a timestamp (days_since_last_purchase)


@dataclass(frozen=True)
class Test:
    """An operator and its checked operand.

    `value` is a scalar for comparisons, a tuple for `in` / `not_in` / `between` /
    `age_between`, an int for day counts, a pattern for `matches`, None for `exists` /
    `empty`. Dates in operands are `date` (whole days) or `datetime` (UTC instants)."""

    op: Op
    value: Any = None


# --- conditions on the contact ---


@dataclass(frozen=True)
class FieldCondition:
    field: str  # a contacts column, or last_seen.<key>
    kind: Kind
    test: Test


@dataclass(frozen=True)
class AttributeCondition:
    path: tuple[str, ...]
    test: Test


@dataclass(frozen=True)
class TagCondition:
    tag: str


@dataclass(frozen=True)
class ConsentCondition:
    channel: str
    statuses: frozenset[str]  # "unknown" stands for no consent recorded


@dataclass(frozen=True)
class ScoreCondition:
    model: str  # a score model key; "main" is contacts.score
    test: Test


@dataclass(frozen=True)
class SegmentCondition:
    segment: str  # a segment key


@dataclass(frozen=True)
class TraitCondition:
    trait: str
    kind: Kind
    test: Test


# --- behaviour ---


@dataclass(frozen=True)
class Window:
    """Which events count: those of the last `days` days, or between two instants
    (`start` inclusive, `end` exclusive). Neither: all of them."""

    days: int | None = None
    start: datetime | None = None
    end: datetime | None = None


@dataclass(frozen=True)
class Performed:
    """How many times the contact performed `event` (matching `where`, in `window`)."""

    event: str
    where: PropertyFilter | None
    count: Test  # a number test on the count
    window: Window = field(default_factory=Window)


@dataclass(frozen=True)
class Occurrence:
    """When the contact first or last performed `event`; never performed is false."""

    event: str
    where: PropertyFilter | None
    which: str  # "first" or "last"
    test: Test  # a timestamp test


@dataclass(frozen=True)
class Purchases:
    """An aggregate over the contact's purchases in `window`: revenue (sum; 0 with none),
    count (0 with none) or average_order_value (none with no purchase)."""

    measure: str
    test: Test
    window: Window = field(default_factory=Window)


# --- groups ---


@dataclass(frozen=True)
class All:
    items: tuple[Filter, ...]


@dataclass(frozen=True)
class AnyOf:
    items: tuple[Filter, ...]


@dataclass(frozen=True)
class Not:
    item: Filter


# Event property conditions (inside `where`), grouped the same way.
@dataclass(frozen=True)
class PropertyCondition:
    path: tuple[str, ...]
    test: Test


@dataclass(frozen=True)
class PropertyAll:
    items: tuple[PropertyFilter, ...]


@dataclass(frozen=True)
class PropertyAny:
    items: tuple[PropertyFilter, ...]


@dataclass(frozen=True)
class PropertyNot:
    item: PropertyFilter


PropertyFilter = PropertyCondition | PropertyAll | PropertyAny | PropertyNot

Filter = (
    All
    | AnyOf
    | Not
    | FieldCondition
    | AttributeCondition
    | TagCondition
    | ConsentCondition
    | ScoreCondition
    | SegmentCondition
    | TraitCondition
    | Performed
    | Occurrence
    | Purchases
)

# The event a page view is stored as (what `visited` counts).
PAGE_VIEW_EVENT = "page_viewed"
