"""Every query of the messages feature."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from postillon.kit.repository import chunked, insert_rows, one_of
from postillon.models import Contact, EmailTemplate, Event, Message


def emails_of(session: Session, contact_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, str | None]:
    found: dict[uuid.UUID, str | None] = {}
    for chunk in chunked(list(dict.fromkeys(contact_ids))):
        rows = session.execute(
            select(Contact.id, Contact.email).where(one_of(session, Contact.id, chunk))
        )
        found.update({row.id: row.email for row in rows})
    return found


def templates_by_id(
    session: Session, template_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, EmailTemplate]:
    if not template_ids:
        return {}
    query = select(EmailTemplate).where(one_of(session, EmailTemplate.id, list(template_ids)))
    return {template.id: template for template in session.scalars(query)}


def insert_messages(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Rows whose `dedupe_key` exists already are skipped (not an error)."""
    insert_rows(session, Message, rows, ignore_conflicts=True)


def ids_by_dedupe_key(session: Session, keys: Sequence[str]) -> dict[str, uuid.UUID]:
    found: dict[str, uuid.UUID] = {}
    for chunk in chunked(list(keys)):
        rows = session.execute(
            select(Message.dedupe_key, Message.id).where(one_of(session, Message.dedupe_key, chunk))
        )
        found.update({row.dedupe_key: row.id for row in rows})
    return found


# Tracking (messages/tracking.py).


def message_for_tracking(
    session: Session, message_id: uuid.UUID
) -> tuple[Message, str | None] | None:
    """The message and its template's key."""
    query = (
        select(Message, EmailTemplate.key)
        .outerjoin(EmailTemplate, EmailTemplate.id == Message.template_id)
        .where(Message.id == message_id)
    )
    row = session.execute(query).first()
    return None if row is None else (row[0], row[1])


def recent_clicked_urls(
    session: Session, contact_id: uuid.UUID, message_id: str, *, since: datetime
) -> set[str]:
    """The links of one message its contact clicked since `since` (their timeline's tail)."""
    query = select(Event.properties).where(
        Event.contact_id == contact_id, Event.occurred_at >= since, Event.name == "email_clicked"
    )
    return {
        str(properties.get("url"))
        for properties in session.scalars(query)
        if properties.get("message_id") == message_id
    }


def record_first_hits(
    session: Session, message_id: uuid.UUID, *, clicked: bool, now: datetime
) -> None:
    """A person's first open (and click: a click is an open too) of a message."""
    session.execute(
        update(Message)
        .where(Message.id == message_id, Message.opened_at.is_(None))
        .values(opened_at=now)
    )
    if clicked:
        session.execute(
            update(Message)
            .where(Message.id == message_id, Message.clicked_at.is_(None))
            .values(clicked_at=now)
        )
