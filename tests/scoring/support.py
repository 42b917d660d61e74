"""Helpers shared by the scoring tests: contacts, stored events, rules, reading scores."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from postillon.contacts.schemas import ContactIn
from postillon.events.service import store_events
from postillon.kit.ids import new_id
from postillon.models import ContactRefresh, Event, ScoreChange
from postillon.runtime import Runtime
from postillon.scoring.schemas import (
    ScoreModelIn,
    ScoreModelPatch,
    ScoringRuleIn,
    ScoringRuleOut,
)


def new_contact(runtime: Runtime, email: str = "ann@example.com") -> uuid.UUID:
    with runtime.database.transaction() as session:
        return runtime.contacts.create(session, ContactIn(email=email)).id


def track(
    runtime: Runtime,
    contact_id: uuid.UUID | None,
    *events: tuple[str, dict[str, Any]],
    type_: str = "track",
) -> list[int]:
    """Store events of one contact in one transaction (one queue item per consumer)."""
    now = runtime.clock.now()
    rows = [
        {
            "contact_id": contact_id,
            "anonymous_id": None if contact_id else "anon-1",
            "user_id": None,
            "message_id": f"m-{new_id()}",
            "type": type_,
            "name": name,
            "properties": properties,
            "context": {},
            "integrations": None,
            "source": "test",
            "occurred_at": now,
            "received_at": now,
        }
        for name, properties in events
    ]
    with runtime.database.transaction() as session:
        return store_events(session, rows, now=now)


def add_rule(runtime: Runtime, **fields: Any) -> ScoringRuleOut:
    data = {"name": "rule", "event": "Product Viewed", "points": 5, **fields}
    with runtime.database.transaction() as session:
        return runtime.scoring.create_rule(session, ScoringRuleIn(**data))


def add_model(runtime: Runtime, key: str, **fields: Any) -> None:
    with runtime.database.transaction() as session:
        runtime.scoring.create_model(session, ScoreModelIn(key=key, name=key, **fields))


def set_main(runtime: Runtime, **fields: Any) -> None:
    with runtime.database.transaction() as session:
        runtime.scoring.update_model(session, "main", ScoreModelPatch(**fields))


def scores(runtime: Runtime, contact_id: uuid.UUID) -> dict[str, int]:
    with runtime.database.transaction(read_only=True) as session:
        return {s.model: s.score for s in runtime.scoring.scores_of(session, contact_id)}


def history(runtime: Runtime, contact_id: uuid.UUID) -> list[ScoreChange]:
    """The contact's score changes, oldest first."""
    with runtime.database.transaction(read_only=True) as session:
        query = select(ScoreChange).where(ScoreChange.contact_id == contact_id)
        return list(session.scalars(query.order_by(ScoreChange.id)))


def reached(runtime: Runtime, contact_id: uuid.UUID) -> list[dict[str, Any]]:
    """The properties of the contact's `score_reached` events, oldest first."""
    with runtime.database.transaction(read_only=True) as session:
        query = select(Event.properties).where(
            Event.contact_id == contact_id, Event.name == "score_reached"
        )
        return list(session.scalars(query.order_by(Event.id)))


def queued_for_refresh(session: Session) -> set[uuid.UUID]:
    return set(session.scalars(select(ContactRefresh.contact_id)))
