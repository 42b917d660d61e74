"""The send task end to end: outbox → rendered, composed, signed → a real SMTP server."""

from __future__ import annotations

import email
import email.policy
from datetime import timedelta
from pathlib import Path

import dkim
import pytest
from sqlalchemy import select, update

from postillon.clock import VirtualClock
from postillon.messages.sending import send_round
from postillon.models import ContactConsent, ContactTopic, Message, Suppression
from postillon.privacy.suppression import address_digest
from postillon.runtime import Runtime
from postillon.settings import Settings
from postillon.templates.schemas import TemplateIn
from tests.messages.sending_support import SIMPLE_HTML, events_named, messages, subscribe
from tests.support.dkim_keys import dkim_key_file, dns_answering
from tests.support.smtp import SmtpSink
from tests.templates.support import add_contact, queue_messages
from tests.tracking.support import run_worker_round


@pytest.fixture
def dkim_record(tmp_path: Path) -> tuple[Path, bytes]:
    return dkim_key_file(tmp_path, key_size=1024)


@pytest.fixture
def settings(settings: Settings, sink: SmtpSink, dkim_record: tuple[Path, bytes]) -> Settings:
    return settings.model_copy(
        update={
            "smtp_port": sink.port,
            "smtp_connections": 2,
            "smtp_rate_per_second": 1000.0,
            "public_url": "https://mail.example.com",
            "bounce_domain": "bounces.example.com",
            "email_from": "Shop <news@shop.example.com>",
            "dkim_domain": "shop.example.com",
            "dkim_selector": "pst",
            "dkim_private_key_file": dkim_record[0],
        }
    )


def _queue(runtime: Runtime, addresses: dict[str, str | None], *, kind: str = "marketing") -> None:
    """Contacts with these addresses and email consents, and a message to each."""
    with runtime.database.transaction() as session:
        data = TemplateIn.model_validate(
            {"key": f"t-{kind}", "format": "html", "subject": "Hi {{ contact.first_name }}",
             "body": SIMPLE_HTML, "kind": kind}
        )  # fmt: skip
        template_id = runtime.templates.save(session, data)[0].id
        contacts = []
        for address, status in addresses.items():
            contact_id = add_contact(session, runtime, email=address, first_name="Ada")
            if status is not None:
                subscribe(session, runtime, contact_id, status)
            contacts.append(contact_id)
        queue_messages(session, runtime, template_id, contacts, key=kind)


def test_a_message_goes_out_signed_tracked_and_recorded(
    runtime: Runtime, sink: SmtpSink, dkim_record: tuple[Path, bytes]
) -> None:
    _queue(runtime, {"ada@example.com": "subscribed"})
    report = send_round(runtime, runtime.clock.now())
    assert (report.claimed, report.outcomes.sent) == (1, 1)
    [received] = sink.wait_for(1)
    assert received.recipients == ("ada@example.com",)
    assert dkim.verify(
        received.data, dnsfunc=dns_answering(b"pst._domainkey.shop.example.com.", dkim_record[1])
    )
    message = messages(runtime)["ada@example.com"]
    local, _, domain = received.envelope_from.partition("@")
    assert domain == "bounces.example.com"
    assert runtime.links.read_verp_local_part(local) == message.id
    parsed = email.message_from_bytes(received.data, policy=email.policy.default)
    assert parsed["Subject"] == "Hi Ada"
    assert parsed["From"] == "Shop <news@shop.example.com>"
    assert parsed["Message-ID"] == message.smtp_message_id
    assert parsed["List-Unsubscribe"] == f"<{runtime.links.unsubscribe_url(message.id)}>"
    html = parsed.get_body(("html",))
    assert html is not None
    body = html.get_content()
    assert runtime.links.open_pixel_url(message.id) in body
    assert "https://mail.example.com/e/c/" in body
    assert (message.state, message.attempts, message.subject) == ("sent", 1, "Hi Ada")
    assert message.sent_at == runtime.clock.now()
    [sent] = events_named(runtime, "email_sent")
    assert sent["properties"]["message_id"] == str(message.id)


def test_4xx_is_retried_later_with_backoff(
    runtime: Runtime, sink: SmtpSink, clock: VirtualClock
) -> None:
    sink.replies["busy@example.com"] = "451 4.7.1 greylisted, try again later"
    _queue(runtime, {"busy@example.com": "subscribed"})
    send_round(runtime, clock.now())
    first = messages(runtime)["busy@example.com"]
    assert (first.state, first.attempts) == ("queued", 1)
    assert first.last_error == "451 4.7.1 greylisted, try again later"
    assert timedelta(seconds=15) <= first.due_at - clock.now() <= timedelta(seconds=30)
    assert send_round(runtime, clock.now()).claimed == 0  # not due yet
    clock.set(first.due_at)
    send_round(runtime, clock.now())
    second = messages(runtime)["busy@example.com"]
    assert (second.state, second.attempts) == ("queued", 2)
    assert timedelta(seconds=30) <= second.due_at - clock.now() <= timedelta(seconds=60)
    del sink.replies["busy@example.com"]
    clock.set(second.due_at)
    send_round(runtime, clock.now())
    assert messages(runtime)["busy@example.com"].state == "sent"
    assert len(sink.wait_for(1)) == 1


def test_retries_end_after_send_retry_for(
    runtime: Runtime, sink: SmtpSink, clock: VirtualClock
) -> None:
    sink.replies["busy@example.com"] = "452 4.2.2 mailbox full"
    _queue(runtime, {"busy@example.com": "subscribed"})
    for _ in range(400):
        send_round(runtime, clock.now())
        message = messages(runtime)["busy@example.com"]
        if message.state != "queued":
            break
        clock.set(message.due_at)
    assert message.state == "failed"
    assert message.last_error is not None and "mailbox full" in message.last_error
    assert clock.now() - message.queued_at <= runtime.settings.send_retry_for


def test_5xx_is_a_hard_bounce(runtime: Runtime, sink: SmtpSink, clock: VirtualClock) -> None:
    sink.replies["gone@example.com"] = "550 5.1.1 no such user"
    _queue(runtime, {"gone@example.com": "subscribed", "ok@example.com": "subscribed"})
    report = send_round(runtime, clock.now())
    assert (report.outcomes.sent, report.outcomes.bounced) == (1, 1)
    gone = messages(runtime)["gone@example.com"]
    assert (gone.state, gone.bounce_kind, gone.bounced_at) == ("bounced", "hard", clock.now())
    with runtime.database.transaction(read_only=True) as session:
        digest = address_digest(runtime.settings.secret_key, "email", "gone@example.com")
        suppression = session.get(Suppression, digest)
        assert suppression is not None and suppression.reason == "bounced"
        consent = session.scalar(
            select(ContactConsent.status).where(ContactConsent.contact_id == gone.contact_id)
        )
        assert consent == "bounced"
    [bounced] = events_named(runtime, "email_bounced")
    assert bounced["properties"]["code"] == 550
    [changed] = events_named(runtime, "consent_changed")
    assert changed["properties"]["status"] == "bounced"
    # A transactional message to the bounced address is not attempted either.
    _queue(runtime, {"gone2@example.com": None}, kind="transactional")
    with runtime.database.transaction() as session:
        session.execute(
            update(Message)
            .where(Message.to_address == "gone2@example.com")
            .values(to_address="gone@example.com", dedupe_key="again")
        )
    send_round(runtime, clock.now())
    with runtime.database.transaction(read_only=True) as session:
        again = session.scalar(select(Message).where(Message.dedupe_key == "again"))
        assert again is not None and again.state == "suppressed"
    assert [m.recipients for m in sink.wait_for(1)] == [("ok@example.com",)]


def test_marketing_needs_consent_transactional_does_not(
    runtime: Runtime, sink: SmtpSink, clock: VirtualClock
) -> None:
    addresses = {"yes@example.com": "subscribed", "no@example.com": "unsubscribed",
                 "never@example.com": None}  # fmt: skip
    _queue(runtime, addresses)
    _queue(runtime, {f"t-{a}": s for a, s in addresses.items()}, kind="transactional")
    with runtime.database.transaction() as session:
        from postillon.privacy.repository import suppress

        # An erased address: not even transactional mail.
        digest = address_digest(runtime.settings.secret_key, "email", "erased@example.com")
        suppress(session, digest=digest, channel="email", reason="erased", now=clock.now())
    _queue(runtime, {"erased@example.com": "subscribed"}, kind="transactional")
    send_round(runtime, clock.now())
    states = {address: m.state for address, m in messages(runtime).items()}
    assert states == {
        "yes@example.com": "sent", "no@example.com": "suppressed",
        "never@example.com": "suppressed", "t-yes@example.com": "sent",
        "t-no@example.com": "sent", "t-never@example.com": "sent",
        "erased@example.com": "suppressed",
    }  # fmt: skip
    assert (
        messages(runtime)["no@example.com"].last_error
        == "the contact is not subscribed to marketing email"
    )
    received = sorted(m.recipients[0] for m in sink.wait_for(4))
    assert received == sorted(a for a, s in states.items() if s == "sent")


def test_a_claim_left_past_the_lease_becomes_unknown_and_is_never_sent(
    runtime: Runtime, sink: SmtpSink, clock: VirtualClock
) -> None:
    _queue(runtime, {"crash@example.com": "subscribed"})
    with runtime.database.transaction() as session:
        # A worker claimed it and died during the hand-over.
        session.execute(update(Message).values(state="sending", claimed_at=clock.now()))
    assert send_round(runtime, clock.now()).claimed == 0
    assert messages(runtime)["crash@example.com"].state == "sending"
    clock.advance(runtime.settings.send_lease + timedelta(seconds=1))
    report = send_round(runtime, clock.now())
    assert (report.expired, report.claimed) == (1, 0)
    message = messages(runtime)["crash@example.com"]
    assert message.state == "unknown" and "may or may not" in (message.last_error or "")
    clock.advance(timedelta(hours=1))
    send_round(runtime, clock.now())
    assert messages(runtime)["crash@example.com"].state == "unknown"
    assert sink.messages() == []


def test_smtp_down_for_an_hour_then_every_message_arrives_once(
    runtime: Runtime, sink: SmtpSink, clock: VirtualClock
) -> None:
    sink.stop()
    addresses = {f"p{i}@example.com": "subscribed" for i in range(30)}
    _queue(runtime, addresses)
    down_until = clock.now() + timedelta(hours=1)
    while clock.now() < down_until:
        run_worker_round(runtime)  # the whole worker: the send task fails and reschedules
        clock.advance(timedelta(minutes=2))
    states = {m.state for m in messages(runtime).values()}
    assert states == {"queued"}
    assert min(m.attempts for m in messages(runtime).values()) >= 5
    sink.start()  # the same port
    for _ in range(40):
        run_worker_round(runtime)
        if all(m.state == "sent" for m in messages(runtime).values()):
            break
        clock.advance(timedelta(minutes=2))
    assert {m.state for m in messages(runtime).values()} == {"sent"}
    received = sink.wait_for(30)
    assert sorted(m.recipients[0] for m in received) == sorted(addresses)
    assert len(received) == 30


def test_a_left_topic_stops_that_topic_only(
    runtime: Runtime, sink: SmtpSink, clock: VirtualClock
) -> None:
    with runtime.database.transaction() as session:
        for key, topic in (("news", "newsletter"), ("deals", "offers")):
            data = TemplateIn.model_validate(
                {"key": key, "format": "html", "subject": key, "body": SIMPLE_HTML,
                 "kind": "marketing", "topic": topic}
            )  # fmt: skip
            template_id = runtime.templates.save(session, data)[0].id
            if key == "news":
                ada = add_contact(session, runtime, email="ada@example.com")
                subscribe(session, runtime, ada, "subscribed")
                session.add(
                    ContactTopic(contact_id=ada, topic="newsletter", status="unsubscribed",
                                 changed_at=clock.now(), source="test")
                )  # fmt: skip
            queue_messages(session, runtime, template_id, [ada], key=key)
    send_round(runtime, clock.now())
    [received] = sink.wait_for(1)
    email_message = email.message_from_bytes(received.data, policy=email.policy.default)
    assert email_message["Subject"] == "deals"
    with runtime.database.transaction(read_only=True) as session:
        states = {t: s for t, s in session.execute(select(Message.topic, Message.state))}
    assert states == {"newsletter": "suppressed", "offers": "sent"}


class _BrokenProvider:
    async def open(self) -> None:
        pass

    async def send(self, emails: object) -> dict[object, object]:
        raise RuntimeError("a bug in the middle of the hand-over")

    async def close(self) -> None:
        pass


def test_a_provider_that_breaks_leaves_its_messages_unknown(
    runtime: Runtime, sink: SmtpSink, clock: VirtualClock
) -> None:
    _queue(runtime, {"ada@example.com": "subscribed"})
    runtime.sending._provider_factory = _BrokenProvider  # type: ignore[assignment]
    report = send_round(runtime, clock.now())
    assert report.outcomes.unknown == 1
    message = messages(runtime)["ada@example.com"]
    assert (message.state, message.last_error) == ("unknown", "no outcome reported")


def test_a_signature_that_fails_sends_nothing_and_releases_the_claims(
    runtime: Runtime, sink: SmtpSink, clock: VirtualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    _queue(runtime, {"ada@example.com": "subscribed", "bob@example.com": "subscribed"})
    signer = runtime.sending.composer.signer
    assert signer is not None

    def broken(*args: object) -> bytes:
        raise RuntimeError("the key went away")

    monkeypatch.setattr(signer, "signature_header", broken)
    with pytest.raises(RuntimeError, match="the key went away"):
        send_round(runtime, clock.now())
    assert sink.messages() == []
    states = {address: m.state for address, m in messages(runtime).items()}
    assert states == {"ada@example.com": "queued", "bob@example.com": "queued"}
