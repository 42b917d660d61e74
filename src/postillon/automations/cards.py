"""The contact card: who a contact is at a glance, as owner notifications show it and
webhooks send it. Built for many contacts at once (a few queries whatever their number),
as plain JSON (ids and times as text)."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from postillon.contacts import repository as contacts_repository
from postillon.events import repository as events_repository
from postillon.users import repository as users_repository

# The latest events a card lists.
CARD_EVENTS = 10


def contact_cards(
    session: Session,
    contact_ids: Collection[uuid.UUID],
    *,
    public_url: str,
    events: int = CARD_EVENTS,
) -> dict[uuid.UUID, dict[str, Any]]:
    """The card of each contact that exists: name, email, phone, stage, score, owner,
    tags, attributes, the latest events, and the contact's address in the admin API."""
    ids = sorted(set(contact_ids))
    rows = contacts_repository.rows_by_ids(session, ids)
    tags = contacts_repository.tags_of(session, ids)
    owners = users_repository.by_ids(session, {r["owner_id"] for r in rows if r["owner_id"]})
    latest = events_repository.latest_of_contacts(session, ids, per_contact=events)
    base = public_url.rstrip("/")
    cards: dict[uuid.UUID, dict[str, Any]] = {}
    for row in rows:
        owner = owners.get(row["owner_id"]) if row["owner_id"] else None
        name = " ".join(part for part in (row["first_name"], row["last_name"]) if part)
        cards[row["id"]] = {
            "id": str(row["id"]),
            "name": name or None,
            "first_name": row["first_name"],
            "last_name": row["last_name"],
            "email": row["email"],
            "phone": row["phone"],
            "external_id": row["external_id"],
            "lifecycle_stage": row["lifecycle_stage"],
            "score": row["score"],
            "owner": {"email": owner.email, "name": owner.name} if owner else None,
            "tags": sorted(tags.get(row["id"], ())),
            "attributes": _json(row["attributes"] or {}),
            "created_at": row["created_at"].isoformat(),
            "last_seen_at": row["last_seen_at"].isoformat() if row["last_seen_at"] else None,
            "events": [
                {
                    "name": event.name,
                    "occurred_at": event.occurred_at.isoformat(),
                    "properties": _json(event.properties or {}),
                }
                for event in latest.get(row["id"], [])
            ],
            "url": f"{base}/api/contacts/{row['id']}",
        }
    return cards


def _json(value: Any) -> Any:
    """Stored JSON as it is, but times and ids as text."""
    if isinstance(value, dict):
        return {str(k): _json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value
