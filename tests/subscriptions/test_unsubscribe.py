"""Unsubscribe links: one-click POST (RFC 8058) leaves the message's topic, or all email
for a message without one; a GET only asks."""

from __future__ import annotations

import uuid

import httpx
import pytest

from postillon.runtime import Runtime
from tests.messages.email_support import (
    create_contact,
    create_template,
    email_consent,
    events_named,
    message_row,
    path_of,
    sent_message,
)

ONE_CLICK = {"Content-Type": "application/x-www-form-urlencoded"}


def _message(runtime: Runtime, *, topic: str | None, kind: str = "marketing") -> uuid.UUID:
    with runtime.database.transaction() as session:
        contact_id = create_contact(session, runtime)
        template_id = create_template(session, runtime, kind=kind, topic=topic)
        return sent_message(session, runtime, contact_id, template_id)


def test_one_click_post_leaves_the_topic_only(runtime: Runtime, anonymous: httpx.Client) -> None:
    message_id = _message(runtime, topic="offers")
    path = path_of(runtime.links.unsubscribe_url(message_id))
    # As a mailbox provider sends it: the exact body, no cookie, no page in between.
    answer = anonymous.post(path, content=b"List-Unsubscribe=One-Click", headers=ONE_CLICK)
    assert answer.status_code == 200
    message = message_row(runtime, message_id)
    assert message.unsubscribed_at == runtime.clock.now()
    assert email_consent(runtime, message.contact_id) == ("subscribed", "test")
    with runtime.database.transaction(read_only=True) as session:
        preferences = runtime.subscriptions.preferences(session, message.contact_id)
    assert {t.key: t.subscribed for t in preferences.topics} == {
        "newsletter": True,
        "offers": False,
        "product-news": True,
    }
    (event,) = events_named(runtime, message.contact_id, "email_unsubscribed")
    assert event.properties["topic"] == "offers"
    assert event.properties["message_id"] == str(message_id)
    # Twice is harmless.
    assert anonymous.post(path, content=b"List-Unsubscribe=One-Click", headers=ONE_CLICK).is_success


def test_without_a_topic_it_withdraws_email_consent(
    runtime: Runtime, anonymous: httpx.Client
) -> None:
    message_id = _message(runtime, topic=None)
    path = path_of(runtime.links.unsubscribe_url(message_id))
    answer = anonymous.post(path, data={"List-Unsubscribe": "One-Click"})
    assert answer.status_code == 200
    contact_id = message_row(runtime, message_id).contact_id
    assert email_consent(runtime, contact_id) == ("unsubscribed", "unsubscribe-link")
    (changed,) = events_named(runtime, contact_id, "consent_changed")[-1:]
    assert changed.properties["status"] == "unsubscribed"
    (event,) = events_named(runtime, contact_id, "email_unsubscribed")
    assert event.properties["topic"] == "all"


def test_multipart_one_click_body_is_understood(runtime: Runtime, anonymous: httpx.Client) -> None:
    message_id = _message(runtime, topic=None)
    path = path_of(runtime.links.unsubscribe_url(message_id))
    answer = anonymous.post(path, files={"List-Unsubscribe": (None, "One-Click")})
    assert answer.status_code == 200
    assert email_consent(runtime, message_row(runtime, message_id).contact_id) == (
        "unsubscribed",
        "unsubscribe-link",
    )


def test_a_get_only_asks(runtime: Runtime, anonymous: httpx.Client) -> None:
    message_id = _message(runtime, topic="newsletter")
    answer = anonymous.get(path_of(runtime.links.unsubscribe_url(message_id)))
    assert answer.status_code == 200
    assert "Newsletter" in answer.text and 'method="post"' in answer.text
    assert message_row(runtime, message_id).unsubscribed_at is None


@pytest.mark.parametrize("body", [b"", b"List-Unsubscribe=Yes-Please"])
def test_a_post_without_the_one_click_body_is_refused(
    runtime: Runtime, anonymous: httpx.Client, body: bytes
) -> None:
    message_id = _message(runtime, topic=None)
    answer = anonymous.post(
        path_of(runtime.links.unsubscribe_url(message_id)), content=body, headers=ONE_CLICK
    )
    assert answer.status_code == 400
    assert "List-Unsubscribe=One-Click" in answer.text
    contact_id = message_row(runtime, message_id).contact_id
    assert email_consent(runtime, contact_id) == ("subscribed", "test")


def test_tampered_links_are_404(runtime: Runtime, anonymous: httpx.Client) -> None:
    message_id = _message(runtime, topic=None)
    path = path_of(runtime.links.unsubscribe_url(message_id))
    for bad in (path[:-3] + "abc", path_of(runtime.links.unsubscribe_url(uuid.uuid4()))):
        assert anonymous.get(bad).status_code == 404
        answer = anonymous.post(bad, data={"List-Unsubscribe": "One-Click"})
        assert answer.status_code == 404
    contact_id = message_row(runtime, message_id).contact_id
    assert email_consent(runtime, contact_id) == ("subscribed", "test")
