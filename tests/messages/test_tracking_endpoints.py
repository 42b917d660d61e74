"""The open pixel and click redirects over real HTTP: recorded as events, counted only
for people, never a redirect the message did not carry."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx
import pytest

from postillon.models import Contact
from postillon.runtime import Runtime
from tests.messages.email_support import (
    BROWSER_AGENT,
    create_contact,
    create_template,
    events_named,
    message_row,
    path_of,
    sent_message,
)
from tests.tracking.support import run_worker_round

TARGET = "https://shop.example.com/teas/sencha?ref=mail"


@pytest.fixture
def message_id(runtime: Runtime) -> uuid.UUID:
    with runtime.database.transaction() as session:
        contact_id = create_contact(session, runtime)
        template_id = create_template(session, runtime)
        return sent_message(session, runtime, contact_id, template_id)


@pytest.fixture
def browser_client(server_url: str) -> httpx.Client:
    return httpx.Client(base_url=server_url, headers={"User-Agent": BROWSER_AGENT}, timeout=30)


def _contact_state(runtime: Runtime, message_id: uuid.UUID) -> str:
    contact_id = message_row(runtime, message_id).contact_id
    with runtime.database.transaction(read_only=True) as session:
        contact = session.get(Contact, contact_id)
        assert contact is not None
        return contact.state


def test_an_open_is_an_event_and_counts_once(
    runtime: Runtime, message_id: uuid.UUID, browser_client: httpx.Client
) -> None:
    pixel = path_of(runtime.links.open_pixel_url(message_id))
    first = browser_client.get(pixel)
    assert first.status_code == 200
    assert first.headers["content-type"] == "image/gif"
    assert first.content.startswith(b"GIF89a") and len(first.content) == 43
    assert "no-store" in first.headers["cache-control"]
    opened_at = runtime.clock.now()
    runtime.clock.advance(timedelta(minutes=5))
    assert browser_client.get(pixel).status_code == 200

    message = message_row(runtime, message_id)
    assert (message.opened_at, message.clicked_at) == (opened_at, None)
    events = events_named(runtime, message.contact_id, "email_opened")
    assert len(events) == 2
    properties = events[0].properties
    assert properties["message_id"] == str(message_id)
    assert properties["template"] == "newsletter-1"
    assert (properties["machine"], properties["source"]) == (False, "email")
    assert properties["user_agent"] == BROWSER_AGENT
    assert (events[0].source, events[0].type) == ("email", "track")
    assert _contact_state(runtime, message_id) == "monitored"


def test_a_click_redirects_to_its_target_and_implies_an_open(
    runtime: Runtime, message_id: uuid.UUID, browser_client: httpx.Client
) -> None:
    link = path_of(runtime.links.click_url(message_id, TARGET))
    answer = browser_client.get(link)
    assert answer.status_code == 302
    assert answer.headers["location"] == TARGET
    message = message_row(runtime, message_id)
    assert message.clicked_at == message.opened_at == runtime.clock.now()
    (event,) = events_named(runtime, message.contact_id, "email_clicked")
    assert (event.properties["url"], event.properties["machine"]) == (TARGET, False)
    assert _contact_state(runtime, message_id) == "monitored"


def test_tampered_and_unknown_tokens_are_404_and_never_redirect(
    runtime: Runtime, message_id: uuid.UUID, browser_client: httpx.Client
) -> None:
    link = path_of(runtime.links.click_url(message_id, TARGET))
    pixel = path_of(runtime.links.open_pixel_url(message_id))
    # A token made for another target cannot be edited to point elsewhere.
    evil = path_of(runtime.links.click_url(message_id, "https://evil.example.net/"))
    signature = link.rpartition(".")[2]
    forged = f"/e/c/{evil.rpartition('/')[2].rpartition('.')[0]}.{signature}"
    unknown_message = path_of(runtime.links.click_url(uuid.uuid4(), TARGET))
    for path in (
        link[:-2] + "xy",
        forged,
        "/e/c/not-a-token",
        unknown_message,
        pixel.replace(".gif", "x.gif"),
        "/e/o/abc.gif",
        path_of(runtime.links.open_pixel_url(uuid.uuid4())),
        # An open token is no click token (salts per kind).
        "/e/c/" + pixel.rpartition("/")[2].removesuffix(".gif"),
    ):
        answer = browser_client.get(path)
        assert answer.status_code == 404, path
        assert "location" not in answer.headers
    message = message_row(runtime, message_id)
    assert (message.opened_at, message.clicked_at) == (None, None)
    assert events_named(runtime, message.contact_id, "email_clicked") == []


def test_a_click_link_to_a_non_web_target_is_refused(
    runtime: Runtime, message_id: uuid.UUID, browser_client: httpx.Client
) -> None:
    link = path_of(runtime.links.click_url(message_id, "javascript:alert(1)"))
    assert browser_client.get(link).status_code == 404


def test_machine_opens_and_clicks_are_recorded_but_not_counted(
    runtime: Runtime, server_url: str, message_id: uuid.UUID, browser_client: httpx.Client
) -> None:
    pixel = path_of(runtime.links.open_pixel_url(message_id))
    link = path_of(runtime.links.click_url(message_id, TARGET))
    with httpx.Client(base_url=server_url, timeout=30) as bare:
        # Apple Mail Privacy Protection's prefetch.
        assert bare.get(pixel, headers={"User-Agent": "Mozilla/5.0"}).status_code == 200
        # A scanner checking the link without following it.
        head = bare.head(link, headers={"User-Agent": BROWSER_AGENT})
        assert head.status_code == 302
        # A security gateway's scanner.
        scanner = {"User-Agent": "Mozilla/5.0 (compatible; Barracuda Sentinel)"}
        assert bare.get(link, headers=scanner).status_code == 302
    message = message_row(runtime, message_id)
    assert (message.opened_at, message.clicked_at) == (None, None)
    opens = events_named(runtime, message.contact_id, "email_opened")
    clicks = events_named(runtime, message.contact_id, "email_clicked")
    assert [e.properties["machine_reason"] for e in opens] == ["privacy_proxy"]
    assert [e.properties["machine_reason"] for e in clicks] == [
        "head_request",
        "scanner_user_agent",
    ]
    assert all(e.properties["machine"] for e in opens + clicks)
    assert _contact_state(runtime, message_id) == "identified"


def test_clicks_right_after_sending_and_bursts_are_machines(
    runtime: Runtime, browser_client: httpx.Client
) -> None:
    with runtime.database.transaction() as session:
        contact_id = create_contact(session, runtime)
        template_id = create_template(session, runtime)
        just_sent = sent_message(
            session, runtime, contact_id, template_id, sent_ago=timedelta(seconds=3)
        )
        older = sent_message(session, runtime, contact_id, template_id)
    assert browser_client.get(path_of(runtime.links.click_url(just_sent, TARGET))).is_redirect
    assert message_row(runtime, just_sent).clicked_at is None
    # Three different links of one message within a second: the third completes a burst.
    for index in range(3):
        target = f"https://shop.example.com/{index}"
        assert browser_client.get(path_of(runtime.links.click_url(older, target))).is_redirect
    clicks = [
        e.properties
        for e in events_named(runtime, contact_id, "email_clicked")
        if e.properties["message_id"] == str(older)
    ]
    assert [c["machine_reason"] for c in clicks] == [None, None, "click_burst"]
    reasons = [
        e.properties["machine_reason"]
        for e in events_named(runtime, contact_id, "email_clicked")
        if e.properties["message_id"] == str(just_sent)
    ]
    assert reasons == ["too_soon_after_sending"]


def test_only_a_persons_hits_are_the_contacts_activity(
    runtime: Runtime, server_url: str, message_id: uuid.UUID, browser_client: httpx.Client
) -> None:
    pixel = path_of(runtime.links.open_pixel_url(message_id))
    with httpx.Client(base_url=server_url, timeout=30) as bare:
        assert bare.get(pixel, headers={"User-Agent": "Mozilla/5.0"}).status_code == 200
    run_worker_round(runtime)
    contact_id = message_row(runtime, message_id).contact_id

    def last_seen_at() -> object:
        with runtime.database.transaction(read_only=True) as session:
            contact = session.get(Contact, contact_id)
            assert contact is not None
            return contact.last_seen_at

    assert last_seen_at() is None
    runtime.clock.advance(timedelta(minutes=1))
    assert browser_client.get(pixel).status_code == 200
    run_worker_round(runtime)
    assert last_seen_at() == runtime.clock.now()
