"""Filters compiled to one SQL condition over `contacts`, for SQLite and PostgreSQL.

Two shapes, one meaning. For everyone (a segment's full refresh) conditions on other
tables become set lookups — `contacts.id IN (SELECT contact_id FROM events WHERE … GROUP
BY contact_id HAVING …)` — which both databases run as one pass over an index. For a few
listed contacts (incremental refresh, journeys) they become correlated subqueries that
look up only those contacts' rows. Every leaf inside a `not` is made two-valued (a
missing value is false, never NULL) so that `not` means "everyone else"; elsewhere NULL
counts as false already. Tests on one value are in `filters.sql_values`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    String,
    and_,
    any_,
    bindparam,
    exists,
    false,
    func,
    literal,
    not_,
    or_,
    select,
    type_coerce,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.sql.elements import UnaryExpression
from sqlalchemy.sql.operators import custom_op

from postillon.filters import model as m
from postillon.filters import values
from postillon.filters.json_path import JsonPath
from postillon.filters.model import Kind, Op
from postillon.filters.sql_values import Catalog as Catalog
from postillon.filters.sql_values import Condition, ValueTests
from postillon.kit.ids import sorted_ids
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
        query = query.where(contacts.c.id.in_(sorted_ids(contact_ids)))
    return query


@dataclass(frozen=True)
class ListedQuery:
    """A statement for listed contacts (`is_listed`), built once: run it for any contacts
    at any time with `parameters`."""

    statement: Any  # a SELECT, or a UNION ALL of them
    timed: dict[str, Callable[[datetime], Any]]

    def parameters(self, now: datetime, contact_ids: Collection[uuid.UUID]) -> dict[str, Any]:
        found = {name: value_at(now) for name, value_at in self.timed.items()}
        found[LISTED] = sorted_ids(contact_ids)
        return found


LISTED = "listed_contact_ids"


def is_listed(column: Any, dialect: str) -> Condition:
    """`column` is one of the contacts `ListedQuery.parameters` names. On PostgreSQL
    `= ANY(:array)`: one parameter however many contacts and however often it is used,
    so the statement's text stays the same and its prepared plan an index lookup."""
    if dialect == "postgresql":
        array = bindparam(LISTED, [], type_=postgresql.ARRAY(column.type))
        return column == any_(array)  # type: ignore[no-any-return]
    return column.in_(bindparam(LISTED, [], type_=column.type, expanding=True))  # type: ignore[no-any-return]


def listed_conditions(
    nodes: Sequence[m.Filter], catalog: Catalog, dialect: str
) -> tuple[list[Condition], dict[str, Callable[[datetime], Any]]]:
    """Conditions over `contacts` for listed contacts (correlated), one a filter, and the
    values in them that follow the time, by parameter name (distinct across them)."""
    timed: dict[str, Callable[[datetime], Any]] = {}
    conditions = [
        SqlCompiler(dialect, catalog, correlated=True, timed=timed).condition(node)
        for node in nodes
    ]
    return conditions, timed


def listed_query(node: m.Filter, catalog: Catalog, dialect: str) -> ListedQuery:
    """`select_members(…, contact_ids=…)` built once, to be run with `parameters`."""
    [condition], timed = listed_conditions([node], catalog, dialect)
    statement = select(contacts.c.id).where(condition, is_listed(contacts.c.id, dialect))
    return ListedQuery(statement, timed)


class SqlCompiler(ValueTests):
    def __init__(
        self,
        dialect: str,
        catalog: Catalog,
        *,
        correlated: bool,
        timed: dict[str, Callable[[datetime], Any]] | None = None,
    ) -> None:
        super().__init__(dialect, catalog, timed)
        self.correlated = correlated
        self._negations = 0  # how many `not`s the condition being compiled is inside

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
        self._negations += 1
        try:
            return not_(self.condition(node.item))
        finally:
            self._negations -= 1

    # --- the contact ---

    def _FieldCondition(self, node: m.FieldCondition) -> Condition:
        if node.field.startswith("last_seen."):
            subject = JsonPath(self.dialect, contacts.c.last_seen, [node.field.split(".", 1)[1]])
            return self._leaf(self.json_test(subject, node.test))
        column = contacts.c[node.field]
        return self._leaf(self.subject_test(column, node.kind, node.test))

    def _AttributeCondition(self, node: m.AttributeCondition) -> Condition:
        subject = JsonPath(self.dialect, contacts.c.attributes, node.path)
        return self._leaf(self.json_test(subject, node.test))

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
            return self._leaf(self.subject_test(contacts.c.score, Kind.number, node.test))
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
            found.append(events.c.occurred_at >= self.moment(window.days))
        if window.start is not None and window.end is not None:
            found.append(events.c.occurred_at >= window.start)
            found.append(events.c.occurred_at < window.end)
        if where is not None:
            found.append(self.property_condition(where))
        return found

    def property_condition(self, node: m.PropertyFilter) -> Condition:
        # The conditions of an event subquery's own WHERE: a `not` around the filter's
        # behaviour condition is outside it.
        outside, self._negations = self._negations, 0
        try:
            return self._property_condition(node)
        finally:
            self._negations = outside

    def _property_condition(self, node: m.PropertyFilter) -> Condition:
        if isinstance(node, m.PropertyAll):
            return and_(*(self._property_condition(item) for item in node.items))
        if isinstance(node, m.PropertyAny):
            return or_(*(self._property_condition(item) for item in node.items))
        if isinstance(node, m.PropertyNot):
            self._negations += 1
            try:
                return not_(self._property_condition(node.item))
            finally:
                self._negations -= 1
        subject = JsonPath(self.dialect, events.c.properties, node.path)
        return self._leaf(self.json_test(subject, node.test))

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
            by_contact: ColumnElement[Any] = events.c.contact_id
            if self.sqlite:
                # `+contact_id`: with statistics (ANALYZE) SQLite would group by walking
                # the (contact_id, …) index, reading every event, rather than take the
                # window from (name, occurred_at) and sort what it found.
                by_contact = UnaryExpression(
                    by_contact, operator=custom_op("+"), type_=by_contact.type
                )
            query = query.group_by(by_contact).having(having)
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
            return self._leaf(test(value))
        if holds_on_none:
            return not_(self._events_in(conditions, not_(self._two_valued(test(aggregate)))))
        return self._events_in(conditions, test(aggregate))

    # --- tests on one value ---

    def _leaf(self, condition: Condition) -> Condition:
        """A leaf made two-valued where a `not` is around it; elsewhere in a WHERE or
        HAVING, NULL already counts as false, and a bare condition keeps its selectivity
        for the planner (PostgreSQL guesses half the rows for any coalesce)."""
        return self._two_valued(condition) if self._negations else condition
