"""What the lifecycle tests look at: history rows, `stage_changed` events, the refresh queue."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import delete, select

from postillon.models import ContactRefresh, Event, StageChange
from postillon.runtime import Runtime


def history(runtime: Runtime, contact_id: uuid.UUID | str) -> list[tuple[Any, ...]]:
    """(from, to, source) oldest first."""
    with runtime.database.transaction(read_only=True) as session:
        rows = session.execute(
            select(StageChange.from_stage, StageChange.to_stage, StageChange.source)
            .where(StageChange.contact_id == uuid.UUID(str(contact_id)))
            .order_by(StageChange.id)
        )
        return [tuple(row) for row in rows]


def stage_events(runtime: Runtime, contact_id: uuid.UUID | str) -> list[dict[str, Any]]:
    """The properties of the contact's `stage_changed` events, oldest first."""
    with runtime.database.transaction(read_only=True) as session:
        found = session.scalars(
            select(Event.properties)
            .where(Event.contact_id == uuid.UUID(str(contact_id)), Event.name == "stage_changed")
            .order_by(Event.id)
        )
        return list(found)


def queued(runtime: Runtime) -> set[uuid.UUID]:
    with runtime.database.transaction(read_only=True) as session:
        return set(session.scalars(select(ContactRefresh.contact_id)))


def clear_queue(runtime: Runtime) -> None:
    with runtime.database.transaction() as session:
        session.execute(delete(ContactRefresh))
