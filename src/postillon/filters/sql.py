"""Filters compiled to one SQL condition over `contacts`, for SQLite and PostgreSQL.

Two shapes, one meaning. For everyone (a segment's full refresh) conditions on other
tables become set lookups — `contacts.id IN (SELECT contact_id FROM events WHERE … GROUP
BY contact_id HAVING …)` — which both databases run as one pass over an index. For a few
listed contacts (incremental refresh, journeys) they become correlated subqueries that
look up only those contacts' rows. Every leaf is made two-valued (a missing value is
false, never NULL) so that `not` means "everyone else".
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Boolean,
    ColumnElement,
    Float,
    Integer,
    Select,
    String,
    and_,
    case,
    exists,
    false,
    func,
    literal,
    not_,
    or_,
    select,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import JSONB

from postillon.filters import model as m
from postillon.filters import values
from postillon.filters.json_path import JsonPath
from postillon.filters.model import Kind, Op, Test
from postillon.kit.repository import table_of
from postillon.kit.types import UTCDateTime
from postillon.models import (
    Contact,
    ContactConsent,
    ContactScore,
    ContactTag,
    ContactTrait,
    Event,
    SegmentMembership,
)
from postillon.traits.purchases import revenue_sql

contacts = table_of(Contact)
events = table_of(Event)
tags = table_of(ContactTag)
consents = table_of(ContactConsent)
scores = table_of(ContactScore)
traits = table_of(ContactTrait)
memberships = table_of(SegmentMembership)

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


def select_members(
    node: m.Filter,
    catalog: Catalog,
    dialect: str,
    *,
    contact_ids: Collection[uuid.UUID] | None = None,
) -> Select[uuid.UUID]:
    """`SELECT contacts.id` of everyone matching, or of the matching `contact_ids`."""
    compiler = SqlCompiler(dialect, catalog, correlated=contact_ids is not None)
    if contact_ids is None:
        direct = compiler.direct_query(node)
        if direct is not None:
            return direct
    query = select(contacts.c.id).where(compiler.condition(node))
    if contact_ids is not None:
        query = query.where(contacts.c.id.in_(sorted(contact_ids)))
    return query


class SqlCompiler:
    def __init__(self, dialect: str, catalog: Catalog, *, correlated: bool) -> None:
        self.dialect = dialect
        self.sqlite = dialect == "sqlite"
        self.catalog = catalog
        self.correlated = correlated
        self.now = catalog.now
        self.today = catalog.now.date()

    def direct_query(self, node: m.Filter) -> Select[uuid.UUID] | None:
        """For a filter that is one condition on a table with at most one matching row a
        contact (a tag, a segment, traits, consent), its ids straight from that table."""
        found: tuple[Any, list[Condition]] | None = None
        if isinstance(node, m.TagCondition):
            found = (tags, [tags.c.tag == node.tag])
        elif isinstance(node, m.SegmentCondition) and node.segment in self.catalog.segments:
            segment_id = self.catalog.segments[node.segment]
            found = (
                memberships,
                [memberships.c.segment_id == segment_id, memberships.c.exited_at.is_(None)],
            )
        elif isinstance(node, m.TraitCondition) and node.kind is not Kind.days_since:
            holds = values.test_subject(node.test, node.kind, None, now=self.now, stages=())
            if not holds:
                test = self.subject_test(traits.c[node.trait], node.kind, node.test)
                found = (traits, [test])
        if found is None:
            return None
        table, conditions = found
        return select(table.c.contact_id.label("id")).where(*conditions)

    def condition(self, node: m.Filter) -> Condition:
        method: Callable[[Any], Condition] = getattr(self, f"_{type(node).__name__}")
        return method(node)

    # --- groups ---

    def _All(self, node: m.All) -> Condition:
        return and_(*(self.condition(item) for item in node.items))

    def _AnyOf(self, node: m.AnyOf) -> Condition:
        return or_(*(self.condition(item) for item in node.items))

    def _Not(self, node: m.Not) -> Condition:
        return not_(self.condition(node.item))

    # --- the contact ---

    def _FieldCondition(self, node: m.FieldCondition) -> Condition:
        if node.field.startswith("last_seen."):
            subject = JsonPath(self.dialect, contacts.c.last_seen, [node.field.split(".", 1)[1]])
            return self._two_valued(self.json_test(subject, node.test))
        column = contacts.c[node.field]
        return self._two_valued(self.subject_test(column, node.kind, node.test))

    def _AttributeCondition(self, node: m.AttributeCondition) -> Condition:
        subject = JsonPath(self.dialect, contacts.c.attributes, node.path)
        return self._two_valued(self.json_test(subject, node.test))

    def _TagCondition(self, node: m.TagCondition) -> Condition:
        return self._having_row(tags, [tags.c.tag == node.tag])

    def _ConsentCondition(self, node: m.ConsentCondition) -> Condition:
        recorded = sorted(node.statuses - {"unknown"})
        if "unknown" not in node.statuses:
            return self._having_row(
                consents, [consents.c.channel == node.channel, consents.c.status.in_(recorded)]
            )
        others = [consents.c.channel == node.channel]
        if recorded:
            others.append(consents.c.status.not_in(recorded))
        return not_(self._having_row(consents, others))

    def _ScoreCondition(self, node: m.ScoreCondition) -> Condition:
        if node.model == "main":
            return self._two_valued(self.subject_test(contacts.c.score, Kind.number, node.test))
        model_id = self.catalog.score_models.get(node.model)
        if model_id is None:
            return false()
        return self._row_test(
            scores,
            [scores.c.model_id == model_id],
            self.subject_test(scores.c.score, Kind.number, node.test),
            holds_without_row=values.test_value(node.test, 0, today=self.today),
        )

    def _SegmentCondition(self, node: m.SegmentCondition) -> Condition:
        segment_id = self.catalog.segments.get(node.segment)
        if segment_id is None:
            return false()
        return self._having_row(
            memberships,
            [memberships.c.segment_id == segment_id, memberships.c.exited_at.is_(None)],
        )

    def _TraitCondition(self, node: m.TraitCondition) -> Condition:
        if node.kind is Kind.days_since:
            test = self._days_since(traits.c.last_purchase_at, node.test)
        else:
            test = self.subject_test(traits.c[node.trait], node.kind, node.test)
        holds = values.test_subject(
            node.test, node.kind, None, now=self.now, stages=self.catalog.stages
        )
        return self._row_test(traits, [], test, holds_without_row=holds)

    # --- behaviour ---

    def _Performed(self, node: m.Performed) -> Condition:
        where = self._event_conditions(node.event, node.where, node.window)
        count = func.count()
        holds_on_none = values.test_value(node.count, 0, today=self.today)
        if not self.correlated and node.count.op is Op.ge and node.count.value == 1:
            return self._events_in(where, None)
        if not self.correlated and node.count.op is Op.eq and node.count.value == 0:
            if self.sqlite:
                return not_(self._events_in(where, None))
            # PostgreSQL runs NOT EXISTS as an anti join over the contact index; NOT IN
            # needs the whole list hashed in work_mem, or it scans every event.
            return not_(exists(select(1).where(events.c.contact_id == contacts.c.id, *where)))
        return self._aggregate(
            where, count, lambda c: self.number_test(c, node.count), holds_on_none
        )

    def _Occurrence(self, node: m.Occurrence) -> Condition:
        where = self._event_conditions(node.event, node.where, m.Window())
        column = events.c.occurred_at
        moment = type_coerce(
            func.min(column) if node.which == "first" else func.max(column), UTCDateTime
        )
        holds = values.test_timestamp(node.test, None, now=self.now)
        return self._aggregate(where, moment, lambda t: self.timestamp_test(t, node.test), holds)

    def _Purchases(self, node: m.Purchases) -> Condition:
        where = self._event_conditions(self.catalog.purchase_event, None, node.window)
        revenue = self._revenue()
        aggregate: ColumnElement[Any]
        if node.measure == "revenue":
            aggregate = func.coalesce(func.sum(revenue), 0)
            empty: float | None = 0
        elif node.measure == "count":
            aggregate, empty = func.count(), 0
        else:
            aggregate, empty = func.avg(revenue), None
        holds = values.test_value(node.test, empty, today=self.today)
        return self._aggregate(where, aggregate, lambda a: self.number_test(a, node.test), holds)

    def _revenue(self) -> ColumnElement[Any]:
        return revenue_sql(events.c.properties, self.dialect)

    def _event_conditions(
        self, name: str, where: m.PropertyFilter | None, window: m.Window
    ) -> list[Condition]:
        by_name: ColumnElement[Any] = events.c.name
        if self.correlated and self.sqlite:
            # For one contact the (contact_id, occurred_at) index is the way in; without
            # statistics SQLite would pick (name, occurred_at) and read everyone's events.
            by_name = by_name.op("||")(literal("", String))
        found: list[Condition] = [by_name == name]
        if window.days is not None:
            found.append(events.c.occurred_at >= self.now - timedelta(days=window.days))
        if window.start is not None and window.end is not None:
            found.append(events.c.occurred_at >= window.start)
            found.append(events.c.occurred_at < window.end)
        if where is not None:
            found.append(self.property_condition(where))
        return found

    def property_condition(self, node: m.PropertyFilter) -> Condition:
        if isinstance(node, m.PropertyAll):
            return and_(*(self.property_condition(item) for item in node.items))
        if isinstance(node, m.PropertyAny):
            return or_(*(self.property_condition(item) for item in node.items))
        if isinstance(node, m.PropertyNot):
            return not_(self.property_condition(node.item))
        subject = JsonPath(self.dialect, events.c.properties, node.path)
        return self._two_valued(self.json_test(subject, node.test))

    # --- shapes of conditions on other tables ---

    def _having_row(self, table: Any, conditions: list[Condition]) -> Condition:
        """The contact has a row in `table` that meets `conditions`."""
        if self.correlated:
            return exists(
                select(1).select_from(table).where(table.c.contact_id == contacts.c.id, *conditions)
            )
        return contacts.c.id.in_(select(table.c.contact_id).where(*conditions))

    def _row_test(
        self, table: Any, conditions: list[Condition], test: Condition, *, holds_without_row: bool
    ) -> Condition:
        """A test on the contact's one row in `table` (traits, a score), where a contact
        without the row is judged by `holds_without_row`."""
        if holds_without_row:
            return not_(self._having_row(table, [*conditions, not_(self._two_valued(test))]))
        return self._having_row(table, [*conditions, test])

    def _events_in(self, conditions: list[Condition], having: Condition | None) -> Condition:
        query = select(events.c.contact_id).where(events.c.contact_id.is_not(None), *conditions)
        if having is not None:
            query = query.group_by(events.c.contact_id).having(having)
        return contacts.c.id.in_(query)

    def _aggregate(
        self,
        conditions: list[Condition],
        aggregate: ColumnElement[Any],
        test: Callable[[ColumnElement[Any]], Condition],
        holds_on_none: bool,
    ) -> Condition:
        """A test on an aggregate of the contact's events that meet `conditions`;
        `holds_on_none` is the test's answer for a contact with no such event."""
        if self.correlated:
            value = (
                select(aggregate)
                .where(events.c.contact_id == contacts.c.id, *conditions)
                .scalar_subquery()
            )
            return self._two_valued(test(value))
        if holds_on_none:
            return not_(self._events_in(conditions, not_(self._two_valued(test(aggregate)))))
        return self._events_in(conditions, test(aggregate))

    # --- tests on one value ---

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
        if not self.sqlite:  # jsonb equality keeps types apart: "1" is not 1, true is not 1
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
        op, operand, now = test.op, test.value, self.now
        if op is Op.exists:
            return value.is_not(None)
        if op is Op.empty:
            return value.is_(None)
        if op in (Op.before, Op.after):
            return _compare(value, Op.lt if op is Op.before else Op.ge, operand)
        if op is Op.between:
            return and_(value >= operand[0], value < operand[1])
        if op is Op.within_last_days:
            return and_(value >= now - timedelta(days=operand), value <= now)
        if op is Op.more_than_days_ago:
            return value < now - timedelta(days=operand)
        raise AssertionError(op)

    def _days_since(self, column: Any, test: Test) -> Condition:
        """Whole days since `column` (floor), tested without date arithmetic in SQL:
        days >= n exactly when the moment is at or before now - n days."""
        op, operand = test.op, test.value
        if op in (Op.exists, Op.empty):
            return self.timestamp_test(column, test)

        def at_least(n: int) -> Condition:
            found: Condition = column <= self.now - timedelta(days=n)
            return found

        def at_most(n: int) -> Condition:
            found: Condition = column > self.now - timedelta(days=n + 1)
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
        """Date operators on text that starts with YYYY-MM-DD (a date attribute)."""
        if self.sqlite:
            looks_like_date = value.op("GLOB")("[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]*")
            day: ColumnElement[Any] = case((looks_like_date, func.substr(value, 1, 10)))
        else:
            looks_like_date = value.op("~")("^[0-9]{4}-[0-9]{2}-[0-9]{2}")
            day = case((looks_like_date, func.substr(value, 1, 10))).collate("C")
        return self._day_test(day, test)

    def _day_test(self, day: ColumnElement[Any], test: Test) -> Condition:
        op, operand, today = test.op, test.value, self.today
        if op in (Op.before, Op.after):
            return _compare(day, Op.lt if op is Op.before else Op.gt, operand)
        # BETWEEN: SQLite works the day out once for both bounds.
        if op is Op.within_last_days:
            return day.between((today - timedelta(days=operand)).isoformat(), today.isoformat())
        if op is Op.more_than_days_ago:
            return day < (today - timedelta(days=operand)).isoformat()
        if op is Op.anniversary_within_days:
            return func.substr(day, 6, 5).in_(values.anniversary_days(today, operand))
        if op is Op.age_between:
            low, high = values.age_bounds(today, *operand)
            # `day` has exactly ten characters, so day > low is day >= low + any suffix
            # (not the next date: "1990-01-32" lies between the 31st and February).
            return day.between(low + "T", high)
        raise AssertionError(op)


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
