"""Every query of the messages feature."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from postillon.kit.repository import chunked, insert_rows, one_of
from postillon.models import Contact, EmailTemplate, Message


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
