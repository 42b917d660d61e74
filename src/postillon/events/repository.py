"""Every query about stored events."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from postillon.kit.repository import insert_rows
from postillon.models import Event


def insert_events(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    insert_rows(session, Event, rows)


def timeline_page(
    session: Session,
    contact_id: uuid.UUID,
    *,
    before: tuple[datetime, int] | None,
    name: str | None,
    limit: int,
) -> list[Event]:
    """A contact's events newest first; `before` is the (occurred_at, id) of the last one seen."""
    query = (
        select(Event)
        .where(Event.contact_id == contact_id)
        .order_by(Event.occurred_at.desc(), Event.id.desc())
        .limit(limit)
    )
    if name is not None:
        query = query.where(Event.name == name)
    if before is not None:
        occurred_at, event_id = before
        query = query.where(
            or_(
                Event.occurred_at < occurred_at,
                and_(Event.occurred_at == occurred_at, Event.id < event_id),
            )
        )
    return list(session.scalars(query))


def iter_for_contact(session: Session, contact_id: uuid.UUID) -> Iterator[Event]:
    query = (
        select(Event)
        .where(Event.contact_id == contact_id)
        .order_by(Event.occurred_at, Event.id)
        .execution_options(yield_per=1000)
    )
    yield from session.scalars(query)


def move_to_contact(session: Session, *, source: uuid.UUID, target: uuid.UUID) -> int:
    result = session.execute(
        update(Event).where(Event.contact_id == source).values(contact_id=target)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
