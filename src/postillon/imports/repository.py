"""Every query about imports and the contacts they touched."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from postillon.kit.repository import insert_rows
from postillon.models import ContactImport, ContactImportTouch


def start(session: Session, contact_import: ContactImport) -> None:
    session.add(contact_import)
    session.flush()


def finish(session: Session, import_id: uuid.UUID, **values: Any) -> None:
    session.execute(update(ContactImport).where(ContactImport.id == import_id).values(**values))


def get(session: Session, import_id: uuid.UUID) -> ContactImport | None:
    return session.get(ContactImport, import_id)


def recent(session: Session, limit: int) -> list[ContactImport]:
    query = select(ContactImport).order_by(ContactImport.started_at.desc()).limit(limit)
    return list(session.scalars(query))


def record_touches(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Remember contacts an import touched; the first touch of a contact (created) stays."""
    insert_rows(session, ContactImportTouch, rows, ignore_conflicts=True)


def touched_contacts(session: Session, import_id: uuid.UUID, *, action: str) -> list[uuid.UUID]:
    query = select(ContactImportTouch.contact_id).where(
        ContactImportTouch.import_id == import_id, ContactImportTouch.action == action
    )
    return list(session.scalars(query))
