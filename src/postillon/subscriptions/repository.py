"""Every query of the subscriptions feature: topics, contacts' topic choices, and what
the send check reads."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import delete, func, select, tuple_, update
from sqlalchemy.orm import Session

from postillon.kit.ids import sorted_ids
from postillon.kit.repository import chunked, insert_rows, one_of
from postillon.models import (
    Contact,
    ContactConsent,
    ContactTopic,
    EmailTemplate,
    EmailTopic,
    Message,
)


def topics(session: Session) -> list[EmailTopic]:
    return list(session.scalars(select(EmailTopic).order_by(EmailTopic.position, EmailTopic.key)))


def topic(session: Session, key: str) -> EmailTopic | None:
    return session.get(EmailTopic, key)


def next_topic_position(session: Session) -> int:
    return int(session.scalar(select(func.coalesce(func.max(EmailTopic.position), -1))) or 0) + 1


def add_topic(session: Session, row: dict[str, Any]) -> None:
    insert_rows(session, EmailTopic, [row])


def change_topic(session: Session, key: str, values: dict[str, Any]) -> None:
    session.execute(update(EmailTopic).where(EmailTopic.key == key).values(**values))


def delete_topic(session: Session, key: str) -> None:
    session.execute(delete(EmailTopic).where(EmailTopic.key == key))


def templates_on_topic(session: Session, key: str) -> list[str]:
    return list(session.scalars(select(EmailTemplate.key).where(EmailTemplate.topic == key)))


def topic_choices(
    session: Session, contact_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, dict[str, str]]:
    """Each contact's recorded topic statuses (topics without a row are not listed)."""
    found: dict[uuid.UUID, dict[str, str]] = {}
    for part in chunked(sorted_ids(contact_ids)):
        rows = session.execute(
            select(ContactTopic.contact_id, ContactTopic.topic, ContactTopic.status).where(
                one_of(session, ContactTopic.contact_id, part)
            )
        )
        for contact_id, key, status in rows:
            found.setdefault(contact_id, {})[key] = status
    return found


def set_topic_choices(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Replace the (contact, topic) rows given: one delete and one insert per batch."""
    for part in chunked(list(rows)):
        pairs = [(row["contact_id"], row["topic"]) for row in part]
        session.execute(
            delete(ContactTopic).where(
                tuple_(ContactTopic.contact_id, ContactTopic.topic).in_(pairs)
            )
        )
        insert_rows(session, ContactTopic, part)


def email_consents(session: Session, contact_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, str]:
    found: dict[uuid.UUID, str] = {}
    for part in chunked(sorted_ids(contact_ids)):
        rows = session.execute(
            select(ContactConsent.contact_id, ContactConsent.status).where(
                one_of(session, ContactConsent.contact_id, part), ContactConsent.channel == "email"
            )
        )
        found.update({contact_id: status for contact_id, status in rows})
    return found


def email_consent_rows(
    session: Session, contact_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, ContactConsent]:
    found: dict[uuid.UUID, ContactConsent] = {}
    for part in chunked(sorted_ids(contact_ids)):
        query = select(ContactConsent).where(
            one_of(session, ContactConsent.contact_id, part), ContactConsent.channel == "email"
        )
        found.update({row.contact_id: row for row in session.scalars(query)})
    return found


def contact(session: Session, contact_id: uuid.UUID) -> Contact | None:
    return session.get(Contact, contact_id)


def message(session: Session, message_id: uuid.UUID) -> Message | None:
    return session.get(Message, message_id)


def mark_unsubscribed(session: Session, message_id: uuid.UUID, now: Any) -> None:
    """The first unsubscribe through a message is the one its statistics count."""
    session.execute(
        update(Message)
        .where(Message.id == message_id, Message.unsubscribed_at.is_(None))
        .values(unsubscribed_at=now)
    )
