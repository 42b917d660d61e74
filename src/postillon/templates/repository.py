"""Every query of templates and content blocks."""

from __future__ import annotations

import uuid
from collections.abc import Collection

from sqlalchemy import delete, exists, select
from sqlalchemy.orm import Session

from postillon.kit.repository import chunked, one_of
from postillon.models import Contact, EmailTemplate, Message


def template_by_key(session: Session, key: str) -> EmailTemplate | None:
    return session.scalars(select(EmailTemplate).where(EmailTemplate.key == key)).one_or_none()


def templates_by_id(session: Session, ids: Collection[uuid.UUID]) -> dict[uuid.UUID, EmailTemplate]:
    found: dict[uuid.UUID, EmailTemplate] = {}
    for part in chunked(sorted(ids)):
        query = select(EmailTemplate).where(one_of(session, EmailTemplate.id, part))
        found.update((template.id, template) for template in session.scalars(query))
    return found


def all_templates(session: Session) -> list[EmailTemplate]:
    return list(session.scalars(select(EmailTemplate).order_by(EmailTemplate.key)))


def add_template(session: Session, template: EmailTemplate) -> None:
    session.add(template)
    session.flush()


def is_referenced(session: Session, template_id: uuid.UUID) -> bool:
    """Whether any message was made from the template."""
    return bool(session.scalar(select(exists().where(Message.template_id == template_id))))


def delete_template(session: Session, template_id: uuid.UUID) -> None:
    session.execute(delete(EmailTemplate).where(EmailTemplate.id == template_id))


def contact_id_by_email(session: Session, email: str) -> uuid.UUID | None:
    return session.scalar(select(Contact.id).where(Contact.email == email))
