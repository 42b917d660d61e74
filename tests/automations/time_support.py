"""Helpers of the collision-control and trigger tests: contacts, messages and published
journeys written directly (the features that normally write them have their own tests)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from postillon.automations.definitions import Published
from postillon.automations.documents import parse_automation_text
from postillon.filters.documents import load_yaml
from postillon.kit.ids import new_id
from postillon.kit.repository import insert_rows
from postillon.models import (
    Automation,
    AutomationVersion,
    Contact,
    ContactTag,
    EmailTemplate,
    Message,
)
from postillon.runtime import Runtime


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def make_contact(
    session: Session,
    runtime: Runtime,
    *,
    timezone: str | None = None,
    attributes: dict[str, Any] | None = None,
    email: str | None = None,
    tags: tuple[str, ...] = (),
) -> uuid.UUID:
    now = runtime.clock.now()
    contact_id = new_id()
    insert_rows(
        session,
        Contact,
        [
            {
                "id": contact_id,
                "email": email or f"{contact_id.hex}@example.com",
                "attributes": attributes or {},
                "score": 0,
                "state": "identified",
                "timezone": timezone,
                "created_at": now,
                "updated_at": now,
            }
        ],
    )
    insert_rows(
        session,
        ContactTag,
        [{"contact_id": contact_id, "tag": tag, "added_at": now} for tag in tags],
    )
    return contact_id


def make_template(session: Session, runtime: Runtime, key: str = "news") -> uuid.UUID:
    now = runtime.clock.now()
    template = EmailTemplate(
        id=new_id(), key=key, name=key, format="html", subject="News", body="<p>Hi</p>",
        compiled_html="<p>Hi</p>", kind="marketing", topic="newsletter", version=1,
        created_at=now, updated_at=now,
    )  # fmt: skip
    session.add(template)
    session.flush()
    return template.id


def make_message(
    session: Session,
    template_id: uuid.UUID,
    contact_id: uuid.UUID,
    *,
    due_at: datetime,
    queued_at: datetime | None = None,
    sent_at: datetime | None = None,
    state: str = "sent",
    kind: str = "marketing",
    channel: str = "email",
    source: str = "journey",
) -> uuid.UUID:
    message_id = new_id()
    insert_rows(
        session,
        Message,
        [
            {
                "id": message_id,
                "contact_id": contact_id,
                "channel": channel,
                "kind": kind,
                "topic": "newsletter",
                "template_id": template_id,
                "template_version": 1,
                "source": source,
                "dedupe_key": f"test:{message_id}",
                "to_address": "someone@example.com",
                "context": {},
                "state": state,
                "attempts": 0,
                "due_at": due_at,
                "queued_at": queued_at or due_at,
                "sent_at": sent_at if sent_at is not None or state != "sent" else due_at,
                "machine_opens": 0,
            }
        ],
    )
    return message_id


def publish(
    session: Session, runtime: Runtime, source: str, *, status: str = "active"
) -> Published:
    """A journey or rule published as version 1 (as the automation service will)."""
    parse_automation_text(source, source="test")  # refuses a bad document here
    raw = load_yaml(source, source="test")
    now = runtime.clock.now()
    automation_id = new_id()
    session.add(
        Automation(
            id=automation_id, key=raw["key"], kind=raw["kind"], name=raw["name"], status=status,
            draft_source=source, draft_document=raw, published_version=1, created_at=now,
            updated_at=now,
        )
    )  # fmt: skip
    session.add(
        AutomationVersion(
            automation_id=automation_id, version=1, source=source, document=raw,
            published_at=now, migrated_runs=0,
        )
    )  # fmt: skip
    session.flush()
    return runtime.definitions.load(session).current[automation_id]
