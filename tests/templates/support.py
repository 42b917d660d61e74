"""Factories for template tests: plain functions with keyword defaults."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.orm import Session

from postillon.kit.ids import new_id
from postillon.messages.service import MessageRequest
from postillon.models import Contact, Message
from postillon.runtime import Runtime
from postillon.templates.schemas import TemplateIn

NEWSLETTER_MJML = """<mjml>
  <mj-head>
    <mj-style>
      .lead { color: #333333; }
      @media (max-width: 480px) { .lead { font-size: 18px; } }
    </mj-style>
  </mj-head>
  <mj-body>
    <mj-section>
      <mj-column>
        <mj-text css-class="lead">Hello {{ contact.first_name | default("friend") }},</mj-text>
        <mj-text>{% if contact.score > 10 %}Thanks for being a regular.{% endif %}</mj-text>
        <mj-raw>{% for item in event.cart %}</mj-raw>
        <mj-text>{{ item.name }}: {{ item.price }} EUR</mj-text>
        <mj-raw>{% endfor %}</mj-raw>
        <mj-button href="https://shop.example.com/cart?c={{ contact.id }}&amp;x=1">
          Back to the cart</mj-button>
        <mj-text><a href="{{ unsubscribe_url }}">Unsubscribe</a></mj-text>
      </mj-column>
    </mj-section>
  </mj-body>
</mjml>
"""


def save_template(
    session: Session,
    runtime: Runtime,
    *,
    key: str = "newsletter",
    format: str = "mjml",
    subject: str = "Hi {{ contact.first_name | default('there') }}",
    preheader: str | None = "Your cart, {{ contact.first_name }}",
    body: str = NEWSLETTER_MJML,
    text_body: str | None = None,
) -> uuid.UUID:
    data = TemplateIn.model_validate(
        {"key": key, "format": format, "subject": subject, "preheader": preheader,
         "body": body, "text_body": text_body}
    )  # fmt: skip
    return runtime.templates.save(session, data)[0].id


def add_contact(
    session: Session,
    runtime: Runtime,
    *,
    email: str = "ada@example.com",
    first_name: str | None = "Ada",
    score: int = 0,
    attributes: dict[str, Any] | None = None,
) -> uuid.UUID:
    now = runtime.clock.now()
    contact = Contact(
        id=new_id(), email=email, first_name=first_name, attributes=attributes or {},
        score=score, state="identified", created_at=now, updated_at=now,
    )  # fmt: skip
    session.add(contact)
    session.flush()
    return contact.id


def queue_messages(
    session: Session,
    runtime: Runtime,
    template_id: uuid.UUID,
    contacts: list[uuid.UUID],
    *,
    context: dict[str, Any] | None = None,
    key: str = "t",
) -> list[Message]:
    requests = [
        MessageRequest(
            contact_id=contact_id,
            template_id=template_id,
            dedupe_key=f"{key}:{contact_id}",
            source="api",
            context=context or {},
        )
        for contact_id in contacts
    ]
    result = runtime.messages.enqueue(session, requests)
    ids = set(result.message_ids.values())
    return [session.get_one(Message, message_id) for message_id in ids]
