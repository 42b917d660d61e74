"""The queries of rule firing: which events a rule handled, when it last fired, and the
contacts a rule run by hand is for (a segment's members, an import's contacts)."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from postillon.kit.ids import sorted_ids
from postillon.kit.repository import chunked, one_of
from postillon.models import (
    AutomationHistory,
    Contact,
    ContactImport,
    ContactImportTouch,
    Segment,
    SegmentMembership,
)


def rule_events_handled(
    session: Session, automation_id: uuid.UUID, pairs: Collection[tuple[int, uuid.UUID]]
) -> set[tuple[int, uuid.UUID]]:
    """Which (event id, contact id) pairs have history for this automation already: the
    rule handled them before (a replayed batch)."""
    if not pairs:
        return set()
    events = sorted({event_id for event_id, _ in pairs})
    contacts = sorted({contact_id for _, contact_id in pairs})
    found: set[tuple[int, uuid.UUID]] = set()
    for part in chunked(contacts):
        query = select(AutomationHistory.event_id, AutomationHistory.contact_id).where(
            AutomationHistory.automation_id == automation_id,
            one_of(session, AutomationHistory.contact_id, part),
            AutomationHistory.event_id.between(events[0], events[-1]),
        )
        found.update((e, c) for e, c in session.execute(query.distinct()) if e is not None)
    return found & set(pairs)


def last_fired(
    session: Session, automation_id: uuid.UUID, contact_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, datetime]:
    """When the rule last fired for each of these contacts (those it never fired for are
    left out)."""
    found: dict[uuid.UUID, datetime] = {}
    for part in chunked(sorted_ids(contact_ids)):
        query = (
            select(AutomationHistory.contact_id, func.max(AutomationHistory.at))
            .where(
                AutomationHistory.automation_id == automation_id,
                one_of(session, AutomationHistory.contact_id, part),
                AutomationHistory.outcome == "fired",
            )
            .group_by(AutomationHistory.contact_id)
        )
        found.update({contact_id: at for contact_id, at in session.execute(query)})
    return found


def existing_contacts(session: Session, ids: Collection[uuid.UUID]) -> set[uuid.UUID]:
    found: set[uuid.UUID] = set()
    for part in chunked(sorted_ids(ids)):
        found.update(session.scalars(select(Contact.id).where(one_of(session, Contact.id, part))))
    return found


def segment_id(session: Session, key: str) -> uuid.UUID | None:
    return session.scalar(select(Segment.id).where(Segment.key == key))


def segment_members(session: Session, segment: uuid.UUID) -> list[uuid.UUID]:
    """The segment's current members, by contact id."""
    query = select(SegmentMembership.contact_id).where(
        SegmentMembership.segment_id == segment, SegmentMembership.exited_at.is_(None)
    )
    return list(session.scalars(query.order_by(SegmentMembership.contact_id)))


def import_exists(session: Session, import_id: uuid.UUID) -> bool:
    return session.get(ContactImport, import_id) is not None


def import_contacts(session: Session, import_id: uuid.UUID) -> list[uuid.UUID]:
    """The contacts an import created or updated."""
    query = select(ContactImportTouch.contact_id).where(ContactImportTouch.import_id == import_id)
    return list(session.scalars(query.order_by(ContactImportTouch.contact_id)))
