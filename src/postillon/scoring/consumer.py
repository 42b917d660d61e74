"""The `lead_scoring` event-queue consumer: scoring rules applied to stored events.

For a batch of events: one query for the enabled rules on the event names present, one
for which (once-rule, contact) pairs have given points already, one for what the limited
rules gave each contact today; the matching happens in memory, event by event in id order
(a once-rule fires for a contact's first matching event only; daily limits accumulate
within the batch and cap the last points given); then `ledger.apply_changes` writes the
scores, the history, the `score_reached` events and the refresh-queue rows.

A `score_reached` event this batch emits goes to the queue and is scored in a later batch,
never in this one; and points that a `score_reached` event caused do not announce
thresholds again, so rules on it cannot feed one another forever.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time

from sqlalchemy.orm import Session

from postillon.errors import InvalidInput
from postillon.events.service import INTERNAL
from postillon.filters import PropertyFilter, parse_property_filter
from postillon.filters.evaluate import matches_properties
from postillon.models import Event, ScoringRule
from postillon.scoring import repository
from postillon.scoring.ledger import SCORE_REACHED, Change, Reason, apply_changes

logger = logging.getLogger("postillon.scoring")

ONCE = "once"


@dataclass(frozen=True)
class ParsedRule:
    """A rule with its property filter checked and built."""

    row: ScoringRule
    where: PropertyFilter | None


class LeadScoringConsumer:
    """Event-queue consumer: scoring rules → score changes."""

    name = "lead_scoring"

    def handle(self, session: Session, events: Sequence[Event], now: datetime) -> None:
        scored = sorted((e for e in events if e.contact_id is not None), key=lambda e: e.id)
        if not scored:
            return
        rows = repository.enabled_rules_for(session, {e.name for e in scored})
        if not rows:
            return
        repository.serialize_scoring(session)
        changes = plan_changes(session, scored, _parsed(rows), now=now)
        apply_changes(session, changes, now=now)


def plan_changes(
    session: Session, events: Sequence[Event], rules: Sequence[ParsedRule], *, now: datetime
) -> list[Change]:
    """The score changes `rules` make for `events` (in id order, each with a contact)."""
    by_event: dict[str, list[ParsedRule]] = {}
    for rule in rules:
        by_event.setdefault(rule.row.event, []).append(rule)
    matches: list[tuple[Event, ParsedRule]] = []
    for event in events:
        for rule in by_event.get(event.name, ()):
            if rule.where is None or matches_properties(rule.where, event.properties or {}, now):
                matches.append((event, rule))
    if not matches:
        return []
    contacts = {event.contact_id for event, _ in matches if event.contact_id is not None}
    once_ids = {r.row.id for _, r in matches if r.row.frequency == ONCE}
    limited_ids = {r.row.id for _, r in matches if r.row.daily_limit is not None}
    fired = repository.rule_pairs_with_history(session, once_ids, contacts)
    day_start = datetime.combine(now.date(), time(), tzinfo=now.tzinfo)
    given = repository.points_given_since(session, limited_ids, contacts, since=day_start)
    models = repository.models_by_id(session, {r.row.model_id for _, r in matches})

    changes: list[Change] = []
    for event, rule in matches:
        assert event.contact_id is not None
        pair = (rule.row.id, event.contact_id)
        if rule.row.frequency == ONCE:
            if pair in fired:
                continue
            fired.add(pair)
        points = rule.row.points
        if rule.row.daily_limit is not None:
            left = max(0, rule.row.daily_limit - given.get(pair, 0))
            points = max(-left, min(left, points))
            if points == 0:
                continue
            given[pair] = given.get(pair, 0) + abs(points)
        changes.append(
            Change(
                contact_id=event.contact_id,
                model=models[rule.row.model_id],
                delta=points,
                reason=Reason.rule,
                rule_id=rule.row.id,
                event_id=event.id,
                announce=not (event.type == INTERNAL and event.name == SCORE_REACHED),
            )
        )
    return changes


def _parsed(rows: Sequence[ScoringRule]) -> list[ParsedRule]:
    rules = []
    for row in rows:
        where = None
        if row.where is not None:
            try:
                where = parse_property_filter(row.where)
            except InvalidInput as error:
                # Checked when saved; only a change of the filter language gets here.
                logger.warning("scoring rule %s skipped: %s", row.id, error.message)
                continue
        rules.append(ParsedRule(row, where))
    return rules
