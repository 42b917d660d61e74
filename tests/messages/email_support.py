"""Factories shared by the tracking, subscription and bounce tests: contacts with
consent, templates and sent messages, made through the real services."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from postillon.contacts.changes import ContactChanges
from postillon.contacts.upsert import Mode
from postillon.kit.ids import new_id
from postillon.messages.service import MessageRequest
from postillon.models import ContactConsent, ContactTopic, EmailTemplate, Event, Message
from postillon.runtime import Runtime

BROWSER_AGENT = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)


def create_contact(
    session: Session,
    runtime: Runtime,
    *,
    email: str = "ada@example.com",
    consent: str | None = "subscribed",
    first_name: str | None = None,
) -> uuid.UUID:
    changes = ContactChanges()
    changes.set_value("email", email)
    if first_name:
        changes.set_value("first_name", first_name)
    if consent is not None:
        changes.set_consent("email", consent, "test")
    outcome = runtime.contacts.apply(session, [changes], mode=Mode.create, source="test")[0]
    assert outcome.contact_id is not None
    return outcome.contact_id


def create_template(
    session: Session,
    runtime: Runtime,
    *,
    key: str = "newsletter-1",
    kind: str = "marketing",
    topic: str | None = "newsletter",
) -> uuid.UUID:
    now = runtime.clock.now()
    template = EmailTemplate(
        id=new_id(), key=key, name=key, format="html", subject="Hello",
        body="<p>Hello</p>", compiled_html="<p>Hello</p>", kind=kind, topic=topic,
        version=1, created_at=now, updated_at=now,
    )  # fmt: skip
    session.add(template)
    session.flush()
    return template.id


def sent_message(
    session: Session,
    runtime: Runtime,
    contact_id: uuid.UUID,
    template_id: uuid.UUID,
    *,
    key: str | None = None,
    sent_ago: timedelta | None = timedelta(hours=1),
    smtp_message_id: str | None = None,
) -> uuid.UUID:
    """A message queued through `MessageService.enqueue`, then marked as sent (as the
    sender would) `sent_ago` before now."""
    dedupe_key = key or f"test:{new_id()}"
    result = runtime.messages.enqueue(
        session,
        [
            MessageRequest(
                contact_id=contact_id, template_id=template_id, dedupe_key=dedupe_key, source="test"
            )
        ],
    )
    message_id = result.message_ids[dedupe_key]
    if sent_ago is not None:
        values: dict[str, Any] = {"state": "sent", "sent_at": runtime.clock.now() - sent_ago}
        if smtp_message_id:
            values["smtp_message_id"] = smtp_message_id
        session.execute(update(Message).where(Message.id == message_id).values(**values))
    return message_id


def path_of(url: str) -> str:
    """The path of a link (links carry the installation's public URL, not the test's)."""
    return urlsplit(url).path


def message_row(runtime: Runtime, message_id: uuid.UUID) -> Message:
    with runtime.database.transaction(read_only=True) as session:
        message = session.get(Message, message_id)
        assert message is not None
        session.expunge(message)
        return message


def email_consent(runtime: Runtime, contact_id: uuid.UUID) -> tuple[str, str | None] | None:
    with runtime.database.transaction(read_only=True) as session:
        row = session.get(ContactConsent, (contact_id, "email"))
        return None if row is None else (row.status, row.source)


def topic_statuses(runtime: Runtime, contact_id: uuid.UUID) -> dict[str, str]:
    with runtime.database.transaction(read_only=True) as session:
        rows = session.scalars(select(ContactTopic).where(ContactTopic.contact_id == contact_id))
        return {row.topic: row.status for row in rows}


def events_named(runtime: Runtime, contact_id: uuid.UUID, name: str) -> list[Event]:
    with runtime.database.transaction(read_only=True) as session:
        query = (
            select(Event)
            .where(Event.contact_id == contact_id, Event.name == name)
            .order_by(Event.id)
        )
        events = list(session.scalars(query))
        for event in events:
            session.expunge(event)
        return events
