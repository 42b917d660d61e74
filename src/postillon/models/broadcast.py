from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from postillon.kit.types import JSONDocument, UTCDateTime, Uuid
from postillon.models.base import Base


class Broadcast(Base):
    """A newsletter: one or more template variants sent to an audience, now or at a time.

    States: `draft` → `scheduled` (waiting for `start_at`) → `testing` (A/B: the test
    share is sent, the winner is picked at `test_ends_at`) → `sending` (the rest, or
    everyone without a test) → `sent` (no message of it queued or in flight); `cancelled`
    from any state before `sent`.

    Recipients are materialised into `messages` in chunks ordered by contact id; `phase`
    (`test` or `main`), `cursor_contact_id` (the last contact of the phase done) and
    `phase_done` say where a crashed or interrupted worker resumes.
    """

    __tablename__ = "broadcasts"
    __table_args__ = (Index("ix_broadcasts_state", "state", "start_at"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    # What the CLI and the API call it by; letters, digits, - and _.
    key: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(20))
    # "segment" (audience_key is its key), "topic" (audience_key is the topic) or
    # "everyone" (every contact with email consent).
    audience_kind: Mapped[str] = mapped_column(String(20))
    audience_key: Mapped[str | None] = mapped_column(String(100))
    # A fixed moment, or (with local_send_time) none.
    send_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # "YYYY-MM-DDTHH:MM": this wall-clock time in each recipient's time zone.
    local_send_time: Mapped[str | None] = mapped_column(String(16))
    # For contacts without a time zone of their own.
    timezone: Mapped[str] = mapped_column(String(64))
    # When the worker starts it: send_at, or the first zone's local send time.
    start_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The broadcast's own throttle (messages per minute), on top of the provider's.
    rate_per_minute: Mapped[int | None] = mapped_column(Integer)
    # A/B: the share of the audience each variant is tested on, the test's length after
    # its last test message is due, and the figure that decides ("opens" or "clicks").
    test_share_percent: Mapped[int | None] = mapped_column(Integer)
    test_duration_seconds: Mapped[int | None] = mapped_column(Integer)
    winner_metric: Mapped[str | None] = mapped_column(String(10))
    test_ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    winner_variant: Mapped[str | None] = mapped_column(String(50))
    # The figures per variant the winner was picked on.
    test_results: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument)
    phase: Mapped[str | None] = mapped_column(String(10))
    cursor_contact_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    phase_done: Mapped[bool] = mapped_column(Boolean, default=False)
    # When the current phase began: the throttle spreads its messages from there.
    phase_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Messages made so far, and per throttle start (ISO time) how many were spread from it.
    recipient_count: Mapped[int] = mapped_column(Integer, default=0)
    throttle_slots: Mapped[dict[str, Any]] = mapped_column(JSONDocument, default=dict)
    last_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Messages by state when it finished.
    final_counts: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class BroadcastVariant(Base):
    """One version of a broadcast: a template. Variants of subject, content or sender are
    templates that differ in that; each message carries its variant's template id, so
    sending needs nothing beyond the template."""

    __tablename__ = "broadcast_variants"

    broadcast_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("broadcasts.id", ondelete="CASCADE"), primary_key=True
    )
    # "A", "B" … as messages.variant carries it.
    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    # Ties in an A/B test go to the first.
    position: Mapped[int] = mapped_column(Integer)
    template_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("email_templates.id"))
