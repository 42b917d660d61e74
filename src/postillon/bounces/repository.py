"""Every query of the bounces feature."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from postillon.models import Contact, Message


def message_with_email(
    session: Session, message_id: uuid.UUID
) -> tuple[Message, str | None] | None:
    """A message and its contact's current address."""
    query = (
        select(Message, Contact.email)
        .join(Contact, Contact.id == Message.contact_id)
        .where(Message.id == message_id)
    )
    row = session.execute(query).first()
    return None if row is None else (row[0], row[1])


def message_id_by_smtp_id(session: Session, smtp_message_id: str) -> uuid.UUID | None:
    query = select(Message.id).where(Message.smtp_message_id == smtp_message_id).limit(1)
    return session.scalar(query)


def last_message_to(session: Session, address: str) -> uuid.UUID | None:
    """The most recently sent message to an address (a report that names only it)."""
    query = (
        select(Message.id)
        .where(Message.to_address == address, Message.sent_at.is_not(None))
        .order_by(Message.sent_at.desc(), Message.id.desc())
        .limit(1)
    )
    return session.scalar(query)


def update_message(session: Session, message_id: uuid.UUID, values: dict[str, Any]) -> None:
    session.execute(update(Message).where(Message.id == message_id).values(**values))


def soft_bounces_in_a_row(session: Session, contact_id: uuid.UUID) -> int:
    """Messages of the contact that soft-bounced since their last sign of a person reading
    (a human open or click of any message): a reader's mailbox works."""
    engaged = select(func.max(func.coalesce(Message.clicked_at, Message.opened_at))).where(
        Message.contact_id == contact_id
    )
    last_engaged: datetime | None = session.scalar(engaged)
    query = select(func.count()).where(
        Message.contact_id == contact_id,
        Message.bounce_kind == "soft",
        Message.bounced_at.is_not(None),
    )
    if last_engaged is not None:
        query = query.where(Message.bounced_at > last_engaged)
    return int(session.scalar(query) or 0)
