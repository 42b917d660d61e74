"""The outbox: one message per dedupe key, whoever asks how often."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from postillon.kit.ids import new_id
from postillon.messages.service import MessageRequest
from postillon.models import Contact, EmailTemplate, Message
from postillon.runtime import Runtime


def _template(session: Session, runtime: Runtime) -> EmailTemplate:
    now = runtime.clock.now()
    template = EmailTemplate(
        id=new_id(), key="welcome", name="Welcome", format="html", subject="Hi",
        body="<p>Hi</p>", compiled_html="<p>Hi</p>", kind="marketing", topic="newsletter",
        version=3, created_at=now, updated_at=now,
    )  # fmt: skip
    session.add(template)
    session.flush()
    return template


def _contact(session: Session, runtime: Runtime, email: str | None) -> uuid.UUID:
    now = runtime.clock.now()
    contact = Contact(
        id=new_id(), email=email, attributes={}, score=0, state="identified",
        created_at=now, updated_at=now,
    )  # fmt: skip
    session.add(contact)
    session.flush()
    return contact.id


def test_the_same_key_never_makes_a_second_message(runtime: Runtime, session: Session) -> None:
    template = _template(session, runtime)
    ada = _contact(session, runtime, "ada@example.com")
    nameless = _contact(session, runtime, None)

    def request(contact_id: uuid.UUID, key: str) -> MessageRequest:
        return MessageRequest(
            contact_id=contact_id, template_id=template.id, dedupe_key=key, source="api"
        )

    requests = [request(ada, "t:1"), request(ada, "t:1"), request(nameless, "t:2")]
    first = runtime.messages.enqueue(session, requests)
    assert (first.created, first.without_address) == (1, [nameless])
    again = runtime.messages.enqueue(session, requests[:1])
    assert (again.created, again.duplicates) == (0, 1)
    assert again.message_ids == first.message_ids
    message = session.scalars(select(Message)).one()
    assert (message.to_address, message.kind, message.topic, message.template_version) == (
        "ada@example.com", "marketing", "newsletter", 3,
    )  # fmt: skip
    assert (message.state, message.due_at) == ("queued", runtime.clock.now())
    assert session.scalar(select(func.count()).select_from(Message)) == 1
