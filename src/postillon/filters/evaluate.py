"""Filters decided for one contact in Python, from its facts: what journeys and rules use.

The meaning is the one of `values`; the SQL compiler (`sql`) must agree with it, which
`tests/filters/test_agreement.py` checks on random filters and data.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from statistics import fmean
from typing import Any

from postillon.filters import model as m
from postillon.filters import values
from postillon.filters.facts import ContactFacts, EventFact
from postillon.filters.sql import Catalog
from postillon.traits.purchases import order_revenue


class Evaluator:
    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.now = catalog.now
        self.today = catalog.now.date()

    def matches(self, node: m.Filter, facts: ContactFacts) -> bool:
        if isinstance(node, m.All):
            return all(self.matches(item, facts) for item in node.items)
        if isinstance(node, m.AnyOf):
            return any(self.matches(item, facts) for item in node.items)
        if isinstance(node, m.Not):
            return not self.matches(node.item, facts)
        if isinstance(node, m.FieldCondition):
            if node.field.startswith("last_seen."):
                stored = _at(facts.contact.get("last_seen"), [node.field.split(".", 1)[1]])
            else:
                stored = facts.contact.get(node.field)
            return self._test(node.test, node.kind, stored)
        if isinstance(node, m.AttributeCondition):
            return self._test(
                node.test, m.Kind.json, _at(facts.contact.get("attributes"), node.path)
            )
        if isinstance(node, m.TagCondition):
            return node.tag in facts.tags
        if isinstance(node, m.ConsentCondition):
            return facts.consents.get(node.channel, "unknown") in node.statuses
        if isinstance(node, m.ScoreCondition):
            if node.model != "main" and node.model not in self.catalog.score_models:
                return False
            return self._test(node.test, m.Kind.number, facts.scores.get(node.model, 0))
        if isinstance(node, m.SegmentCondition):
            return node.segment in facts.segments and node.segment in self.catalog.segments
        if isinstance(node, m.TraitCondition):
            row = facts.traits or {}
            column = "last_purchase_at" if node.kind is m.Kind.days_since else node.trait
            return self._test(node.test, node.kind, row.get(column))
        if isinstance(node, m.Performed):
            count = sum(1 for _ in self._events(facts, node.event, node.where, node.window))
            return values.test_value(node.count, count, today=self.today)
        if isinstance(node, m.Occurrence):
            moments = [
                e.occurred_at for e in self._events(facts, node.event, node.where, m.Window())
            ]
            moment = (min if node.which == "first" else max)(moments, default=None)
            return values.test_timestamp(node.test, moment, now=self.now)
        if isinstance(node, m.Purchases):
            return self._purchases(node, facts)
        raise AssertionError(node)

    def matches_properties(self, node: m.PropertyFilter, properties: dict[str, Any]) -> bool:
        if isinstance(node, m.PropertyAll):
            return all(self.matches_properties(item, properties) for item in node.items)
        if isinstance(node, m.PropertyAny):
            return any(self.matches_properties(item, properties) for item in node.items)
        if isinstance(node, m.PropertyNot):
            return not self.matches_properties(node.item, properties)
        return values.test_value(node.test, _at(properties, node.path), today=self.today)

    def _test(self, test: m.Test, kind: m.Kind, stored: Any) -> bool:
        return values.test_subject(test, kind, stored, now=self.now, stages=self.catalog.stages)

    def _events(
        self,
        facts: ContactFacts,
        name: str,
        where: m.PropertyFilter | None,
        window: m.Window,
    ) -> Iterator[EventFact]:
        since = self.now - timedelta(days=window.days) if window.days is not None else None
        for event in facts.events:
            if event.name != name:
                continue
            if since is not None and event.occurred_at < since:
                continue
            if (
                window.start is not None
                and window.end is not None
                and not window.start <= event.occurred_at < window.end
            ):
                continue
            if where is not None and not self.matches_properties(where, event.properties):
                continue
            yield event

    def _purchases(self, node: m.Purchases, facts: ContactFacts) -> bool:
        orders = list(self._events(facts, self.catalog.purchase_event, None, node.window))
        revenues = [order_revenue(order.properties) for order in orders]
        measured: float | None
        if node.measure == "revenue":
            measured = sum(revenues)
        elif node.measure == "count":
            measured = len(orders)
        else:
            measured = fmean(revenues) if revenues else None
        return values.test_value(node.test, measured, today=self.today)


def _at(document: Any, path: Any) -> Any:
    for part in path:
        if not isinstance(document, dict):
            return None
        document = document.get(part)
    return document


def matches_properties(node: m.PropertyFilter, properties: dict[str, Any], now: datetime) -> bool:
    """Whether an event's properties pass a property filter (scoring rules, triggers)."""
    return Evaluator(Catalog(now=now)).matches_properties(node, properties)
