"""Every query about visitors (anonymous ids and the contacts they belong to)."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, text, update
from sqlalchemy.orm import Session

from postillon.kit.repository import chunked, insert_rows, one_of, update_rows
from postillon.models import Visitor

# Any number, the same in every process: the key of the ingestion lock.
_INGESTION_LOCK = 0x706F7374  # "post"


def serialize_ingestion(session: Session) -> None:
    """One tracking batch writes at a time, as on SQLite (whose write lock does this).

    Concurrent batches touch the same contacts and visitors in different orders, and on
    PostgreSQL they deadlock one another; taken first, this transaction-scoped advisory
    lock makes them queue instead. Reading, checking and enriching the messages happen
    before, in parallel.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _INGESTION_LOCK})


def visitors_by_id(session: Session, anonymous_ids: Collection[str]) -> dict[str, uuid.UUID | None]:
    """anonymous id → the contact it is linked to (None while anonymous)."""
    found: dict[str, uuid.UUID | None] = {}
    for part in chunked(sorted(anonymous_ids)):
        query = select(Visitor.anonymous_id, Visitor.contact_id).where(
            one_of(session, Visitor.anonymous_id, part)
        )
        found.update(
            {anonymous_id: contact_id for anonymous_id, contact_id in session.execute(query)}
        )
    return found


def get(session: Session, anonymous_id: str) -> Visitor | None:
    return session.get(Visitor, anonymous_id)


def of_contact(session: Session, contact_id: uuid.UUID) -> list[Visitor]:
    query = select(Visitor).where(Visitor.contact_id == contact_id).order_by(Visitor.linked_at)
    return list(session.scalars(query))


def insert_visitors(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    # A concurrent request may have seen the same new visitor: theirs is as good as ours.
    insert_rows(session, Visitor, rows, ignore_conflicts=True)


def mark_seen(session: Session, anonymous_ids: Sequence[str], now: datetime) -> None:
    """The visitors were seen at `now`: one statement per chunk of them."""
    for part in chunked(anonymous_ids):
        session.execute(
            update(Visitor)
            .where(one_of(session, Visitor.anonymous_id, part))
            .values(last_seen_at=now)
            .execution_options(synchronize_session=False)
        )


def update_visitors(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Rows of one shape, keyed by `anonymous_id`."""
    update_rows(session, Visitor, rows)


def purge_anonymous(session: Session, *, last_seen_before: datetime) -> int:
    result = session.execute(
        delete(Visitor).where(Visitor.contact_id.is_(None), Visitor.last_seen_at < last_seen_before)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
