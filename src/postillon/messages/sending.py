"""The send task: claim due messages, decide, render, compose, hand over, record.

A round runs in three transactions with the hand-over between the last two:

1. claim — messages left `sending` past the lease become `unknown` (a worker died while
   handing them over: they may have gone out, so they are reported, never re-sent);
   then up to a batch of due `queued` messages become `sending`. Committed before anything
   is sent, so no other worker can take them.
2. prepare, a slice at a time — who may still be mailed (suppression, consent, topic: the
   send check, `SubscriptionService.undeliverable`), the templates rendered for the rest,
   each composed. Refused ones are `suppressed`, unrenderable ones `failed`.
   Each slice is signed (DKIM, on a thread of its own) and handed to the provider while
   the next is prepared; if preparing or signing one breaks, the messages not
   handed over yet are released to the queue.
3. record — after the provider answered for every message (`outcomes`).

The provider's connections live in one event loop on a thread owned by the service, so
they stay open from round to round whichever worker thread runs the task; with
`smtp_process`, in a child process (`channels.email.process`).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from sqlalchemy.orm import Session

from postillon.channels.email.dkim import DkimSigner
from postillon.channels.email.process import ProviderProcess
from postillon.channels.email.provider import EmailProvider, OutgoingEmail, SendOutcome
from postillon.channels.email.smtp import SmtpOptions, SmtpProvider
from postillon.channels.email.throttle import SendThrottle
from postillon.clock import Clock
from postillon.contacts.service import ContactService
from postillon.messages import repository
from postillon.messages.composition import (
    Composer,
    Envelope,
    UnsignedEmail,
    UtmOptions,
    smtp_message_id,
)
from postillon.messages.links import LinkSigner
from postillon.messages.outcomes import Attempt, OutcomeCounts, record_not_sent, record_outcomes
from postillon.messages.repository import ClaimedMessage
from postillon.settings import Settings
from postillon.subscriptions.service import SubscriptionService, Undeliverable
from postillon.templates.rendering import MessageToRender, RenderedEmail, RenderFailure

if TYPE_CHECKING:
    from postillon.runtime import Runtime

logger = logging.getLogger("postillon.sending")

# Messages prepared (rendered, composed) before they are signed and handed over together.
PREPARE_SLICE = 100
# Why a message is `suppressed`, as its `last_error` says.
_REFUSALS = {
    Undeliverable.suppressed: "the address is suppressed (bounced, complained or erased)",
    Undeliverable.no_consent: "the contact is not subscribed to marketing email",
    Undeliverable.topic_left: "the contact left the message's topic",
}


class MessageRenderer(Protocol):
    def render_messages(
        self, session: Session, messages: Sequence[MessageToRender]
    ) -> Mapping[uuid.UUID, RenderedEmail | RenderFailure]:
        """Each message's content, rendered for its contact and context."""
        ...


@dataclass
class PreparedBatch:
    """Claimed messages ready for the provider (and those that ended before it)."""

    attempts: list[Attempt] = field(default_factory=list)
    # Composed, not yet signed: `SendingService.hand_over` signs them.
    emails: list[UnsignedEmail] = field(default_factory=list)
    suppressed: int = 0
    failed: int = 0


@dataclass
class RoundReport:
    expired: int = 0
    claimed: int = 0
    suppressed: int = 0
    render_failed: int = 0
    outcomes: OutcomeCounts = field(default_factory=OutcomeCounts)

    @property
    def done(self) -> int:
        return self.expired + self.claimed


class SendingService:
    """Everything the send task needs, kept across rounds: the composer, the throttle and
    the provider with its connections (on a loop thread of its own)."""

    def __init__(
        self,
        settings: Settings,
        clock: Clock,
        links: LinkSigner,
        *,
        renderer: MessageRenderer,
        subscriptions: SubscriptionService,
        contacts: ContactService,
        provider_factory: Callable[[], EmailProvider] | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.renderer = renderer
        self.subscriptions = subscriptions
        self.contacts = contacts
        self.throttle = SendThrottle(settings.smtp_rate_per_second)
        self.composer = Composer(
            links=links,
            public_url=settings.public_url,
            bounce_domain=settings.bounce_domain,
            utm=UtmOptions(
                enabled=settings.email_utm,
                source=settings.email_utm_source,
                medium=settings.email_utm_medium,
            ),
            signer=dkim_signer(settings),
        )
        # None: SMTP as the settings say (on a thread, or in a process of its own).
        self._provider_factory = provider_factory
        self._provider_loop: _ProviderLoop | ProviderProcess | None = None
        self._lock = threading.Lock()
        # DKIM signatures (about 2 ms of RSA each, without the GIL) are made on a thread
        # of their own while the next slice is rendered and composed.
        self._signing: ThreadPoolExecutor | None = None

    def claim(self, session: Session, now: datetime, wanted: int) -> tuple[list[uuid.UUID], int]:
        """Expire stale claims, then claim what the throttle allows: (claimed, expired)."""
        expired = repository.expire_claims(
            session,
            now - self.settings.send_lease,
            "the worker sending it stopped during the hand-over; it may or may not have "
            "gone out, so it is not sent again",
        )
        if expired:
            logger.warning("%d message(s) left sending past the lease: unknown", len(expired))
        allowed = self.throttle.take(wanted, now)
        if not allowed:
            return [], len(expired)
        claimed = repository.claim_due(session, now, allowed)
        self.throttle.give_back(allowed - len(claimed))
        return claimed, len(expired)

    def prepare(self, session: Session, ids: Sequence[uuid.UUID], now: datetime) -> PreparedBatch:
        """Check, render and compose claimed messages; record the ones that end here."""
        messages = repository.claimed_messages(session, ids)
        refused = {
            message_id: _REFUSALS[why]
            for message_id, why in self.subscriptions.undeliverable(session, messages).items()
        }
        to_render = [m for m in messages if m.id not in refused]
        rendered = self.renderer.render_messages(session, to_render) if to_render else {}
        templates = repository.templates_by_id(
            session, list({m.template_id for m in to_render if m.template_id})
        )
        ended: dict[uuid.UUID, tuple[str, str]] = {
            message_id: ("suppressed", reason) for message_id, reason in refused.items()
        }
        batch = PreparedBatch(suppressed=len(refused))
        for message in to_render:
            content = rendered.get(message.id)
            template = templates.get(message.template_id) if message.template_id else None
            if not isinstance(content, RenderedEmail) or template is None:
                reason = content.reason if isinstance(content, RenderFailure) else "not rendered"
                ended[message.id] = ("failed", f"the template could not be rendered: {reason}")
                batch.failed += 1
                continue
            from_address = template.from_address or self.settings.email_from
            envelope = Envelope(
                message_id=message.id,
                to_address=message.to_address,
                marketing=message.kind == "marketing",
                campaign=_campaign(message, template.key),
                from_address=from_address,
                reply_to=template.reply_to,
                feedback_id=f"{template.key}:{message.kind}:postillon",
                tracked=message.kind != "notification",
            )
            batch.emails.append(self.composer.compose_unsigned(envelope, content, now))
            batch.attempts.append(
                Attempt(
                    message_id=message.id,
                    contact_id=message.contact_id,
                    to_address=message.to_address,
                    kind=message.kind,
                    template_id=message.template_id,
                    broadcast_id=message.broadcast_id,
                    attempts=message.attempts,
                    queued_at=message.queued_at,
                    subject=content.subject,
                    smtp_message_id=smtp_message_id(message.id, from_address),
                )
            )
        record_not_sent(session, ended, now=now)
        return batch

    def hand_over(self, batch: PreparedBatch) -> Future[Future[dict[uuid.UUID, SendOutcome]]]:
        """Sign the batch and submit it: the outer future holds the provider's (or the
        error that kept the batch from being handed over at all)."""
        if self.composer.signer is None:
            handed: Future[Future[dict[uuid.UUID, SendOutcome]]] = Future()
            try:
                handed.set_result(self._sign_and_submit(batch.emails))
            except Exception as error:
                handed.set_exception(error)
            return handed
        with self._lock:
            if self._signing is None:
                self._signing = ThreadPoolExecutor(1, thread_name_prefix="postillon-dkim")
            signing = self._signing
        return signing.submit(self._sign_and_submit, batch.emails)

    def _sign_and_submit(
        self, unsigned: Sequence[UnsignedEmail]
    ) -> Future[dict[uuid.UUID, SendOutcome]]:
        return self.submit([self.composer.sign(email) for email in unsigned])

    def submit(self, emails: Sequence[OutgoingEmail]) -> Future[dict[uuid.UUID, SendOutcome]]:
        """Hand a batch to the provider on its loop thread; the future has every outcome."""
        if not emails:
            done: Future[dict[uuid.UUID, SendOutcome]] = Future()
            done.set_result({})
            return done
        with self._lock:
            if self._provider_loop is None:
                self._provider_loop = self._start_provider()
            provider_loop = self._provider_loop
        return provider_loop.submit(emails)

    def _start_provider(self) -> _ProviderLoop | ProviderProcess:
        if self._provider_factory is not None:
            return _ProviderLoop(self._provider_factory())
        if self.settings.smtp_process:
            return ProviderProcess(smtp_options(self.settings))
        return _ProviderLoop(SmtpProvider(smtp_options(self.settings)))

    def record(
        self, session: Session, batch: PreparedBatch, outcomes: Mapping[uuid.UUID, SendOutcome]
    ) -> OutcomeCounts:
        return record_outcomes(
            session,
            batch.attempts,
            outcomes,
            now=self.clock.now(),
            retry_for=self.settings.send_retry_for,
            secret_key=self.settings.secret_key,
            contacts=self.contacts,
        )

    def close(self) -> None:
        """Close the provider's connections and stop its loop thread (or process)."""
        with self._lock:
            provider_loop, self._provider_loop = self._provider_loop, None
            signing, self._signing = self._signing, None
        if signing is not None:
            signing.shutdown(wait=True)
        if provider_loop is not None:
            provider_loop.stop()


class SendTask:
    """The worker task: one batch a round (see the module docstring)."""

    name = "email_send"

    def __init__(self, batch_size: int | None = None) -> None:
        self.batch_size = batch_size

    def run_due(self, runtime: Runtime, now: datetime) -> int:
        return send_round(runtime, now, batch_size=self.batch_size).done


def send_round(runtime: Runtime, now: datetime, *, batch_size: int | None = None) -> RoundReport:
    """One claim → prepare → hand over → record cycle; the caller of each step's
    transaction is this function."""
    sending = runtime.sending
    report = RoundReport()
    wanted = batch_size or runtime.settings.send_batch_size
    with runtime.database.transaction() as session:
        claimed, report.expired = sending.claim(session, now, wanted)
    report.claimed = len(claimed)
    if not claimed:
        return report
    # Prepared a slice at a time, each handed to the provider at once: its connections
    # send one slice while the next is rendered and signed.
    in_flight: list[tuple[PreparedBatch, Future[Future[dict[uuid.UUID, SendOutcome]]]]] = []
    failure: Exception | None = None
    for start in range(0, len(claimed), PREPARE_SLICE):
        try:
            with runtime.database.transaction() as session:
                batch = sending.prepare(session, claimed[start : start + PREPARE_SLICE], now)
        except Exception as error:
            # Not handed over: these messages may simply be tried again.
            with runtime.database.transaction() as session:
                repository.release_claims(session, claimed[start:], "preparing it failed")
            failure = error
            break
        in_flight.append((batch, sending.hand_over(batch)))
    everything = PreparedBatch()
    outcomes: dict[uuid.UUID, SendOutcome] = {}
    for batch, handed in in_flight:
        report.suppressed += batch.suppressed
        report.render_failed += batch.failed
        try:
            delivery = handed.result()
        except Exception as error:
            # Signing failed: nothing of this batch reached the provider.
            with runtime.database.transaction() as session:
                repository.release_claims(
                    session, [a.message_id for a in batch.attempts], "signing it failed"
                )
            failure = failure or error
            continue
        try:
            outcomes.update(delivery.result())
        except Exception:
            # The provider broke mid-way: what it handed over is unknown. Recorded as
            # such now (no outcome = unknown) rather than left to the lease.
            logger.exception("the email provider failed; %d message(s) unknown", len(batch.emails))
        everything.attempts += batch.attempts
    with runtime.database.transaction() as session:
        report.outcomes = sending.record(session, everything, outcomes)
    if failure is not None:
        raise failure
    return report


def smtp_options(settings: Settings) -> SmtpOptions:
    return SmtpOptions(
        host=settings.smtp_host,
        port=settings.smtp_port,
        security=settings.smtp_security,
        username=settings.smtp_username,
        password=settings.smtp_password,
        timeout_seconds=settings.smtp_timeout_seconds,
        connections=settings.smtp_connections,
    )


def dkim_signer(settings: Settings) -> DkimSigner | None:
    """A signer when the domain, selector and key file are all set."""
    if not (settings.dkim_domain and settings.dkim_selector and settings.dkim_private_key_file):
        return None
    return DkimSigner.from_file(
        domain=settings.dkim_domain,
        selector=settings.dkim_selector,
        key_file=settings.dkim_private_key_file,
    )


def _campaign(message: ClaimedMessage, template_key: str) -> str:
    # A broadcast may name its campaign in the context; otherwise the template's key.
    named = message.context.get("utm_campaign") if message.context else None
    return named if isinstance(named, str) and named else template_key


class _ProviderLoop:
    """An event loop on a daemon thread that owns one provider and its connections."""

    def __init__(self, provider: EmailProvider) -> None:
        self.provider = provider
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(
            target=self.loop.run_forever, name="postillon-email-provider", daemon=True
        )
        self.thread.start()

    def submit(self, emails: Sequence[OutgoingEmail]) -> Future[dict[uuid.UUID, SendOutcome]]:
        return asyncio.run_coroutine_threadsafe(self.provider.send(emails), self.loop)

    def stop(self) -> None:
        try:
            asyncio.run_coroutine_threadsafe(self.provider.close(), self.loop).result(timeout=10)
        except Exception:
            logger.warning("closing the email provider failed", exc_info=True)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()
