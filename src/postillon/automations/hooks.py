"""The points where contact changes made without events reach automations.

Contacts created through the API, tracking or a rule get their `contact_created` event
from `contacts.upsert.apply_changes`; a CSV import records none (a large file would flood
the timelines and the event queue), and hands its created contacts here only when asked
to run the automations (`--run-automations`, `POST /api/imports/{id}/automations`).
The events then reach rules and journeys through the `automations` event consumer.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.orm import Session

from postillon.events import repository as events_repository
from postillon.events.service import InternalEvent, record_internal
from postillon.kit.repository import chunked

CONTACT_CREATED = "contact_created"


def contacts_created(
    session: Session, contact_ids: Sequence[uuid.UUID], *, now: datetime, source: str
) -> int:
    """Record `contact_created` for these contacts (those that have one already are left
    out, so running an import's automations twice starts nothing twice); returns how
    many were recorded."""
    recorded = 0
    for part in chunked(sorted(set(contact_ids)), 5000):
        done = events_repository.contacts_with_event(session, CONTACT_CREATED, part)
        fresh = [c for c in part if c not in done]
        record_internal(
            session,
            [InternalEvent(c, CONTACT_CREATED, {"source": source}) for c in fresh],
            now=now,
        )
        recorded += len(fresh)
    return recorded
