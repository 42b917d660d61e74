"""Every query of the demo loader."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from postillon.kit.repository import chunked, one_of, update_rows
from postillon.models import Contact, ContactConsent, ContactTag, Event

DEMO_PREFIX = "demo-"


def has_contacts(session: Session) -> bool:
    return session.scalar(select(Contact.id).limit(1)) is not None


def stored_external_ids(session: Session, external_ids: Collection[str]) -> set[str]:
    found: set[str] = set()
    for part in chunked(sorted(external_ids)):
        query = select(Contact.external_id).where(one_of(session, Contact.external_id, part))
        found.update(value for value in session.scalars(query) if value is not None)
    return found


def other_demo_external_id(session: Session, own: str) -> str | None:
    """The external id of a contact of another demo than the one `own` (an external id)
    belongs to, if there is one. (A scan of `contacts` when there is none: a `LIKE` cannot
    use the index under every collation.)"""
    own_prefix = own.rsplit("-", 1)[0] + "-"
    query = (
        select(Contact.external_id)
        .where(
            Contact.external_id.like(f"{DEMO_PREFIX}%"),
            Contact.external_id.not_like(f"{own_prefix}%"),
        )
        .limit(1)
    )
    return session.scalar(query)


def consent_events(
    session: Session, contact_ids: Sequence[uuid.UUID]
) -> list[tuple[int, uuid.UUID, str]]:
    """(event id, contact id, channel) of the contacts' `consent_changed` events."""
    found: list[tuple[int, uuid.UUID, str]] = []
    for part in chunked(contact_ids):
        query = select(Event.id, Event.contact_id, Event.properties).where(
            one_of(session, Event.contact_id, part),
            Event.type == "internal",
            Event.name == "consent_changed",
        )
        for event_id, contact_id, properties in session.execute(query):
            if contact_id is not None:
                found.append((event_id, contact_id, str(properties.get("channel"))))
    return found


def backdate(
    session: Session,
    *,
    contacts: Sequence[dict[str, Any]],
    consents: Sequence[dict[str, Any]],
    tags: Sequence[dict[str, Any]],
    events: Sequence[dict[str, Any]],
) -> None:
    """Give the demo's rows the times of its story: contacts `{id, created_at,
    last_seen_at, last_seen}`, consents `{contact_id, channel, changed_at}`, tags
    `{contact_id, tag, added_at}`, events `{id, occurred_at, received_at}`."""
    update_rows(session, Contact, contacts)
    update_rows(session, ContactConsent, consents)
    update_rows(session, ContactTag, tags)
    update_rows(session, Event, events)
