"""Factories and helpers for the sending tests."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from postillon.models import ContactConsent, Event, Message
from postillon.runtime import Runtime

SIMPLE_HTML = """<html><body><p>Hello {{ contact.first_name | default("friend") }},</p>
<p><a href="https://shop.example.com/offers?src=mail&amp;id={{ event.offer | default(1) }}">
Offers</a></p>
<p><a href="{{ unsubscribe_url }}">Unsubscribe</a></p></body></html>"""


def subscribe(session: Session, runtime: Runtime, contact_id: uuid.UUID, status: str) -> None:
    session.add(
        ContactConsent(
            contact_id=contact_id,
            channel="email",
            status=status,
            changed_at=runtime.clock.now(),
            source="test",
        )
    )
    session.flush()


def messages(runtime: Runtime) -> dict[str, Message]:
    """Every message by address."""
    with runtime.database.transaction(read_only=True) as session:
        rows = session.scalars(select(Message)).all()
        session.expunge_all()
        return {row.to_address: row for row in rows}


def events_named(runtime: Runtime, name: str) -> list[dict[str, Any]]:
    with runtime.database.transaction(read_only=True) as session:
        rows = session.scalars(select(Event).where(Event.name == name).order_by(Event.id))
        return [
            {"contact_id": e.contact_id, "properties": e.properties, "message_id": e.message_id}
            for e in rows
        ]
