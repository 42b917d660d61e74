"""Every query of the messages feature."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session

from postillon.kit.repository import chunked, insert_rows, one_of, update_rows
from postillon.models import Contact, EmailTemplate, Event, Message, Suppression


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


def insert_messages(session: Session, rows: Sequence[dict[str, Any]]) -> int | None:
    """Rows whose `dedupe_key` exists already are skipped (not an error). Returns how many
    were inserted, if the driver says."""
    return insert_rows(session, Message, rows, ignore_conflicts=True)


def ids_by_dedupe_key(session: Session, keys: Sequence[str]) -> dict[str, uuid.UUID]:
    found: dict[str, uuid.UUID] = {}
    for chunk in chunked(list(keys)):
        rows = session.execute(
            select(Message.dedupe_key, Message.id).where(one_of(session, Message.dedupe_key, chunk))
        )
        found.update({row.dedupe_key: row.id for row in rows})
    return found


# Sending: claiming due messages and recording what became of them.


def claim_due(session: Session, now: datetime, limit: int) -> list[uuid.UUID]:
    """Move up to `limit` due queued messages to `sending`, oldest due first. On
    PostgreSQL rows another worker holds are skipped; SQLite's write lock serialises."""
    due = (
        select(Message.id)
        .where(Message.state == "queued", Message.due_at <= now)
        .order_by(Message.due_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    claimed = session.execute(
        update(Message)
        .where(Message.id.in_(due.scalar_subquery()))
        .values(state="sending", claimed_at=now)
        .returning(Message.id)
        .execution_options(synchronize_session=False)
    )
    return list(claimed.scalars())


def expire_claims(session: Session, claimed_before: datetime, reason: str) -> list[uuid.UUID]:
    """Messages a worker claimed and never finished: `unknown`, never re-sent."""
    expired = session.execute(
        update(Message)
        .where(Message.state == "sending", Message.claimed_at < claimed_before)
        .values(state="unknown", last_error=reason)
        .returning(Message.id)
        .execution_options(synchronize_session=False)
    )
    return list(expired.scalars())


def release_claims(session: Session, ids: Sequence[uuid.UUID], reason: str) -> None:
    """Claimed messages that were not handed over after all go back to the queue."""
    for chunk in chunked(list(ids)):
        session.execute(
            update(Message)
            .where(one_of(session, Message.id, chunk), Message.state == "sending")
            .values(state="queued", claimed_at=None, last_error=reason)
            .execution_options(synchronize_session=False)
        )


class ClaimedMessage(NamedTuple):
    """What the send path reads of a claimed message: a plain row, not an ORM object
    (the send path reads a thousand a second)."""

    id: uuid.UUID
    contact_id: uuid.UUID
    kind: str
    topic: str | None
    template_id: uuid.UUID | None
    broadcast_id: uuid.UUID | None
    to_address: str
    context: dict[str, Any] | None
    attempts: int
    queued_at: datetime


_CLAIMED_COLUMNS = [Message.__table__.c[name] for name in ClaimedMessage._fields]


def claimed_messages(session: Session, ids: Sequence[uuid.UUID]) -> list[ClaimedMessage]:
    found: list[ClaimedMessage] = []
    make = ClaimedMessage._make
    for chunk in chunked(list(ids)):
        rows = session.execute(select(*_CLAIMED_COLUMNS).where(one_of(session, Message.id, chunk)))
        found.extend(map(make, rows))
    return found


def update_messages(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Rows carrying `id` and the same other columns each."""
    update_rows(session, Message, rows)


def count_by_state(session: Session) -> dict[str, int]:
    rows = session.execute(select(Message.state, func.count()).group_by(Message.state))
    return {state: count for state, count in rows}


def contact_messages_page(
    session: Session, contact_id: uuid.UUID, *, after: tuple[datetime, uuid.UUID] | None, limit: int
) -> list[Message]:
    """A contact's messages, newest first, after the (queued_at, id) of the last one seen."""
    query = select(Message).where(Message.contact_id == contact_id)
    if after is not None:
        queued_at, message_id = after
        query = query.where(
            or_(
                Message.queued_at < queued_at,
                and_(Message.queued_at == queued_at, Message.id < message_id),
            )
        )
    query = query.order_by(Message.queued_at.desc(), Message.id.desc()).limit(limit)
    return list(session.scalars(query))


def get_message(session: Session, message_id: uuid.UUID) -> Message | None:
    return session.get(Message, message_id)


def template_by_key(session: Session, key: str) -> EmailTemplate | None:
    return session.scalar(select(EmailTemplate).where(EmailTemplate.key == key))


def contact_ids_by_email(session: Session, emails: Sequence[str]) -> dict[str, uuid.UUID]:
    found: dict[str, uuid.UUID] = {}
    for chunk in chunked(sorted(set(emails))):
        rows = session.execute(
            select(Contact.email, Contact.id).where(one_of(session, Contact.email, chunk))
        )
        found.update({email: contact_id for email, contact_id in rows if email})
    return found


def insert_suppressions(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Addresses already on the list keep their first reason."""
    insert_rows(session, Suppression, rows, ignore_conflicts=True)


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


def count_machine_open(session: Session, message_id: uuid.UUID) -> None:
    """One more open of the message by a privacy proxy or scanner."""
    session.execute(
        update(Message)
        .where(Message.id == message_id)
        .values(machine_opens=Message.machine_opens + 1)
    )
