"""The bounce server on loopback: real DSNs and ARF reports sent to it by SMTP, and what
they do to messages, consent, the suppression list and the timeline."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import aiosmtplib
import pytest
from sqlalchemy import update

from postillon.bounces.server import bounce_server
from postillon.models import Message
from postillon.privacy import repository as privacy_repository
from postillon.privacy.suppression import address_digest
from postillon.runtime import Runtime
from tests.bounces.reports import arf, dsn, plain_mail
from tests.conftest import TEST_SECRET
from tests.messages.email_support import (
    create_contact,
    create_template,
    email_consent,
    events_named,
    message_row,
    sent_message,
)

ADDRESS = "ada@example.com"


@pytest.fixture
def smtp_port(runtime: Runtime) -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    server = bounce_server(runtime, host="127.0.0.1", port=port)
    server.start()
    yield port
    server.stop()


def _send(port: int, recipient: str, raw: bytes) -> Any:
    """Deliver a report as a remote MTA would (null sender), and return the answer."""

    async def deliver() -> Any:
        async with aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=30) as client:
            return await client.sendmail("", [recipient], raw)

    return asyncio.run(deliver())


def _messages(runtime: Runtime, count: int) -> list[uuid.UUID]:
    with runtime.database.transaction() as session:
        contact_id = create_contact(session, runtime, email=ADDRESS)
        template_id = create_template(session, runtime)
        return [
            sent_message(
                session,
                runtime,
                contact_id,
                template_id,
                smtp_message_id=f"<m{index}@postillon.test>",
            )
            for index in range(count)
        ]


def _verp(runtime: Runtime, message_id: uuid.UUID) -> str:
    return f"{runtime.links.verp_local_part(message_id)}@localhost"


def _suppressed(runtime: Runtime) -> str | None:
    digest = address_digest(TEST_SECRET, "email", ADDRESS)
    with runtime.database.transaction(read_only=True) as session:
        return privacy_repository.suppressed(session, [digest]).get(digest)


def test_a_hard_bounce_closes_the_address(runtime: Runtime, smtp_port: int) -> None:
    (message_id,) = _messages(runtime, 1)
    _send(smtp_port, _verp(runtime, message_id), dsn(ADDRESS))
    message = message_row(runtime, message_id)
    assert (message.state, message.bounce_kind) == ("bounced", "hard")
    assert message.bounced_at == runtime.clock.now()
    assert email_consent(runtime, message.contact_id) == ("bounced", "bounce")
    assert _suppressed(runtime) == "bounced"
    (event,) = events_named(runtime, message.contact_id, "email_bounced")
    assert event.properties["kind"] == "hard"
    assert event.properties["message_id"] == str(message_id)
    assert event.properties["status"] == "5.1.1"
    # The same DSN again changes nothing.
    _send(smtp_port, _verp(runtime, message_id), dsn(ADDRESS))
    assert len(events_named(runtime, message.contact_id, "email_bounced")) == 1


def test_three_soft_bounces_in_a_row_count_as_hard(runtime: Runtime, smtp_port: int) -> None:
    first, second, third = _messages(runtime, 3)
    soft = dsn(ADDRESS, action="delayed", status="4.2.2", diagnostic="smtp; 452 mailbox full")
    for message_id in (first, second):
        _send(smtp_port, _verp(runtime, message_id), soft)
        runtime.clock.advance(timedelta(days=1))
    contact_id = message_row(runtime, first).contact_id
    assert [message_row(runtime, m).bounce_kind for m in (first, second)] == ["soft", "soft"]
    assert message_row(runtime, first).state == "sent"
    assert email_consent(runtime, contact_id) == ("subscribed", "test")
    assert _suppressed(runtime) is None
    _send(smtp_port, _verp(runtime, third), soft)
    assert (message_row(runtime, third).state, message_row(runtime, third).bounce_kind) == (
        "bounced",
        "hard",
    )
    assert email_consent(runtime, contact_id) == ("bounced", "bounce")
    assert _suppressed(runtime) == "bounced"
    kinds = [e.properties["kind"] for e in events_named(runtime, contact_id, "email_bounced")]
    assert kinds == ["soft", "soft", "hard"]


def test_a_person_reading_in_between_resets_the_count(runtime: Runtime, smtp_port: int) -> None:
    first, second, third = _messages(runtime, 3)
    soft = dsn(ADDRESS, action="delayed", status="4.2.2")
    for message_id in (first, second):
        _send(smtp_port, _verp(runtime, message_id), soft)
        runtime.clock.advance(timedelta(hours=1))
    with runtime.database.transaction() as session:
        session.execute(
            update(Message).where(Message.id == second).values(opened_at=runtime.clock.now())
        )
    runtime.clock.advance(timedelta(hours=1))
    _send(smtp_port, _verp(runtime, third), soft)
    assert message_row(runtime, third).bounce_kind == "soft"
    assert email_consent(runtime, message_row(runtime, third).contact_id) == ("subscribed", "test")


def test_a_complaint_closes_the_address(runtime: Runtime, smtp_port: int) -> None:
    (message_id,) = _messages(runtime, 1)
    _send(smtp_port, _verp(runtime, message_id), arf(ADDRESS))
    message = message_row(runtime, message_id)
    assert message.complained_at == runtime.clock.now()
    assert email_consent(runtime, message.contact_id) == ("complained", "bounce")
    assert _suppressed(runtime) == "complained"
    (event,) = events_named(runtime, message.contact_id, "email_complained")
    assert event.properties["feedback_type"] == "abuse"


def test_without_verp_the_original_message_id_attributes(runtime: Runtime, smtp_port: int) -> None:
    _, second = _messages(runtime, 2)
    _send(smtp_port, "bounce@localhost", dsn(ADDRESS, original_message_id="<m1@postillon.test>"))
    assert message_row(runtime, second).bounce_kind == "hard"
    # A complaint with neither VERP nor a known Message-ID: the last message to the address.
    runtime.clock.advance(timedelta(minutes=1))
    _send(smtp_port, "bounce@localhost", arf(ADDRESS, original_message_id="<nope@x>"))
    assert message_row(runtime, second).complained_at is not None


def test_unknown_verp_and_other_mail_change_nothing(runtime: Runtime, smtp_port: int) -> None:
    (message_id,) = _messages(runtime, 1)
    forged = f"bounce+{message_id.hex}.0000000000000000@localhost"
    _send(smtp_port, forged, dsn("nobody@example.net", original_message_id="<x@y>"))
    _send(smtp_port, _verp(runtime, message_id), plain_mail(_verp(runtime, message_id)))
    message = message_row(runtime, message_id)
    assert (message.state, message.bounce_kind) == ("sent", None)
    assert events_named(runtime, message.contact_id, "email_bounced") == []


def test_other_recipients_are_refused(runtime: Runtime, smtp_port: int) -> None:
    for recipient in ("ada@localhost", "bounce+x@elsewhere.example", "postmaster@localhost"):
        with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as refused:
            _send(smtp_port, recipient, plain_mail(recipient))
        assert refused.value.recipients[0].code == 550
