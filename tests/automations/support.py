"""Helpers shared by the automation tests: published rules, contacts, targets, history."""

from __future__ import annotations

import uuid
from typing import Any

import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from postillon.automations.actions import ActionTarget
from postillon.automations.definitions import Published, Status
from postillon.contacts.schemas import ContactIn
from postillon.kit.ids import new_id
from postillon.models import Automation, AutomationHistory, AutomationVersion
from postillon.runtime import Runtime


def publish(
    runtime: Runtime, document: dict[str, Any] | str, *, status: str = Status.active
) -> Published:
    """Store and publish an automation document as version 1 (or the next version of the
    automation with its key), as the automation service will."""
    doc = yaml.safe_load(document) if isinstance(document, str) else document
    source = document if isinstance(document, str) else yaml.safe_dump(document)
    now = runtime.clock.now()
    with runtime.database.transaction() as session:
        row = session.scalar(select(Automation).where(Automation.key == doc["key"]))
        if row is None:
            row = Automation(
                id=new_id(),
                key=doc["key"],
                kind=doc["kind"],
                name=doc.get("name", doc["key"]),
                status=status,
                draft_source=source,
                draft_document=doc,
                published_version=None,
                created_at=now,
                updated_at=now,
            )
            session.add(row)
            session.flush()
        version = (row.published_version or 0) + 1
        session.add(
            AutomationVersion(
                automation_id=row.id,
                version=version,
                source=source,
                document=doc,
                published_at=now,
                migrated_runs=0,
            )
        )
        row.published_version = version
        row.status = status
        row.draft_document = doc
        session.flush()
        definitions = runtime.definitions.load(session)
        return definitions.by_key[doc["key"]]


def new_contact(runtime: Runtime, email: str = "ann@example.com", **fields: Any) -> uuid.UUID:
    with runtime.database.transaction() as session:
        return runtime.contacts.create(session, ContactIn(email=email, **fields)).id


def targets(
    automation: Published, *contact_ids: uuid.UUID, event_id: int = 1
) -> list[ActionTarget]:
    return [
        ActionTarget(contact_id=c, key=f"rule:{automation.id}:{event_id}:{c}") for c in contact_ids
    ]


def history(session: Session, contact_id: uuid.UUID) -> list[AutomationHistory]:
    query = select(AutomationHistory).where(AutomationHistory.contact_id == contact_id)
    return list(session.scalars(query.order_by(AutomationHistory.at, AutomationHistory.id)))
