"""Factories for automation tests: documents, templates, contacts, and journey runs and
history written as the engine writes them."""

from __future__ import annotations

import textwrap
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from postillon.automations import history
from postillon.contacts.schemas import ContactIn
from postillon.kit.ids import new_id
from postillon.models import Automation, JourneyRun
from postillon.runtime import Runtime
from postillon.segments.schemas import SegmentIn
from postillon.templates.schemas import TemplateIn

ABANDONED_CART = textwrap.dedent(
    """\
    kind: journey
    key: abandoned-cart
    name: Abandoned cart
    trigger: {event: cart_abandoned}
    entry: {policy: unlimited, key: cart_id}
    goal: {event: order_completed}
    exit_when: [{event: email_unsubscribed}]
    on_cap: wait
    quiet_hours: {start: "21:00", end: "08:00", action: hold}
    exclusive: {priority: 5, on_busy: queue}
    timezone: Europe/Berlin
    steps:
      - {id: wait-1h, wait: 1h}
      - {id: reminder, send: cart-reminder}
      - id: bought
        wait_for: {event: order_completed, timeout: 23h}
        on_event: done
      - {id: second, send: {template: cart-reminder-2}}
      - {id: check, if: {tag: vip}, then: vip-mail, else: done}
      - {id: vip-mail, send: vip}
      - {id: done, exit: {}}
    """
)

LEAD_RULE = textwrap.dedent(
    """\
    kind: rule
    key: lead-to-mql
    name: Lead reaches 50
    trigger: {score_reached: 50}
    conditions: {field: email, op: exists}
    once_per_contact: true
    actions:
      - notify: {subject: "A lead is ready", fallback: sales@example.com}
      - stage: mql
      - tags_add: [hot]
    """
)

CART_TEMPLATES = ("cart-reminder", "cart-reminder-2", "vip")


def add_template(session: Session, runtime: Runtime, key: str) -> None:
    data = TemplateIn(
        key=key,
        format="html",
        subject=f"About {key}",
        body=f"<p>{key} for {{{{ contact.email }}}}</p>",
    )
    runtime.templates.save(session, data)


def add_templates(runtime: Runtime, *keys: str) -> None:
    with runtime.database.transaction() as session:
        for key in keys or CART_TEMPLATES:
            add_template(session, runtime, key)


def add_contact(runtime: Runtime, email: str = "ann@example.com", **fields: Any) -> uuid.UUID:
    with runtime.database.transaction() as session:
        (outcome,) = runtime.contacts.upsert_batch(session, [ContactIn(email=email, **fields)])
    assert outcome.contact_id is not None, outcome.error
    return outcome.contact_id


def add_segment(runtime: Runtime, key: str) -> None:
    with runtime.database.transaction() as session:
        runtime.segments.create(session, SegmentIn(key=key, name=key, filter={"tag": key}))


def automation_id(session: Session, key: str) -> uuid.UUID:
    found = session.scalar(select(Automation.id).where(Automation.key == key))
    assert found is not None
    return found


def add_run(
    session: Session,
    *,
    journey_id: uuid.UUID,
    contact_id: uuid.UUID,
    version: int,
    step_id: str | None,
    state: str = "active",
    entered_at: datetime,
    due_at: datetime | None = None,
    ended_at: datetime | None = None,
    end_reason: str | None = None,
) -> uuid.UUID:
    """A journey run as the engine leaves it."""
    run_id = new_id()
    session.add(
        JourneyRun(
            id=run_id,
            journey_id=journey_id,
            version=version,
            contact_id=contact_id,
            state=state,
            step_id=step_id,
            due_at=due_at,
            entry_key=f"key-{run_id}",
            source="event",
            context={},
            entered_at=entered_at,
            ended_at=ended_at,
            end_reason=end_reason,
            steps_done=0,
        )
    )
    session.flush()
    return run_id


def record(
    session: Session,
    *,
    contact_id: uuid.UUID,
    automation: uuid.UUID,
    outcome: history.Outcome,
    reason: str,
    at: datetime,
    run_id: uuid.UUID | None = None,
    step_id: str | None = None,
    version: int = 1,
    details: dict[str, Any] | None = None,
) -> None:
    history.record(
        session,
        [
            history.Entry(
                contact_id=contact_id,
                automation_id=automation,
                version=version,
                outcome=outcome,
                reason=reason,
                at=at,
                run_id=run_id,
                step_id=step_id,
                details=details or {},
            )
        ],
    )


def runs_of(session: Session, journey_id: uuid.UUID) -> list[JourneyRun]:
    return list(
        session.scalars(
            select(JourneyRun).where(JourneyRun.journey_id == journey_id).order_by(JourneyRun.id)
        )
    )
