"""Double opt-in: a subscription from a listed source is pending until the contact
follows the link mailed to them; the link expires after 7 days."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select

from postillon.models import EmailTemplate, Message
from postillon.runtime import Runtime
from postillon.settings import Settings
from postillon.templates.rendering import RenderedEmail
from tests.messages.email_support import email_consent, events_named, path_of


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"double_opt_in_sources": ["api", "form"]})


def _subscribe(api: httpx.Client, email: str = "new@example.com") -> uuid.UUID:
    answer = api.post("/api/contacts", json={"email": email, "consent": {"email": "subscribed"}})
    assert answer.status_code == 201, answer.text
    assert answer.json()["consent"]["email"]["status"] == "pending"
    return uuid.UUID(answer.json()["id"])


def _confirmation(runtime: Runtime, contact_id: uuid.UUID) -> Message:
    with runtime.database.transaction(read_only=True) as session:
        query = select(Message).where(Message.contact_id == contact_id)
        (message,) = session.scalars(query)
        template = session.get(EmailTemplate, message.template_id)
        assert template is not None
        assert (template.key, template.kind) == ("double-opt-in", "transactional")
        assert "{{ event.confirm_url }}" in template.body
        session.expunge(message)
        return message


def test_the_confirmation_mail_carries_the_link(runtime: Runtime, api: httpx.Client) -> None:
    contact_id = _subscribe(api, "ada@example.com")
    with runtime.database.transaction() as session:
        (message,) = session.scalars(select(Message).where(Message.contact_id == contact_id))
        rendered = runtime.templates.render_messages(session, [message])[message.id]
        link = message.context["confirm_url"]
    assert isinstance(rendered, RenderedEmail), rendered
    assert f'href="{link}"' in rendered.html
    assert link in rendered.text


def test_pending_until_the_link_is_followed(
    runtime: Runtime, api: httpx.Client, anonymous: httpx.Client
) -> None:
    contact_id = _subscribe(api)
    assert email_consent(runtime, contact_id) == ("pending", "api")
    message = _confirmation(runtime, contact_id)
    assert (message.kind, message.state, message.to_address) == (
        "transactional",
        "queued",
        "new@example.com",
    )
    link = path_of(message.context["confirm_url"])
    assert link.startswith("/e/k/")
    runtime.clock.advance(timedelta(days=6))
    page = anonymous.get(link)
    assert page.status_code == 200 and "new@example.com" in page.text
    assert email_consent(runtime, contact_id) == ("pending", "api")  # a GET confirms nothing
    done = anonymous.post(link)
    assert done.status_code == 200 and "confirmed" in done.text
    assert email_consent(runtime, contact_id) == ("subscribed", "double-opt-in:api")
    changes = events_named(runtime, contact_id, "consent_changed")
    statuses = [e.properties["status"] for e in changes]
    assert statuses == ["pending", "subscribed"]
    assert anonymous.post(link).status_code == 200  # again: already subscribed


def test_an_expired_or_tampered_link_confirms_nothing(
    runtime: Runtime, api: httpx.Client, anonymous: httpx.Client
) -> None:
    contact_id = _subscribe(api)
    link = path_of(_confirmation(runtime, contact_id).context["confirm_url"])
    assert anonymous.get(link[:-4] + "abcd").status_code == 404
    assert anonymous.post(link[:-4] + "abcd").status_code == 404
    runtime.clock.advance(timedelta(days=7, seconds=1))
    expired = anonymous.get(link)
    assert expired.status_code == 410 and "expired" in expired.text
    assert anonymous.post(link).status_code == 410
    assert email_consent(runtime, contact_id) == ("pending", "api")


def test_other_sources_and_subscribed_contacts_are_not_asked(
    runtime: Runtime, api: httpx.Client
) -> None:
    direct = api.post(
        "/api/contacts",
        json={
            "email": "import@example.com",
            "consent": {"email": {"status": "subscribed", "source": "import"}},
        },
    )
    assert direct.json()["consent"]["email"]["status"] == "subscribed"
    contact_id = uuid.UUID(direct.json()["id"])
    again = api.put(f"/api/contacts/{contact_id}/consent/email", json={"status": "subscribed"})
    assert again.json()["consent"]["email"]["status"] == "subscribed"
    with runtime.database.transaction(read_only=True) as session:
        assert list(session.scalars(select(Message))) == []


def test_unsubscribing_before_confirming_makes_the_link_void(
    runtime: Runtime, api: httpx.Client, anonymous: httpx.Client
) -> None:
    contact_id = _subscribe(api)
    link = path_of(_confirmation(runtime, contact_id).context["confirm_url"])
    api.put(f"/api/contacts/{contact_id}/consent/email", json={"status": "unsubscribed"})
    assert anonymous.post(link).status_code == 410
    assert email_consent(runtime, contact_id) == ("unsubscribed", "api")


def test_subscribing_again_while_pending_asks_again_at_most_hourly(
    runtime: Runtime, api: httpx.Client
) -> None:
    contact_id = _subscribe(api)
    path = f"/api/contacts/{contact_id}/consent/email"
    runtime.clock.advance(timedelta(minutes=10))
    assert api.put(path, json={"status": "subscribed"}).json()["consent"]["email"]["status"] == (
        "pending"
    )
    runtime.clock.advance(timedelta(hours=1))
    assert api.put(path, json={"status": "subscribed"}).is_success
    with runtime.database.transaction(read_only=True) as session:
        links = [
            m.context["confirm_url"]
            for m in session.scalars(select(Message).where(Message.contact_id == contact_id))
        ]
    assert len(links) == 2 and links[0] != links[1]
    assert email_consent(runtime, contact_id) == ("pending", "api")
