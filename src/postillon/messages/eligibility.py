"""Whether each claimed message may still go out, decided in sets just before sending.

Consent and suppression are read at send time, not at enqueue time: someone who
unsubscribed after a broadcast was queued must not get it.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy.orm import Session

from postillon.messages import repository
from postillon.models import Message
from postillon.privacy import repository as suppression_repository
from postillon.privacy.suppression import address_digest


def may_send(
    session: Session, messages: Sequence[Message], secret_key: str
) -> dict[uuid.UUID, str]:
    """The messages that must not go out, each with the reason; the others may.

    Every message: its address must not be suppressed (erased, bounced, complained).
    Marketing messages also need the contact subscribed on email, and the topic kept."""
    refused: dict[uuid.UUID, str] = {}
    digests = {m.id: address_digest(secret_key, "email", m.to_address) for m in messages}
    suppressed = suppression_repository.suppressed(session, set(digests.values()))
    for message in messages:
        reason = suppressed.get(digests[message.id])
        if reason is not None:
            refused[message.id] = f"the address is suppressed ({reason})"
    marketing = [m for m in messages if m.kind == "marketing" and m.id not in refused]
    if not marketing:
        return refused
    consents = repository.email_consents(session, [m.contact_id for m in marketing])
    for message in marketing:
        status = consents.get(message.contact_id)
        if status != "subscribed":
            refused[message.id] = f"no email consent ({status or 'none given'})"
    left = topics_left(session, [m for m in marketing if m.id not in refused and m.topic])
    for message_id in left:
        refused[message_id] = "the contact left this topic"
    return refused


def topics_left(session: Session, messages: Sequence[Message]) -> set[uuid.UUID]:
    """The marketing messages whose contact left the message's topic.

    HOOK: preference topics (`subscriptions/`, table `contact_topics`) are built on another
    branch; once merged this is one query over `contact_topics` for these (contact, topic)
    pairs. Until then no topic is ever left."""
    return set()
