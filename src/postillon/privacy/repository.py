"""Every query about the suppression list and the records a GDPR export gathers."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from datetime import datetime

from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from postillon.kit.repository import chunked, insert_rows, one_of
from postillon.models import (
    ContactImport,
    ContactImportTouch,
    ContactMerge,
    ContactTopic,
    Suppression,
    Visitor,
)


def suppressed(session: Session, digests: Collection[str]) -> dict[str, str]:
    """The digests among `digests` on the list, with their reason."""
    found: dict[str, str] = {}
    for part in chunked(sorted(digests)):
        rows = session.execute(
            select(Suppression.address_digest, Suppression.reason).where(
                one_of(session, Suppression.address_digest, part)
            )
        )
        found.update({digest: reason for digest, reason in rows})
    return found


def any_erased(session: Session) -> bool:
    """Whether any address was ever erased (most installations: none, and then the
    per-address check can be skipped)."""
    query = select(Suppression.address_digest).where(Suppression.reason == "erased").limit(1)
    return session.scalar(query) is not None


def suppress(session: Session, *, digest: str, channel: str, reason: str, now: datetime) -> None:
    row = {"address_digest": digest, "channel": channel, "reason": reason, "created_at": now}
    insert_rows(session, Suppression, [row], ignore_conflicts=True)


def merges_of(session: Session, contact_id: uuid.UUID) -> list[ContactMerge]:
    query = (
        select(ContactMerge)
        .where(
            or_(ContactMerge.contact_id == contact_id, ContactMerge.merged_contact_id == contact_id)
        )
        .order_by(ContactMerge.merged_at)
    )
    return list(session.scalars(query))


def delete_merges_of(session: Session, contact_id: uuid.UUID) -> None:
    session.execute(
        delete(ContactMerge).where(
            or_(ContactMerge.contact_id == contact_id, ContactMerge.merged_contact_id == contact_id)
        )
    )


def imports_of(session: Session, contact_id: uuid.UUID) -> list[tuple[uuid.UUID, str, str]]:
    query = (
        select(ContactImport.id, ContactImport.filename, ContactImportTouch.action)
        .join(ContactImportTouch, ContactImportTouch.import_id == ContactImport.id)
        .where(ContactImportTouch.contact_id == contact_id)
        .order_by(ContactImport.started_at)
    )
    return [(i, f, a) for i, f, a in session.execute(query)]


def topic_choices_of(session: Session, contact_id: uuid.UUID) -> list[ContactTopic]:
    query = select(ContactTopic).where(ContactTopic.contact_id == contact_id)
    return list(session.scalars(query.order_by(ContactTopic.topic)))


def visitors_of(session: Session, contact_id: uuid.UUID) -> list[Visitor]:
    query = select(Visitor).where(Visitor.contact_id == contact_id).order_by(Visitor.first_seen_at)
    return list(session.scalars(query))
