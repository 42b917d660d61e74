"""The preference form over HTTP: its form token binds it to its contact (CSRF)."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

import httpx

from postillon.runtime import Runtime
from postillon.subscriptions.schemas import TopicIn
from tests.messages.email_support import (
    create_contact,
    email_consent,
    events_named,
    path_of,
    topic_statuses,
)


def _form_token(page: str) -> str:
    found = re.search(r'name="form_token" value="([^"]+)"', page)
    assert found is not None
    return found.group(1)


def test_a_post_needs_this_contacts_form_token(runtime: Runtime, anonymous: httpx.Client) -> None:
    with runtime.database.transaction() as session:
        ada = create_contact(session, runtime, email="ada@example.com")
        eve = create_contact(session, runtime, email="eve@example.com")
    path = path_of(runtime.links.preferences_url(ada))
    eve_page = anonymous.get(path_of(runtime.links.preferences_url(eve))).text
    leave_all = {"topic": ["newsletter"], "unsubscribe_all": "1"}
    for form_token in (None, "forged", _form_token(eve_page), path.rpartition("/")[2]):
        data = dict(leave_all) if form_token is None else {**leave_all, "form_token": form_token}
        refused = anonymous.post(path, data=data)
        assert refused.status_code == 403
        assert "Nothing was changed" in refused.text and "form token" in refused.text
    assert topic_statuses(runtime, ada) == {}
    assert email_consent(runtime, ada) == ("subscribed", "test")

    token = _form_token(anonymous.get(path).text)
    runtime.clock.advance(timedelta(days=2))
    assert anonymous.post(path, data={**leave_all, "form_token": token}).status_code == 403
    token = _form_token(anonymous.get(path).text)
    saved = anonymous.post(path, data={**leave_all, "form_token": token})
    assert saved.status_code == 200 and "saved" in saved.text
    left = {"offers": "unsubscribed", "product-news": "unsubscribed"}
    assert topic_statuses(runtime, ada) == left
    assert email_consent(runtime, ada) == ("unsubscribed", "preferences")
    topics_left = sorted(
        e.properties["topic"] for e in events_named(runtime, ada, "email_unsubscribed")
    )
    assert topics_left == ["all", "offers", "product-news"]


def test_contact_data_on_the_page_is_escaped(runtime: Runtime, anonymous: httpx.Client) -> None:
    with runtime.database.transaction() as session:
        contact_id = create_contact(session, runtime, email="ada@example.com")
        topic = TopicIn(key="xss", name="<script>alert(1)</script>")
        runtime.subscriptions.topics.create(session, topic)
    page = anonymous.get(path_of(runtime.links.preferences_url(contact_id))).text
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_resubscribing_from_the_page_and_unknown_links(
    runtime: Runtime, anonymous: httpx.Client, api: httpx.Client
) -> None:
    with runtime.database.transaction() as session:
        contact_id = create_contact(session, runtime, consent="unsubscribed")
    path = path_of(runtime.links.preferences_url(contact_id))
    token = _form_token(anonymous.get(path).text)
    saved = anonymous.post(path, data={"topic": ["newsletter", "offers"], "form_token": token})
    assert saved.status_code == 200
    assert email_consent(runtime, contact_id) == ("subscribed", "preferences")
    assert topic_statuses(runtime, contact_id) == {"product-news": "unsubscribed"}
    export = api.get(f"/api/contacts/{contact_id}/export").json()
    assert [(t["topic"], t["status"]) for t in export["email_topics"]] == [
        ("product-news", "unsubscribed")
    ]
    assert anonymous.get(path_of(runtime.links.preferences_url(uuid.uuid4()))).status_code == 404
    assert anonymous.get(path[:-3] + "xyz").status_code == 404
