"""The queries of the simulation: when something is next due, and what happened to a
contact (history, messages, events) in time order."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from postillon.models import (
    Automation,
    AutomationHistory,
    EmailTemplate,
    Event,
    EventQueueItem,
    JourneyRun,
    Message,
    WebhookDelivery,
    WorkerSchedule,
)

# Periodic jobs the simulation stops the clock for (the others run at its regular stops):
# the marks of date and schedule triggers, due at their next trigger moment.
WATCHED_SCHEDULES = "journey-%"
DATE_MARKS = "journey-date:%"


def next_due(session: Session, *, after: datetime) -> datetime | None:
    """The earliest moment after `after` at which a worker has something to do."""
    candidates = [
        select(func.min(JourneyRun.due_at)).where(
            JourneyRun.state.in_(["active", "waiting"]), JourneyRun.due_at > after
        ),
        select(func.min(Message.due_at)).where(Message.state == "queued", Message.due_at > after),
        select(func.min(EventQueueItem.available_at)).where(EventQueueItem.available_at > after),
        select(func.min(WebhookDelivery.due_at)).where(
            WebhookDelivery.state == "queued", WebhookDelivery.due_at > after
        ),
    ]
    candidates.append(
        select(func.min(WorkerSchedule.due_at)).where(
            WorkerSchedule.name.like(WATCHED_SCHEDULES), WorkerSchedule.due_at > after
        )
    )
    moments = [session.scalar(query) for query in candidates]
    found = [m for m in moments if m is not None]
    return min(found) if found else None


def wake_date_marks(session: Session, now: datetime) -> None:
    """Make the marks of date triggers due now (those due later)."""
    session.execute(
        update(WorkerSchedule)
        .where(WorkerSchedule.name.like(DATE_MARKS), WorkerSchedule.due_at > now)
        .values(due_at=now)
    )


def message_of_step(
    session: Session, contact_id: uuid.UUID, step: str, journey: str | None
) -> uuid.UUID | None:
    """The latest message sent to the contact by a journey step of that id."""
    query = (
        select(Message.id)
        .where(Message.contact_id == contact_id, Message.step == step, Message.sent_at.is_not(None))
        .order_by(Message.sent_at.desc())
        .limit(1)
    )
    if journey is not None:
        query = query.join(Automation, Automation.id == Message.automation_id).where(
            Automation.key == journey
        )
    return session.scalar(query)


@dataclass(frozen=True)
class TimelineRow:
    kind: str  # history, message, event
    at: datetime
    text: str
    details: dict[str, Any] | None = None
    automation: str | None = None
    automation_kind: str = "journey"
    step: str | None = None
    outcome: str | None = None
    state: str | None = None
    source: str | None = None


def timeline_rows(session: Session, contact_id: uuid.UUID) -> list[TimelineRow]:
    rows: list[TimelineRow] = []
    history = session.execute(
        select(AutomationHistory, Automation.key, Automation.kind)
        .join(Automation, Automation.id == AutomationHistory.automation_id)
        .where(AutomationHistory.contact_id == contact_id)
        .order_by(AutomationHistory.at, AutomationHistory.id)
    ).all()
    for entry, key, kind in history:
        rows.append(
            TimelineRow(
                "history",
                entry.at,
                entry.reason,
                entry.details,
                automation=key,
                automation_kind=kind,
                step=entry.step_id,
                outcome=entry.outcome,
            )
        )
    messages = session.execute(
        select(Message, EmailTemplate.key, Automation.key)
        .outerjoin(EmailTemplate, EmailTemplate.id == Message.template_id)
        .outerjoin(Automation, Automation.id == Message.automation_id)
        .where(Message.contact_id == contact_id)
        .order_by(Message.queued_at)
    ).all()
    for message, template_key, automation_key in messages:
        rows.append(
            TimelineRow(
                "message",
                message.sent_at or message.due_at,
                message.subject or template_key or "",
                {
                    "message_id": str(message.id),
                    "template": template_key,
                    "queued_at": message.queued_at.isoformat(),
                    "state": message.state,
                },
                automation=automation_key,
                step=message.step,
                state=message.state,
                source=message.source,
            )
        )
    events = session.execute(
        select(Event.occurred_at, Event.name, Event.properties, Event.source)
        .where(
            Event.contact_id == contact_id,
            or_(Event.source == "simulation", Event.name.in_(["email_opened", "email_clicked"])),
        )
        .order_by(Event.occurred_at, Event.id)
    ).all()
    for occurred_at, name, properties, _source in events:
        rows.append(TimelineRow("event", occurred_at, f"the contact: {name}", properties))
    return rows
