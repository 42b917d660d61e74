"""The SMTP provider against a real aiosmtpd server on loopback."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from pathlib import Path

from postillon.channels.email.provider import (
    AmbiguousFailure,
    Delivered,
    OutgoingEmail,
    PermanentFailure,
    SendOutcome,
    TemporaryFailure,
)
from postillon.channels.email.smtp import SmtpOptions, SmtpProvider
from tests.support.smtp import SmtpSink, free_port, self_signed_certificate


def _email(to: str, text: str = "hello") -> OutgoingEmail:
    data = f"From: a@example.com\r\nTo: {to}\r\nSubject: t\r\n\r\n{text}\r\n".encode()
    return OutgoingEmail(uuid.uuid4(), "bounce@example.com", (to,), data)


def _send(
    provider: SmtpProvider, *batches: Sequence[OutgoingEmail]
) -> list[dict[uuid.UUID, SendOutcome]]:
    async def run() -> list[dict[uuid.UUID, SendOutcome]]:
        try:
            return [await provider.send(batch) for batch in batches]
        finally:
            await provider.close()

    return asyncio.run(run())


def test_a_batch_goes_out_over_the_pool_and_connections_are_kept(sink: SmtpSink) -> None:
    provider = SmtpProvider(SmtpOptions(host="127.0.0.1", port=sink.port, connections=3))
    first = [_email(f"p{i}@example.com") for i in range(10)]
    second = [_email(f"q{i}@example.com") for i in range(5)]

    async def run() -> tuple[dict[uuid.UUID, SendOutcome], int, dict[uuid.UUID, SendOutcome]]:
        one = await provider.send(first)
        kept = len(provider._idle)
        two = await provider.send(second)
        await provider.close()
        return one, kept, two

    one, kept, two = asyncio.run(run())
    assert all(isinstance(o, Delivered) for o in [*one.values(), *two.values()])
    assert kept == 3
    received = sink.wait_for(15)
    assert sorted(m.recipients[0] for m in received) == sorted(
        e.recipients[0] for e in first + second
    )
    assert {m.envelope_from for m in received} == {"bounce@example.com"}


def test_4xx_is_temporary_5xx_permanent_and_the_connection_goes_on(sink: SmtpSink) -> None:
    sink.replies["busy@example.com"] = "451 4.3.0 try again later"
    sink.replies["gone@example.com"] = "550 5.1.1 no such user"
    provider = SmtpProvider(SmtpOptions(host="127.0.0.1", port=sink.port, connections=1))
    busy, gone, fine = (_email(a) for a in ("busy@example.com", "gone@example.com", "ok@x.org"))
    [outcomes] = _send(provider, [busy, gone, fine])
    assert outcomes[busy.message_id] == TemporaryFailure("451 4.3.0 try again later")
    assert outcomes[gone.message_id] == PermanentFailure(550, "550 5.1.1 no such user")
    assert isinstance(outcomes[fine.message_id], Delivered)
    assert [m.recipients for m in sink.wait_for(1)] == [("ok@x.org",)]


def test_a_server_that_is_down_makes_every_message_temporary() -> None:
    port = free_port()
    provider = SmtpProvider(SmtpOptions(host="127.0.0.1", port=port, connections=4))
    emails = [_email(f"d{i}@example.com") for i in range(20)]
    [outcomes] = _send(provider, emails)
    assert len(outcomes) == 20
    assert all(isinstance(o, TemporaryFailure) for o in outcomes.values())
    sink = SmtpSink(port=port).start()
    try:
        [again] = _send(provider, emails)
        assert all(isinstance(o, Delivered) for o in again.values())
        assert len(sink.wait_for(20)) == 20
    finally:
        sink.stop()


def test_a_connection_dropped_between_batches_is_opened_again() -> None:
    sink = SmtpSink().start()
    provider = SmtpProvider(SmtpOptions(host="127.0.0.1", port=sink.port, connections=2))

    async def run() -> list[dict[uuid.UUID, SendOutcome]]:
        results = [await provider.send([_email("a@example.com")])]
        sink.stop()
        sink.start()
        results.append(await provider.send([_email("b@example.com")]))
        results.append(await provider.send([_email("c@example.com")]))
        await provider.close()
        return results

    try:
        first, during, after = asyncio.run(run())
    finally:
        sink.stop()
    assert isinstance(next(iter(first.values())), Delivered)
    # The kept connection died with the server: found out before DATA, so temporary.
    assert isinstance(next(iter(during.values())), Delivered | TemporaryFailure)
    assert isinstance(next(iter(after.values())), Delivered)


def test_no_final_reply_after_the_data_is_ambiguous(sink: SmtpSink) -> None:
    sink.data_stall.set()
    options = SmtpOptions(host="127.0.0.1", port=sink.port, connections=1, timeout_seconds=0.3)
    email = _email("slow@example.com")
    [outcomes] = _send(SmtpProvider(options), [email])
    assert isinstance(outcomes[email.message_id], AmbiguousFailure)


def test_starttls_with_a_checked_certificate_and_login(tmp_path: Path) -> None:
    certificate = self_signed_certificate(tmp_path)
    sink = SmtpSink(tls_context=certificate.server_context(), login=("mailer", "s3cret")).start()
    try:
        options = SmtpOptions(
            host="127.0.0.1",
            port=sink.port,
            security="starttls",
            username="mailer",
            password="s3cret",
            tls_context=certificate.client_context(),
        )
        email = _email("tls@example.com")
        [outcomes] = _send(SmtpProvider(options), [email])
        assert isinstance(outcomes[email.message_id], Delivered)
        assert sink.logins == ["mailer"]
        assert len(sink.wait_for(1)) == 1
        wrong = SmtpOptions(**{**options.__dict__, "password": "nope"})
        refused = _email("tls2@example.com")
        [outcomes] = _send(SmtpProvider(wrong), [refused])
        assert isinstance(outcomes[refused.message_id], TemporaryFailure)
        assert "login refused" in outcomes[refused.message_id].reason  # type: ignore[union-attr]
    finally:
        sink.stop()


def test_a_server_that_requires_starttls_refuses_plain_text(tmp_path: Path) -> None:
    certificate = self_signed_certificate(tmp_path)
    sink = SmtpSink(tls_context=certificate.server_context()).start()
    try:
        email = _email("plain@example.com")
        [outcomes] = _send(SmtpProvider(SmtpOptions(host="127.0.0.1", port=sink.port)), [email])
        # Our session was refused, not the recipient: retried later, never a bounce.
        assert isinstance(outcomes[email.message_id], TemporaryFailure)
        assert sink.messages() == []
    finally:
        sink.stop()
