"""The seed scenarios' stage: a runtime driven by `Simulation` (as `postillon simulate`
drives one), its automations saved and published through the automation service, and
the mails a real SMTP server on loopback received, read back with the moment each was
sent (the `Date` header: the virtual clock's time when the send task ran)."""

from __future__ import annotations

import email
import email.policy
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from email.message import EmailMessage
from email.utils import parsedate_to_datetime
from typing import Any
from zoneinfo import ZoneInfo

import yaml
from sqlalchemy import select

from postillon.automations.simulation import DEFAULT_WAKE_EVERY, PlannedEvent, Simulation
from postillon.clock import VirtualClock
from postillon.contacts.schemas import ContactIn
from postillon.models import Automation, AutomationHistory, JourneyRun
from postillon.runtime import Runtime
from postillon.templates.schemas import TemplateIn
from tests.support.smtp import SmtpSink

UNSUBSCRIBE = '<p><a href="{{ unsubscribe_url }}">Unsubscribe</a></p>'


@dataclass(frozen=True)
class Mail:
    """A mail the SMTP server received."""

    to: str
    subject: str
    at: datetime  # when it was sent, in UTC
    html: str

    def local(self, zone: str) -> datetime:
        return self.at.astimezone(ZoneInfo(zone))

    def local_day(self, zone: str) -> date:
        return self.local(zone).date()


def received(sink: SmtpSink) -> list[Mail]:
    """Every mail the server received, oldest first (by its Date, then arrival)."""
    found: list[Mail] = []
    for mail in sink.messages():
        parsed = email.message_from_bytes(mail.data, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        body = parsed.get_body(("html",))
        html = str(body.get_content()) if body is not None else ""
        sent = parsedate_to_datetime(str(parsed["Date"]))
        found += [Mail(to, str(parsed["Subject"]), sent, html) for to in mail.recipients]
    return sorted(found, key=lambda m: m.at)


def mails_to(sink: SmtpSink, address: str) -> list[tuple[str, datetime]]:
    """(subject, sent at) of the mails one address received, oldest first."""
    return [(m.subject, m.at) for m in received(sink) if m.to == address]


class Scenario:
    """Templates, contacts and automations set up as a marketer would (through the
    services), then time played forward by the simulation."""

    def __init__(
        self, runtime: Runtime, clock: VirtualClock, *, wake_every: timedelta = DEFAULT_WAKE_EVERY
    ) -> None:
        self.runtime = runtime
        self.clock = clock
        self.simulation = Simulation(runtime, clock, wake_every=wake_every)
        self.start = clock.now()

    def template(self, key: str, subject: str, body: str | None = None) -> None:
        html = body if body is not None else f"<p>{key}</p>"
        with self.runtime.database.transaction() as session:
            self.runtime.templates.save(
                session,
                TemplateIn(key=key, format="html", subject=subject, body=html + UNSUBSCRIBE),
            )

    def contact(self, email_address: str, **fields: Any) -> uuid.UUID:
        """A contact subscribed to email, created now (its `contact_created` event is
        queued like any other)."""
        fields.setdefault("consent", {"email": {"status": "subscribed", "source": "scenario"}})
        with self.runtime.database.transaction() as session:
            return self.runtime.contacts.create(
                session, ContactIn(email=email_address, **fields), source="scenario"
            ).id

    def publish(self, *documents: str) -> None:
        """Save the documents as drafts (together, so they may name each other) and
        publish them."""
        parsed = [yaml.safe_load(text) for text in documents]
        journeys = [doc["key"] for doc in parsed if doc["kind"] == "journey"]
        with self.runtime.database.transaction() as session:
            for text, doc in zip(documents, parsed, strict=True):
                self.runtime.automations.save(
                    session, text, source_name=f"{doc['key']}.yaml", also_journeys=journeys
                )
            for doc in parsed:
                self.runtime.automations.publish(session, doc["key"])

    def cap(self, channel: str = "email", *, per_day: int | None, per_week: int | None) -> None:
        with self.runtime.database.transaction() as session:
            self.runtime.frequency_caps.set(session, channel, per_day=per_day, per_week=per_week)

    def run_until(self, moment: datetime, events: Sequence[PlannedEvent] = ()) -> None:
        """Everything the events set off and everything due, up to `moment`."""
        self.simulation.run_until(moment, events=events)

    # --- what happened ---

    def runs(self, journey: str, contact_id: uuid.UUID) -> list[JourneyRun]:
        with self.runtime.database.transaction(read_only=True) as session:
            found = list(
                session.scalars(
                    select(JourneyRun)
                    .join(Automation, Automation.id == JourneyRun.journey_id)
                    .where(Automation.key == journey, JourneyRun.contact_id == contact_id)
                    .order_by(JourneyRun.entered_at)
                )
            )
            session.expunge_all()
            return found

    def history(self, automation: str, contact_id: uuid.UUID) -> list[tuple[str | None, str, str]]:
        """(step, outcome, reason) of what an automation did to a contact, in order."""
        with self.runtime.database.transaction(read_only=True) as session:
            rows = session.execute(
                select(AutomationHistory.step_id, AutomationHistory.outcome,
                       AutomationHistory.reason)
                .join(Automation, Automation.id == AutomationHistory.automation_id)
                .where(Automation.key == automation, AutomationHistory.contact_id == contact_id)
                .order_by(AutomationHistory.at, AutomationHistory.id)
            ).all()  # fmt: skip
        return [(step, outcome, reason) for step, outcome, reason in rows]
