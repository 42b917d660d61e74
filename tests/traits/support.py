"""Building contacts and their events for the traits tests."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select

from postillon.contacts.schemas import ContactIn
from postillon.events.service import store_events
from postillon.kit.ids import new_id
from postillon.models import ContactRefresh, ContactTrait
from postillon.runtime import Runtime


def add_contact(runtime: Runtime, email: str) -> uuid.UUID:
    with runtime.database.transaction() as session:
        return runtime.contacts.create(session, ContactIn(email=email)).id


def add_event(
    runtime: Runtime,
    contact_id: uuid.UUID,
    at: datetime,
    *,
    name: str = "Order Completed",
    type: str = "track",
    **properties: Any,
) -> None:
    with runtime.database.transaction() as session:
        store_events(
            session,
            [
                {
                    "contact_id": contact_id,
                    "anonymous_id": None,
                    "user_id": None,
                    "message_id": f"test-{new_id()}",
                    "type": type,
                    "name": name,
                    "properties": properties,
                    "context": {},
                    "integrations": None,
                    "source": "test",
                    "occurred_at": at,
                    "received_at": at,
                }
            ],
            now=at,
        )


def refresh(runtime: Runtime, contact_ids: list[uuid.UUID] | None = None) -> set[uuid.UUID]:
    with runtime.database.transaction() as session:
        return set(runtime.traits.refresh(session, contact_ids))


def traits(runtime: Runtime, contact_id: uuid.UUID) -> ContactTrait:
    with runtime.database.transaction(read_only=True) as session:
        found = session.get(ContactTrait, contact_id)
        assert found is not None
        return found


def queued(runtime: Runtime) -> set[uuid.UUID]:
    with runtime.database.transaction() as session:
        found = set(session.scalars(select(ContactRefresh.contact_id)))
        session.execute(delete(ContactRefresh))
        return found
