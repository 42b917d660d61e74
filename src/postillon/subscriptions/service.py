"""Who may be mailed, and the contact's own say in it: topics, unsubscribe, preferences.

Consent (`contact_consents`, channel email) says whether a contact takes marketing mail at
all; topics (`contact_topics`) narrow it: no row means subscribed to the topic while the
contact has consent, an "unsubscribed" row means that topic only is left. Leaving
everything is a consent change (through `ContactService`, so `consent_changed` events and
the segment refresh happen as for any other consent change).

Unsubscribe links name a message. From a marketing message with a topic, unsubscribing
leaves that topic only: the recipient objects to what they just received, and the
preference page (linked beside it) offers leaving everything. From any other message
(marketing without a topic, transactional) it withdraws email consent entirely: there is
nothing narrower to leave.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from sqlalchemy.orm import Session

from postillon.clock import Clock
from postillon.contacts.changes import ContactChanges
from postillon.contacts.service import ContactService
from postillon.contacts.upsert import Mode
from postillon.errors import NotFound
from postillon.events.service import store_events
from postillon.messages.tracking import email_event_row
from postillon.privacy import repository as privacy_repository
from postillon.privacy.suppression import address_digest
from postillon.settings import Settings
from postillon.subscriptions import repository
from postillon.subscriptions.topics import TopicService


class Outgoing(Protocol):
    """What the send check needs of a message (a `Message` row has it all)."""

    @property
    def id(self) -> uuid.UUID: ...
    @property
    def contact_id(self) -> uuid.UUID: ...
    @property
    def kind(self) -> str: ...
    @property
    def topic(self) -> str | None: ...
    @property
    def to_address(self) -> str: ...


class Undeliverable(StrEnum):
    """Why a message must not go out (the first that applies, in this order)."""

    suppressed = "suppressed"  # the address bounced, complained or was erased: any kind
    no_consent = "no_consent"  # marketing, and email consent is not "subscribed"
    topic_left = "topic_left"  # marketing on a topic the contact left


@dataclass(frozen=True)
class TopicChoice:
    key: str
    name: str
    description: str | None
    subscribed: bool


@dataclass(frozen=True)
class Preferences:
    contact_id: uuid.UUID
    email: str | None
    # The email consent status ("subscribed", "unsubscribed", "pending" … or None).
    consent: str | None
    topics: list[TopicChoice]

    @property
    def receives_marketing(self) -> bool:
        return self.consent == "subscribed"


@dataclass(frozen=True)
class Unsubscribed:
    contact_id: uuid.UUID
    # The topic left, or None when email consent was withdrawn entirely.
    topic: str | None
    topic_name: str | None
    address: str


class SubscriptionService:
    def __init__(self, settings: Settings, clock: Clock, contacts: ContactService) -> None:
        self.settings = settings
        self.clock = clock
        self.contacts = contacts
        self.topics = TopicService(clock)

    def undeliverable(
        self, session: Session, messages: Sequence[Outgoing]
    ) -> dict[uuid.UUID, Undeliverable]:
        """The messages among `messages` that must not be sent, with why; three queries
        for the whole batch (suppression, consents, topic choices)."""
        digests = {
            m.id: address_digest(self.settings.secret_key, "email", m.to_address.lower())
            for m in messages
        }
        suppressed = privacy_repository.suppressed(session, set(digests.values()))
        marketing = [m for m in messages if m.kind == "marketing"]
        contact_ids = {m.contact_id for m in marketing}
        consents = repository.email_consents(session, contact_ids) if marketing else {}
        with_topic = {m.contact_id for m in marketing if m.topic}
        choices = repository.topic_choices(session, with_topic) if with_topic else {}
        refused: dict[uuid.UUID, Undeliverable] = {}
        for message in messages:
            if digests[message.id] in suppressed:
                refused[message.id] = Undeliverable.suppressed
            elif message.kind != "marketing":
                continue
            elif consents.get(message.contact_id) != "subscribed":
                refused[message.id] = Undeliverable.no_consent
            elif (
                message.topic
                and choices.get(message.contact_id, {}).get(message.topic) == "unsubscribed"
            ):
                refused[message.id] = Undeliverable.topic_left
        return refused

    def preferences(self, session: Session, contact_id: uuid.UUID) -> Preferences:
        """The contact's consent and every topic with whether they receive it."""
        contact = repository.contact(session, contact_id)
        if contact is None:
            raise NotFound(f"no contact with id {contact_id}")
        consent = repository.email_consents(session, [contact_id]).get(contact_id)
        choices = repository.topic_choices(session, [contact_id]).get(contact_id, {})
        return Preferences(
            contact_id=contact_id,
            email=contact.email,
            consent=consent,
            topics=[
                TopicChoice(t.key, t.name, t.description, choices.get(t.key) != "unsubscribed")
                for t in repository.topics(session)
            ],
        )

    def save_preferences(
        self,
        session: Session,
        contact_id: uuid.UUID,
        *,
        subscribed_topics: Collection[str],
        unsubscribe_all: bool,
        source: str = "preferences",
    ) -> Preferences:
        """Apply the preference page: the topics listed are kept, the others left; with
        `unsubscribe_all` email consent is withdrawn. Unticking "unsubscribe from all"
        gives consent back only to a contact who had unsubscribed (or never decided):
        bounced and complaining addresses are not re-opened from a web page."""
        now = self.clock.now()
        current = self.preferences(session, contact_id)
        wanted = set(subscribed_topics)
        changed = [t for t in current.topics if t.subscribed != (t.key in wanted)]
        self._set_topics(
            session,
            contact_id,
            {t.key: t.key in wanted for t in changed},
            source=source,
            message_id=None,
            now=now,
        )
        if unsubscribe_all and current.consent not in ("unsubscribed", "bounced", "complained"):
            self._withdraw_consent(session, contact_id, source=source, message_id=None, now=now)
        elif not unsubscribe_all and current.consent in (None, "unsubscribed"):
            changes = ContactChanges(contact_id=contact_id)
            changes.set_consent("email", "subscribed", source)
            self.contacts.apply(session, [changes], mode=Mode.update, source=source)
        return self.preferences(session, contact_id)

    def unsubscribe_offer(self, session: Session, message_id: uuid.UUID) -> Unsubscribed:
        """What unsubscribing through this message would leave (for the page that asks)."""
        message = repository.message(session, message_id)
        if message is None:
            raise NotFound("this unsubscribe link names no message")
        topic = repository.topic(session, message.topic) if message.topic else None
        if message.kind == "marketing" and topic is not None:
            return Unsubscribed(message.contact_id, topic.key, topic.name, message.to_address)
        return Unsubscribed(message.contact_id, None, None, message.to_address)

    def unsubscribe(self, session: Session, message_id: uuid.UUID, *, source: str) -> Unsubscribed:
        """Unsubscribe through a message's link: its topic, or all email (see the module)."""
        message = repository.message(session, message_id)
        if message is None:
            raise NotFound("this unsubscribe link names no message")
        now = self.clock.now()
        repository.mark_unsubscribed(session, message_id, now)
        topic = repository.topic(session, message.topic) if message.topic else None
        if message.kind == "marketing" and topic is not None:
            self._set_topics(
                session,
                message.contact_id,
                {topic.key: False},
                source=source,
                message_id=message_id,
                now=now,
            )
            return Unsubscribed(message.contact_id, topic.key, topic.name, message.to_address)
        self._withdraw_consent(
            session, message.contact_id, source=source, message_id=message_id, now=now
        )
        return Unsubscribed(message.contact_id, None, None, message.to_address)

    def _set_topics(
        self,
        session: Session,
        contact_id: uuid.UUID,
        subscribed: dict[str, bool],
        *,
        source: str,
        message_id: uuid.UUID | None,
        now: datetime,
    ) -> None:
        if not subscribed:
            return
        repository.set_topic_choices(
            session,
            [
                {
                    "contact_id": contact_id,
                    "topic": key,
                    "status": "subscribed" if on else "unsubscribed",
                    "changed_at": now,
                    "source": source,
                }
                for key, on in sorted(subscribed.items())
            ],
        )
        events: list[dict[str, Any]] = []
        for key, on in sorted(subscribed.items()):
            properties = {"topic": key, "source": source, "message_id": _hex(message_id)}
            name = "email_topic_subscribed" if on else "email_unsubscribed"
            events.append(email_event_row(contact_id, name, properties, now))
        store_events(session, events, now=now)

    def _withdraw_consent(
        self,
        session: Session,
        contact_id: uuid.UUID,
        *,
        source: str,
        message_id: uuid.UUID | None,
        now: datetime,
    ) -> None:
        changes = ContactChanges(contact_id=contact_id)
        changes.set_consent("email", "unsubscribed", source)
        self.contacts.apply(session, [changes], mode=Mode.update, source=source)
        properties = {"topic": "all", "source": source, "message_id": _hex(message_id)}
        store_events(
            session, [email_event_row(contact_id, "email_unsubscribed", properties, now)], now=now
        )


def _hex(value: uuid.UUID | None) -> str | None:
    return None if value is None else str(value)
