"""Helpers of the journey engine tests: published journeys (rows written as the automation
service writes them), contacts, templates, events, and reading runs and history."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import yaml
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from postillon.automations.definitions import Definitions, Published, Status
from postillon.automations.journeys.engine import Entrant, EntryResult
from postillon.automations.journeys.tasks import JourneyStepTask
from postillon.events.service import store_events
from postillon.kit.ids import new_id
from postillon.models import (
    Automation,
    AutomationHistory,
    AutomationVersion,
    ContactTag,
    Event,
    JourneyRun,
    Message,
)
from postillon.runtime import Runtime
from tests.broadcasts.support import make_contacts, make_template

__all__ = ["make_contacts", "make_template"]


def publish(
    runtime: Runtime, document: dict[str, Any] | str, *, status: str = Status.active
) -> Published:
    """Store a document and publish it as version 1, or as the next version of the
    automation with its key."""
    doc = yaml.safe_load(document) if isinstance(document, str) else document
    source = document if isinstance(document, str) else yaml.safe_dump(document)
    now = runtime.clock.now()
    with runtime.database.transaction() as session:
        row = session.scalar(select(Automation).where(Automation.key == doc["key"]))
        if row is None:
            row = Automation(
                id=new_id(), key=doc["key"], kind=doc["kind"], name=doc.get("name", doc["key"]),
                status=status, draft_source=source, draft_document=doc, published_version=None,
                created_at=now, updated_at=now,
            )  # fmt: skip
            session.add(row)
            session.flush()
        version = (row.published_version or 0) + 1
        session.add(
            AutomationVersion(
                automation_id=row.id, version=version, source=source, document=doc,
                published_at=now, migrated_runs=0,
            )
        )  # fmt: skip
        row.published_version = version
        row.status = status
        session.flush()
        return runtime.definitions.load(session).by_key[doc["key"]]


def set_status(runtime: Runtime, key: str, status: str) -> None:
    with runtime.database.transaction() as session:
        session.execute(update(Automation).where(Automation.key == key).values(status=status))


def definitions(runtime: Runtime) -> Definitions:
    with runtime.database.transaction(read_only=True) as session:
        return runtime.definitions.load(session)


def journey(runtime: Runtime, key: str) -> Published:
    return definitions(runtime).by_key[key]


def enter(
    runtime: Runtime,
    key: str,
    contact_ids: Sequence[uuid.UUID],
    *,
    entry_key: str | None = None,
    source: str = "api",
    event: dict[str, Any] | None = None,
) -> EntryResult:
    """Contacts enter the journey now (entry key: a fresh one each unless given)."""
    with runtime.database.transaction() as session:
        defs = runtime.definitions.load(session)
        entrants = [Entrant(c, entry_key or f"test:{new_id()}", source, event) for c in contact_ids]
        return runtime.journeys.enter(
            session, defs, defs.by_key[key], entrants, now=runtime.clock.now()
        )


def run_steps(runtime: Runtime, *, batch_size: int = 1000) -> int:
    """The worker's journey task at the clock's time, until nothing is due."""
    return JourneyStepTask(batch_size=batch_size, batches_per_round=1000).run_due(
        runtime, runtime.clock.now()
    )


def store_event(
    session: Session,
    runtime: Runtime,
    contact_id: uuid.UUID,
    name: str,
    properties: dict[str, Any] | None = None,
    *,
    at: datetime | None = None,
) -> Event:
    now = runtime.clock.now()
    (event_id,) = store_events(
        session,
        [
            {
                "contact_id": contact_id, "anonymous_id": None, "user_id": None,
                "message_id": f"test-{new_id()}", "type": "track", "name": name,
                "properties": properties or {}, "context": {}, "integrations": None,
                "source": "test", "occurred_at": at or now, "received_at": now,
            }
        ],
        now=now,
    )  # fmt: skip
    found = session.get(Event, event_id)
    assert found is not None
    return found


def happen(
    runtime: Runtime,
    contact_id: uuid.UUID,
    name: str,
    properties: dict[str, Any] | None = None,
    *,
    at: datetime | None = None,
    consume: bool = True,
) -> None:
    """The contact does something; the engine hears of it (as the automations consumer
    passes stored events on) unless `consume` is False."""
    with runtime.database.transaction() as session:
        event = store_event(session, runtime, contact_id, name, properties, at=at)
        if consume:
            runtime.journeys.on_events(
                session, runtime.definitions.load(session), [event], now=runtime.clock.now()
            )


def runs(runtime: Runtime, key: str | None = None) -> list[JourneyRun]:
    with runtime.database.transaction(read_only=True) as session:
        query = select(JourneyRun).order_by(JourneyRun.entered_at, JourneyRun.id)
        if key is not None:
            query = query.join(Automation, Automation.id == JourneyRun.journey_id).where(
                Automation.key == key
            )
        found = list(session.scalars(query))
        session.expunge_all()
        return found


def run_of(runtime: Runtime, run_id: uuid.UUID) -> JourneyRun:
    with runtime.database.transaction(read_only=True) as session:
        found = session.get(JourneyRun, run_id)
        assert found is not None
        session.expunge(found)
        return found


def history(runtime: Runtime, contact_id: uuid.UUID) -> list[AutomationHistory]:
    with runtime.database.transaction(read_only=True) as session:
        query = (
            select(AutomationHistory)
            .where(AutomationHistory.contact_id == contact_id)
            .order_by(AutomationHistory.at, AutomationHistory.id)
        )
        found = list(session.scalars(query))
        session.expunge_all()
        return found


def outcomes(runtime: Runtime, contact_id: uuid.UUID) -> list[tuple[str | None, str]]:
    """(step, outcome) of the contact's history, in order."""
    return [(h.step_id, h.outcome) for h in history(runtime, contact_id)]


def messages(runtime: Runtime, contact_id: uuid.UUID | None = None) -> list[Message]:
    with runtime.database.transaction(read_only=True) as session:
        query = select(Message).order_by(Message.queued_at, Message.id)
        if contact_id is not None:
            query = query.where(Message.contact_id == contact_id)
        found = list(session.scalars(query))
        session.expunge_all()
        return found


def events(runtime: Runtime, name: str) -> list[Event]:
    with runtime.database.transaction(read_only=True) as session:
        found = list(session.scalars(select(Event).where(Event.name == name).order_by(Event.id)))
        session.expunge_all()
        return found


def contacts(runtime: Runtime, count: int, **fields: Any) -> list[uuid.UUID]:
    with runtime.database.transaction() as session:
        return make_contacts(session, runtime, count, **fields)


def template(runtime: Runtime, key: str, subject: str = "News") -> uuid.UUID:
    with runtime.database.transaction() as session:
        return make_template(session, runtime, key, subject)


def tag(runtime: Runtime, contact_ids: Sequence[uuid.UUID], name: str) -> None:
    with runtime.database.transaction() as session:
        session.add_all(
            ContactTag(contact_id=c, tag=name, added_at=runtime.clock.now()) for c in contact_ids
        )
