"""Recording what became of claimed messages, in sets, in the caller's transaction.

Sent messages get their time and Message-ID and an `email_sent` event; temporary failures
go back to the queue with a later `due_at` (exponential backoff with jitter) until
`send_retry_for` has passed since they were queued; permanent refusals are hard bounces:
the address is suppressed, the contact's email consent becomes `bounced`, and an
`email_bounced` event is written. An ambiguous hand-over is `unknown`: never re-sent.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from postillon.channels.email.provider import (
    AmbiguousFailure,
    Delivered,
    PermanentFailure,
    SendOutcome,
    TemporaryFailure,
)
from postillon.contacts.changes import ContactChanges
from postillon.contacts.service import ContactService
from postillon.contacts.upsert import Mode
from postillon.events.service import store_events
from postillon.messages import repository
from postillon.privacy.suppression import SuppressionReason, address_digest

FIRST_RETRY = timedelta(seconds=30)
LONGEST_RETRY = timedelta(minutes=30)


@dataclass(frozen=True)
class Attempt:
    """One claimed message as it was handed to the provider."""

    message_id: uuid.UUID
    contact_id: uuid.UUID
    to_address: str
    kind: str
    template_id: uuid.UUID | None
    broadcast_id: uuid.UUID | None
    attempts: int
    queued_at: datetime
    subject: str
    smtp_message_id: str


@dataclass
class OutcomeCounts:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    bounced: int = 0
    unknown: int = 0


@dataclass(frozen=True)
class HardBounce:
    """A permanent refusal of one message's address."""

    message_id: uuid.UUID
    contact_id: uuid.UUID
    address: str
    reason: str
    code: int | None = None


def retry_delay(attempt: int) -> timedelta:
    """How long to wait after the `attempt`-th temporary failure: doubling from 30 s,
    at most 30 minutes, each delay drawn between half and all of it (jitter), so a
    recovered server is not hit by every message at the same instant."""
    full = min(LONGEST_RETRY, FIRST_RETRY * (2 ** min(16, max(0, attempt - 1))))
    return timedelta(seconds=full.total_seconds() * random.uniform(0.5, 1.0))


def record_outcomes(
    session: Session,
    attempts: Sequence[Attempt],
    outcomes: Mapping[uuid.UUID, SendOutcome],
    *,
    now: datetime,
    retry_for: timedelta,
    secret_key: str,
    contacts: ContactService,
) -> OutcomeCounts:
    """Write every attempt's outcome: a few executemany updates and the events."""
    counts = OutcomeCounts()
    sent: list[dict[str, Any]] = []
    retried: list[dict[str, Any]] = []
    ended: list[dict[str, Any]] = []
    bounces: list[HardBounce] = []
    events: list[dict[str, Any]] = []
    for attempt in attempts:
        outcome = outcomes.get(attempt.message_id) or AmbiguousFailure("no outcome reported")
        tries = attempt.attempts + 1
        if isinstance(outcome, Delivered):
            counts.sent += 1
            sent.append(
                {
                    "id": attempt.message_id,
                    "state": "sent",
                    "attempts": tries,
                    "sent_at": now,
                    "subject": attempt.subject,
                    "smtp_message_id": attempt.smtp_message_id,
                    "last_error": None,
                }
            )
            events.append(_sent_event(attempt, now))
        elif isinstance(outcome, TemporaryFailure):
            due_at = now + retry_delay(tries)
            if due_at - attempt.queued_at > retry_for:
                counts.failed += 1
                reason = f"gave up after {tries} attempts: {outcome.reason}"
                ended.append(_ended(attempt, "failed", tries, reason))
            else:
                counts.retried += 1
                retried.append(
                    {
                        "id": attempt.message_id,
                        "state": "queued",
                        "attempts": tries,
                        "due_at": due_at,
                        "claimed_at": None,
                        "last_error": outcome.reason,
                    }
                )
        elif isinstance(outcome, PermanentFailure) and not outcome.address_refused:
            counts.failed += 1
            ended.append(_ended(attempt, "failed", tries, f"refused: {outcome.reason}"))
        elif isinstance(outcome, PermanentFailure):
            counts.bounced += 1
            bounces.append(
                HardBounce(
                    attempt.message_id,
                    attempt.contact_id,
                    attempt.to_address,
                    outcome.reason,
                    outcome.code,
                )
            )
            ended.append(_ended(attempt, "bounced", tries, outcome.reason))
        else:
            counts.unknown += 1
            ended.append(_ended(attempt, "unknown", tries, outcome.reason))
    repository.update_messages(session, sent)
    repository.update_messages(session, retried)
    repository.update_messages(session, ended)
    store_events(session, events, now=now)
    record_hard_bounces(
        session, bounces, now=now, secret_key=secret_key, contacts=contacts, at_submission=True
    )
    return counts


def record_not_sent(
    session: Session, reasons: Mapping[uuid.UUID, tuple[str, str]], *, now: datetime
) -> None:
    """Messages that end before the hand-over: (state, reason) each — `suppressed` (no
    consent, topic left, address suppressed) or `failed` (the template could not render)."""
    repository.update_messages(
        session,
        [
            {"id": message_id, "state": state, "claimed_at": None, "last_error": reason}
            for message_id, (state, reason) in reasons.items()
        ],
    )


def record_hard_bounces(
    session: Session,
    bounces: Sequence[HardBounce],
    *,
    now: datetime,
    secret_key: str,
    contacts: ContactService,
    at_submission: bool = False,
) -> None:
    """Hard bounces, however learnt (a 5xx at submission, a DSN later): the messages
    `bounced`, the addresses suppressed, email consent `bounced`, `email_bounced` events."""
    if not bounces:
        return
    repository.update_messages(
        session,
        [{"id": b.message_id, "bounced_at": now, "bounce_kind": "hard"} for b in bounces],
    )
    repository.insert_suppressions(
        session,
        [
            {
                "address_digest": address_digest(secret_key, "email", bounce.address),
                "channel": "email",
                "reason": SuppressionReason.bounced.value,
                "created_at": now,
            }
            for bounce in {b.address: b for b in bounces}.values()
        ],
    )
    # The contact's consent follows only if the address is still theirs.
    current = repository.emails_of(session, [b.contact_id for b in bounces])
    changed: dict[uuid.UUID, ContactChanges] = {}
    for bounce in bounces:
        if current.get(bounce.contact_id) == bounce.address:
            changes = ContactChanges(contact_id=bounce.contact_id)
            changes.set_consent("email", "bounced", "bounce")
            changed[bounce.contact_id] = changes
    if changed:
        # Through the contacts service: `consent_changed` and the segment refresh follow.
        contacts.apply(session, list(changed.values()), mode=Mode.update, source="bounce")
    store_events(
        session,
        [
            _email_event(
                bounce.contact_id,
                "email_bounced",
                {
                    "message_id": str(bounce.message_id),
                    "kind": "hard",
                    "code": bounce.code,
                    "reason": bounce.reason,
                    "during": "submission" if at_submission else "delivery",
                },
                now,
                f"email_bounced-{bounce.message_id}",
            )
            for bounce in bounces
        ],
        now=now,
    )


def _ended(attempt: Attempt, state: str, tries: int, reason: str) -> dict[str, Any]:
    return {
        "id": attempt.message_id,
        "state": state,
        "attempts": tries,
        "claimed_at": None,
        "last_error": reason,
    }


def _sent_event(attempt: Attempt, now: datetime) -> dict[str, Any]:
    return _email_event(
        attempt.contact_id,
        "email_sent",
        {
            "message_id": str(attempt.message_id),
            "template_id": str(attempt.template_id) if attempt.template_id else None,
            "broadcast_id": str(attempt.broadcast_id) if attempt.broadcast_id else None,
            "kind": attempt.kind,
            "subject": attempt.subject,
        },
        now,
        f"email_sent-{attempt.message_id}",
    )


def _email_event(
    contact_id: uuid.UUID, name: str, properties: dict[str, Any], now: datetime, key: str
) -> dict[str, Any]:
    # A deterministic event id: one message can never get the same event twice.
    return {
        "contact_id": contact_id,
        "anonymous_id": None,
        "user_id": None,
        "message_id": key,
        "type": "track",
        "name": name,
        "properties": properties,
        "context": {},
        "integrations": None,
        "source": "email",
        "occurred_at": now,
        "received_at": now,
    }
