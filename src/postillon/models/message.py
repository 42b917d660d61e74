from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from postillon.kit.types import JSONDocument, UTCDateTime, Uuid
from postillon.models.base import Base


class Message(Base):
    """One message to one contact: the outbox row and, once sent, its record.

    States: `queued` (waiting for `due_at`) → `sending` (claimed by a worker and committed
    as such before the hand-over starts) → `sent`; `queued` again with a later `due_at`
    after a temporary failure; `failed` (permanent refusal, or retries exhausted);
    `bounced` (hard bounce after sending); `suppressed` (not sent: no consent, topic left,
    suppressed address); `unknown` (a worker died during the hand-over: it may or may not
    have gone out, so it is reported and never re-sent blindly).

    `dedupe_key` is unique: the same broadcast, journey step or rule action can never make
    a second message for the same contact.
    """

    __tablename__ = "messages"
    __table_args__ = (
        Index("ix_messages_due", "state", "due_at"),
        Index("ix_messages_contact", "contact_id", "queued_at"),
        Index("ix_messages_broadcast", "broadcast_id", "state"),
        Index("ix_messages_template", "template_id", "queued_at"),
        Index("ix_messages_automation", "automation_id", "step"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    contact_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("contacts.id", ondelete="CASCADE")
    )
    channel: Mapped[str] = mapped_column(String(20))
    # "marketing" or "transactional".
    kind: Mapped[str] = mapped_column(String(20))
    topic: Mapped[str | None] = mapped_column(String(100))
    template_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("email_templates.id"))
    template_version: Mapped[int | None] = mapped_column(Integer)
    broadcast_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("broadcasts.id"))
    # The A/B variant of a broadcast (or journey split) this message carries.
    variant: Mapped[str | None] = mapped_column(String(50))
    # The rule or journey (and the journey's step) that sent it.
    automation_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("automations.id", ondelete="SET NULL")
    )
    step: Mapped[str | None] = mapped_column(String(60))
    # Who asked for it: api, broadcast, journey, rule, optin …
    source: Mapped[str] = mapped_column(String(50))
    dedupe_key: Mapped[str] = mapped_column(String(300), unique=True)
    to_address: Mapped[str] = mapped_column(String(320))
    # Data for the template beside the contact: the triggering event's properties.
    context: Mapped[dict[str, Any]] = mapped_column(JSONDocument, default=dict)
    subject: Mapped[str | None] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(20))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    queued_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    # The Message-ID header it went out with.
    smtp_message_id: Mapped[str | None] = mapped_column(String(255))
    bounced_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # "hard" or "soft".
    bounce_kind: Mapped[str | None] = mapped_column(String(10))
    complained_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The first open and click by a person (machine opens and clicks are only events).
    opened_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    clicked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    unsubscribed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Opens by privacy proxies and scanners (tracking adds 1 for each): reported apart
    # from the unique opens, which count people only.
    machine_opens: Mapped[int] = mapped_column(Integer, default=0)
