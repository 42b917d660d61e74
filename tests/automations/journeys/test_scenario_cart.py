"""The seed's abandoned cart, end to end on the virtual clock: events stored and handed to
the engine as the automations consumer does, the worker's rounds (journey steps, then
sending), and the mails received by a real SMTP server on loopback.

cart_abandoned → wait 1 h → reminder; a purchase before then → no mail and a conversion;
no purchase within 23 h more → a second reminder."""

from __future__ import annotations

import email
import email.policy
import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from postillon.clock import VirtualClock
from postillon.models import Event, JourneyRun
from postillon.runtime import Runtime
from postillon.settings import Settings
from postillon.templates.schemas import TemplateIn
from tests.automations.journeys.support import make_contacts, publish, store_event
from tests.support.smtp import SmtpSink
from tests.tracking.support import run_worker_round

CART = """
kind: journey
key: abandoned-cart
name: Abandoned cart
trigger: {event: cart_abandoned}
entry: {policy: unlimited, key: cart_id}
goal: {event: order_completed}
exit_when: [{event: email_unsubscribed}]
steps:
  - {id: wait-1h, wait: 1h}
  - {id: reminder, send: cart-reminder}
  - id: bought
    wait_for: {event: order_completed, timeout: 23h}
    on_event: done
  - {id: second, send: {template: cart-reminder-2, context: {discount: 10}}}
  - {id: done, exit: {}}
"""


@pytest.fixture
def settings(settings: Settings, sink: SmtpSink) -> Settings:
    return settings.model_copy(
        update={"smtp_port": sink.port, "smtp_rate_per_second": 1000.0,
                "public_url": "https://mail.example.com"}
    )  # fmt: skip


def _happen(runtime: Runtime, contact_id: uuid.UUID, name: str, **properties: Any) -> None:
    """An event stored, then passed to the journeys as the automations consumer does."""
    with runtime.database.transaction() as session:
        event = store_event(session, runtime, contact_id, name, properties)
        definitions = runtime.definitions.load(session)
        now = runtime.clock.now()
        for journey in definitions.journeys_for(name):
            entrants = runtime.journeys.entrants_for(journey, [event], now=now)
            runtime.journeys.enter(session, definitions, journey, entrants, now=now)
        runtime.journeys.on_events(session, definitions, [event], now=now)


def _subjects(sink: SmtpSink) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for mail in sink.messages():
        parsed = email.message_from_bytes(mail.data, policy=email.policy.default)
        for recipient in mail.recipients:
            found.setdefault(recipient, []).append(str(parsed["Subject"]))
    return found


def test_the_abandoned_cart(runtime: Runtime, clock: VirtualClock, sink: SmtpSink) -> None:
    unsubscribe = '<p><a href="{{ unsubscribe_url }}">Unsubscribe</a></p>'
    with runtime.database.transaction() as session:
        for key, subject in (
            ("cart-reminder", "Your cart {{ event.cart_id }} is waiting"),
            ("cart-reminder-2", "{{ event.discount }}% off cart {{ event.cart_id }}"),
        ):
            runtime.templates.save(
                session,
                TemplateIn(key=key, format="html", subject=subject,
                           body=f"<p>Still thinking?</p>{unsubscribe}"),
            )  # fmt: skip
        buyer, browser, loyal = make_contacts(session, runtime, 3)
    publish(runtime, CART)
    address = {c: f"{c.hex}@example.com" for c in (buyer, browser, loyal)}

    for contact in (buyer, browser, loyal):
        _happen(runtime, contact, "cart_abandoned", cart_id=f"c-{contact.hex[:4]}")
    # The same cart reported again starts nothing new.
    _happen(runtime, browser, "cart_abandoned", cart_id=f"c-{browser.hex[:4]}")
    run_worker_round(runtime)
    clock.advance(timedelta(minutes=40))
    _happen(runtime, buyer, "order_completed", total=80)
    clock.advance(timedelta(minutes=20))
    run_worker_round(runtime)
    received = _subjects(sink)
    assert address[buyer] not in received
    assert received[address[browser]] == [f"Your cart c-{browser.hex[:4]} is waiting"]
    assert received[address[loyal]] == [f"Your cart c-{loyal.hex[:4]} is waiting"]

    clock.advance(timedelta(hours=5))
    _happen(runtime, loyal, "order_completed", total=120)
    run_worker_round(runtime)
    clock.advance(timedelta(hours=18))
    run_worker_round(runtime)
    received = _subjects(sink)
    assert received[address[browser]] == [
        f"Your cart c-{browser.hex[:4]} is waiting",
        f"10% off cart c-{browser.hex[:4]}",
    ]
    assert len(received[address[loyal]]) == 1
    with runtime.database.transaction(read_only=True) as session:
        runs = {r.contact_id: r for r in session.scalars(select(JourneyRun))}
        entered = session.scalars(select(Event).where(Event.name == "journey_entered")).all()
    assert len(runs) == 3 and len(entered) == 3
    assert runs[buyer].state == "converted"
    # The loyal customer bought after the reminder: the goal ends the run (converted),
    # whatever step it was waiting at.
    assert runs[loyal].state == "converted"
    assert (runs[browser].state, runs[browser].end_reason) == (
        "completed", "reached the exit step done"
    )  # fmt: skip
