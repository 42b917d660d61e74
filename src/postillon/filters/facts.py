"""What the Python evaluator knows about a contact, loaded for many contacts at once."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from postillon.contacts import repository as contacts_repository
from postillon.filters import model as m
from postillon.filters import repository
from postillon.filters.sql import Catalog


@dataclass(frozen=True)
class EventFact:
    name: str
    occurred_at: datetime
    properties: dict[str, Any]


@dataclass
class ContactFacts:
    contact: dict[str, Any]
    tags: set[str] = field(default_factory=set)
    consents: dict[str, str] = field(default_factory=dict)
    scores: dict[str, int] = field(default_factory=dict)  # by model key, `main` included
    segments: set[str] = field(default_factory=set)  # keys of current memberships
    traits: dict[str, Any] | None = None
    events: list[EventFact] = field(default_factory=list)  # only the names a filter needs


def event_names(node: m.Filter, catalog: Catalog) -> set[str]:
    """The event names whose events decide `node`."""
    return {name for name in _walk_events(node, catalog)}


def _walk_events(node: m.Filter, catalog: Catalog) -> Iterator[str]:
    if isinstance(node, m.All | m.AnyOf):
        for item in node.items:
            yield from _walk_events(item, catalog)
    elif isinstance(node, m.Not):
        yield from _walk_events(node.item, catalog)
    elif isinstance(node, m.Performed | m.Occurrence):
        yield node.event
    elif isinstance(node, m.Purchases):
        yield catalog.purchase_event


def load_facts(
    session: Session,
    contact_ids: Collection[uuid.UUID],
    *,
    catalog: Catalog,
    event_names: Collection[str] = (),
) -> dict[uuid.UUID, ContactFacts]:
    """Facts of the existing contacts among `contact_ids`, with their events of
    `event_names`: a handful of queries, whatever the number of contacts."""
    rows = contacts_repository.rows_by_ids(session, contact_ids)
    facts = {row["id"]: ContactFacts(contact=row) for row in rows}
    if not facts:
        return facts
    ids = list(facts)
    for contact_id, tags in contacts_repository.tags_of(session, ids).items():
        facts[contact_id].tags = tags
    for contact_id, statuses in contacts_repository.consent_statuses(session, ids).items():
        facts[contact_id].consents = statuses
    for one in facts.values():
        one.scores["main"] = one.contact["score"]
    for contact_id, key, score in repository.model_scores(session, ids):
        facts[contact_id].scores[key] = score
    for contact_id, key in repository.current_segments(session, ids):
        facts[contact_id].segments.add(key)
    for row in repository.traits_of(session, ids):
        facts[row["contact_id"]].traits = row
    if event_names:
        for contact_id, name, occurred_at, properties in repository.events_named(
            session, ids, sorted(event_names)
        ):
            facts[contact_id].events.append(EventFact(name, occurred_at, properties or {}))
    return facts
