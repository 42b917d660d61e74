"""The messages API over HTTP: ask for a template to be sent, follow the message."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from postillon.messages.sending import send_round
from postillon.runtime import Runtime
from postillon.settings import Settings
from postillon.templates.schemas import TemplateIn
from tests.messages.sending_support import SIMPLE_HTML, subscribe
from tests.support.smtp import SmtpSink
from tests.templates.support import add_contact


@pytest.fixture
def settings(settings: Settings, sink: SmtpSink) -> Settings:
    return settings.model_copy(update={"smtp_port": sink.port})


@pytest.fixture
def contacts(runtime: Runtime) -> dict[str, str]:
    """A transactional template and two contacts; their ids by name."""
    with runtime.database.transaction() as session:
        runtime.templates.save(
            session,
            TemplateIn(key="receipt", subject="Your order", body=SIMPLE_HTML, format="html",
                       kind="transactional"),
        )  # fmt: skip
        ada = add_contact(session, runtime, email="ada@example.com")
        bob = add_contact(session, runtime, email="bob@example.com", first_name="Bob")
        subscribe(session, runtime, ada, "unsubscribed")
    return {"ada": str(ada), "bob": str(bob)}


def test_send_follow_and_list(
    api: httpx.Client, runtime: Runtime, sink: SmtpSink, contacts: dict[str, str]
) -> None:
    body = {
        "template": "receipt",
        "contact_ids": [contacts["ada"]],
        "emails": [" Bob@Example.com"],
        "context": {"offer": 7},
        "dedupe_key": "order-1",
    }
    answer = api.post("/api/messages", json=body)
    assert answer.status_code == 202, answer.text
    sent = answer.json()
    assert sent["kind"] == "transactional"
    assert [m["contact_id"] for m in sent["messages"]] == [contacts["ada"], contacts["bob"]]
    assert not any(m["duplicate"] for m in sent["messages"])
    again = api.post("/api/messages", json=body).json()
    assert [m["message_id"] for m in again["messages"]] == [
        m["message_id"] for m in sent["messages"]
    ]
    assert all(m["duplicate"] for m in again["messages"])

    ada_message = sent["messages"][0]["message_id"]
    queued = api.get(f"/api/messages/{ada_message}").json()
    assert (queued["state"], queued["attempts"], queued["to_address"]) == (
        "queued", 0, "ada@example.com",
    )  # fmt: skip
    assert api.get("/api/messages/stats").json()["states"]["queued"] == 2

    # Transactional: sent although Ada unsubscribed from marketing mail.
    send_round(runtime, runtime.clock.now())
    assert len(sink.wait_for(2)) == 2
    done = api.get(f"/api/messages/{ada_message}").json()
    assert (done["state"], done["attempts"], done["subject"]) == ("sent", 1, "Your order")
    assert done["sent_at"] is not None and done["smtp_message_id"]

    # A second message for Ada, without a key: a new one each time.
    runtime.clock.advance(timedelta(minutes=1))
    second = api.post(
        "/api/messages", json={"template": "receipt", "contact_ids": [contacts["ada"]]}
    )
    newest = second.json()["messages"][0]["message_id"]
    first_page = api.get(f"/api/contacts/{contacts['ada']}/messages", params={"limit": 1}).json()
    assert [m["id"] for m in first_page["items"]] == [newest]
    rest = api.get(
        f"/api/contacts/{contacts['ada']}/messages",
        params={"limit": 1, "cursor": first_page["next_cursor"]},
    ).json()
    assert [m["id"] for m in rest["items"]] == [ada_message]
    assert rest["next_cursor"] is None
    assert api.get("/api/messages/stats").json()["states"] == {
        "queued": 1, "sending": 0, "sent": 2, "failed": 0, "bounced": 0, "suppressed": 0,
        "unknown": 0, "cancelled": 0,
    }  # fmt: skip


def test_bad_requests_name_what_is_wrong(
    api: httpx.Client, anonymous: httpx.Client, contacts: dict[str, str]
) -> None:
    unknown_template = api.post("/api/messages", json={"template": "nope", "emails": ["a@b.co"]})
    assert unknown_template.status_code == 422
    assert unknown_template.json()["problems"][0]["loc"] == "template"
    missing = "0193e0c8-0000-7000-8000-000000000009"
    unknown = api.post(
        "/api/messages",
        json={"template": "receipt", "contact_ids": [contacts["ada"], missing],
              "emails": ["nobody@example.com", "not an address"]},
    )  # fmt: skip
    assert unknown.status_code == 422
    assert [p["loc"] for p in unknown.json()["problems"]] == [
        "contact_ids[1]", "emails[1]", "emails[0]",
    ]  # fmt: skip
    nobody = api.post("/api/messages", json={"template": "receipt"})
    assert nobody.status_code == 422
    assert api.get(f"/api/messages/{missing}").status_code == 404
    assert api.get("/api/messages/not-an-id").status_code == 422
    assert api.get(f"/api/contacts/{missing}/messages").status_code == 404
    bad_cursor = api.get(f"/api/contacts/{contacts['ada']}/messages", params={"cursor": "x"})
    assert bad_cursor.status_code == 422
    assert anonymous.post("/api/messages", json={"template": "receipt"}).status_code == 401
