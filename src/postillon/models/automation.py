"""Rules and journeys (automations), their published versions, journey runs, the history
of every rule firing and journey step (what `explain` shows), webhook deliveries and
the frequency caps."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from postillon.kit.types import JSONDocument, UTCDateTime, Uuid
from postillon.models.base import Base

# The running states of a journey run (`automations.journeys.runs.RUNNING`) as SQL with
# the values written out: a query must say it in these words for the partial due index to
# serve it (a bound parameter would not prove the index's condition).
RUNNING_CONDITION = "journey_runs.state IN ('active', 'waiting')"


class Automation(Base):
    """A rule or a journey as the marketer keeps it: the draft being edited and which
    version is published. `status`: `draft` (never published), `active`, `paused` (a
    journey's runs hold; a rule does not fire), `archived`."""

    __tablename__ = "automations"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    key: Mapped[str] = mapped_column(String(100), unique=True)
    # "rule" or "journey".
    kind: Mapped[str] = mapped_column(String(10))
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(10))
    # The draft as written (YAML or JSON text) and as parsed JSON.
    draft_source: Mapped[str] = mapped_column(Text)
    draft_document: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    published_version: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    paused_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AutomationVersion(Base):
    """A published version: immutable. Runs remember the version they entered."""

    __tablename__ = "automation_versions"

    automation_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("automations.id", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(Text)
    document: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    published_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Whether active runs of older versions were moved onto this one when it was published.
    migrated_runs: Mapped[int] = mapped_column(Integer, default=0)


class JourneyRun(Base):
    """One contact's way through one journey.

    `state`: `active` (its step `step_id` is due at `due_at`), `waiting` (a wait for an
    event: `wait_event` names it, `due_at` is the timeout), `queued` (an exclusive
    journey waiting for the contact's current one to end), and the ends: `completed`,
    `converted` (the goal), `exited` (an exit criterion, a cap, a removal, a take-over),
    `moved` (to another journey), `control` (the control group of a split).
    `entry_key` is unique per journey: the same event never starts it twice.
    `context` holds the triggering event (`event`), the messages sent by step
    (`messages`: step id → message id) and the split variants taken (`variants`).
    """

    __tablename__ = "journey_runs"
    __table_args__ = (
        # Due runs in due order (`claim_due`): only the running states.
        Index(
            "ix_journey_runs_due",
            "due_at",
            sqlite_where=text(RUNNING_CONDITION),
            postgresql_where=text(RUNNING_CONDITION),
        ),
        Index("ix_journey_runs_contact", "contact_id", "state"),
        Index("ix_journey_runs_journey", "journey_id", "state"),
        Index("uq_journey_runs_entry", "journey_id", "entry_key", unique=True),
        Index(
            "ix_journey_runs_waiting",
            "contact_id",
            "wait_event",
            sqlite_where=text("state = 'waiting'"),
            postgresql_where=text("state = 'waiting'"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    journey_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("automations.id", ondelete="CASCADE")
    )
    version: Mapped[int] = mapped_column(Integer)
    contact_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("contacts.id", ondelete="CASCADE")
    )
    state: Mapped[str] = mapped_column(String(10))
    step_id: Mapped[str | None] = mapped_column(String(60))
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    wait_event: Mapped[str | None] = mapped_column(String(200))
    entry_key: Mapped[str] = mapped_column(String(300))
    source: Mapped[str] = mapped_column(String(100))
    context: Mapped[dict[str, Any]] = mapped_column(JSONDocument, default=dict)
    # Exclusive journeys: the priority the run entered with.
    priority: Mapped[int | None] = mapped_column(Integer)
    entered_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    end_reason: Mapped[str | None] = mapped_column(Text)
    steps_done: Mapped[int] = mapped_column(Integer, default=0)


class AutomationHistory(Base):
    """Every rule firing and journey step per contact: what `explain` shows.

    `outcome` e.g. `fired`, `skipped`, `entered`, `queued`, `sent`, `held`, `waited`,
    `branched`, `converted`, `exited`; `reason` says why in words; `details` holds what
    was decided (branch taken, variant, message id, cap and its counts …)."""

    __tablename__ = "automation_history"
    __table_args__ = (
        Index("ix_automation_history_contact", "contact_id", "at"),
        Index("ix_automation_history_automation", "automation_id", "contact_id", "at"),
        Index("ix_automation_history_run", "run_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    contact_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("contacts.id", ondelete="CASCADE")
    )
    automation_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("automations.id", ondelete="CASCADE")
    )
    version: Mapped[int] = mapped_column(Integer)
    run_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    step_id: Mapped[str | None] = mapped_column(String(60))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    outcome: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(JSONDocument, default=dict)
    # The event that caused it, if one did.
    event_id: Mapped[int | None] = mapped_column(BigInteger)


class WebhookDelivery(Base):
    """A webhook call asked for by a rule or journey: an outbox like `messages`, sent by
    the worker, retried with backoff; `dedupe_key` makes a replayed action no second call.
    States: `queued` → `sending` → `delivered` / `failed`; `unknown` after a crash
    mid-call (not repeated blindly)."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("ix_webhook_deliveries_due", "state", "due_at"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    contact_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("contacts.id", ondelete="CASCADE")
    )
    automation_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("automations.id", ondelete="SET NULL")
    )
    dedupe_key: Mapped[str] = mapped_column(String(300), unique=True)
    url: Mapped[str] = mapped_column(Text)
    headers: Mapped[dict[str, Any]] = mapped_column(JSONDocument, default=dict)
    body: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(10))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    queued_at: Mapped[datetime] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    response_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)


class FrequencyCap(Base):
    """At most `per_day` (local day) and `per_week` (local week, Monday first) marketing
    messages per contact on a channel, across every journey, rule and broadcast."""

    __tablename__ = "frequency_caps"

    channel: Mapped[str] = mapped_column(String(20), primary_key=True)
    per_day: Mapped[int | None] = mapped_column(Integer)
    per_week: Mapped[int | None] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
