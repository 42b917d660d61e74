"""The contact's last activity, kept current from the event queue: when they were last
seen and with what (device, operating system, browser, country)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from postillon.contacts import repository
from postillon.events.service import DONE_TO_CONTACT
from postillon.kit.repository import update_rows
from postillon.models import Contact, Event

# Where tracking puts what it derives from a message (see tracking/enrichment.py).
_ENRICHMENT_KEY = "postillon"
_NOT_ACTIVITY = frozenset({"internal"})


class ContactActivityConsumer:
    """Event-queue consumer: `contacts.last_seen_at` and `contacts.last_seen`."""

    name = "contact_activity"

    def handle(self, session: Session, events: Sequence[Event], now: datetime) -> None:
        latest: dict[uuid.UUID, tuple[datetime, dict[str, Any]]] = {}
        for event in events:
            if (
                event.contact_id is None
                or event.type in _NOT_ACTIVITY
                or event.name in DONE_TO_CONTACT
                # Opens and clicks by privacy proxies and link scanners (messages/tracking.py).
                or (event.properties or {}).get("machine") is True
            ):
                continue
            # A device clock ahead of ours must not move "last seen" into the future.
            seen_at = min(event.occurred_at, event.received_at)
            derived = event.context.get(_ENRICHMENT_KEY) if event.context else None
            current = latest.get(event.contact_id)
            if current is None or seen_at >= current[0]:
                merged = {**(current[1] if current else {}), **(derived or {})}
                latest[event.contact_id] = (seen_at, merged)
            elif derived:
                latest[event.contact_id] = (current[0], {**derived, **current[1]})
        if not latest:
            return
        stored = repository.activity_of(session, latest.keys())
        rows = []
        for contact_id, (seen_at, derived) in latest.items():
            if contact_id not in stored:
                continue  # deleted since
            stored_at, stored_seen = stored[contact_id]
            if stored_at is not None and stored_at >= seen_at:
                continue
            rows.append(
                {
                    "id": contact_id,
                    "last_seen_at": seen_at,
                    "last_seen": {**(stored_seen or {}), **derived} or None,
                }
            )
        update_rows(session, Contact, rows)
