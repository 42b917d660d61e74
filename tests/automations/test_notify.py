"""Owner notifications over real SMTP: the seed scenario "lead score reaching 50 → the owner
is notified once and the stage becomes MQL", recipients, and what a notification is not
(mail to the contact, tracked, held by the contact's consent)."""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage

import pytest
from sqlalchemy import select

from postillon.clock import VirtualClock
from postillon.models import Message, StageChange
from postillon.runtime import Runtime
from postillon.settings import Settings
from tests.automations.rules_support import history, new_contact, publish, run_until_idle
from tests.scoring.support import set_main
from tests.support.smtp import ReceivedMail, SmtpSink

MQL = """
kind: rule
key: mql
name: Lead reached 50 points
trigger: {score_reached: 50}
once_per_contact: true
actions:
  - {stage: mql}
  - notify:
      subject: A lead is marketing-qualified
      fallback: sales@shop.example.com
      note: Call within a day.
"""


@pytest.fixture
def settings(settings: Settings, sink: SmtpSink) -> Settings:
    return settings.model_copy(
        update={
            "smtp_port": sink.port,
            "smtp_rate_per_second": 1000.0,
            "public_url": "https://crm.example.com",
            "email_from": "Postillon <postillon@shop.example.com>",
        }
    )


def parsed(mail: ReceivedMail) -> EmailMessage:
    message = email.message_from_bytes(mail.data, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def html_of(message: EmailMessage) -> str:
    part = message.get_body(("html",))
    assert part is not None
    return str(part.get_content())


def add_points(runtime: Runtime, contact_id: object, points: int) -> None:
    with runtime.database.transaction() as session:
        runtime.scoring.adjust(session, [contact_id], "main", points)  # type: ignore[list-item]


def test_a_lead_reaching_50_points_is_notified_to_its_owner_once_and_becomes_an_mql(
    runtime: Runtime, sink: SmtpSink, clock: VirtualClock
) -> None:
    set_main(runtime, thresholds=[50])
    with runtime.database.transaction() as session:
        runtime.users.create(session, email="olga@shop.example.com", name="Olga", password=None)
    publish(runtime, MQL)
    ann = new_contact(
        runtime,
        "ann@example.com",
        first_name="Ann",
        last_name="Lee",
        owner="olga@shop.example.com",
        lifecycle_stage="lead",
        tags=["webinar"],
        attributes={"company": "Acme"},
    )
    add_points(runtime, ann, 30)
    add_points(runtime, ann, 25)  # 55: past 50
    run_until_idle(runtime)
    add_points(runtime, ann, -20)
    add_points(runtime, ann, 30)  # 65: past 50 again
    run_until_idle(runtime)

    [mail] = sink.wait_for(1)
    assert mail.recipients == ("olga@shop.example.com",)
    message = parsed(mail)
    assert message["To"] == "olga@shop.example.com"
    assert message["Subject"] == "A lead is marketing-qualified"
    assert "List-Unsubscribe" not in message
    body = html_of(message)
    card = ["Ann Lee", "ann@example.com", "mql", "55", "Olga", "webinar", "Acme"]
    card += ["Call within a day.", "score_reached", f"https://crm.example.com/api/contacts/{ann}"]
    for shown in card:
        assert shown in body, shown
    assert "/e/o/" not in body and "/e/c/" not in body  # no pixel, no tracked links

    with runtime.database.transaction(read_only=True) as session:
        contact = runtime.contacts.get(session, ann)
        assert (contact.lifecycle_stage, contact.score) == ("mql", 65)
        change = session.scalars(select(StageChange).where(StageChange.to_stage == "mql")).one()
        assert change.source == "automation:mql"
        [notification] = session.scalars(select(Message)).all()
        assert (notification.contact_id, notification.kind, notification.state) == (
            ann,
            "notification",
            "sent",
        )
        assert notification.to_address == "olga@shop.example.com"
        outcomes = [(h.outcome, h.step_id) for h in history(session, ann)]
        assert outcomes == [("fired", None), ("skipped", None)]
        assert history(session, ann)[1].reason.startswith("once per contact")


def test_without_an_owner_the_fallback_is_notified_and_without_either_nobody(
    runtime: Runtime, sink: SmtpSink
) -> None:
    rule = publish(runtime, MQL)
    bare = rule.rule.actions[1]
    assert bare.__class__.__name__ == "NotifyAction"
    ann = new_contact(runtime, "ann@example.com", first_name="Ann")
    with runtime.database.transaction() as session:
        assert runtime.rules.run_for(session, rule, [ann], now=runtime.clock.now()) == 1
    run_until_idle(runtime)
    [mail] = sink.wait_for(1)
    assert mail.recipients == ("sales@shop.example.com",)

    nobody = publish(
        runtime,
        {
            "kind": "rule",
            "key": "nobody",
            "name": "nobody",
            "trigger": {"event": "x"},
            "actions": [{"notify": {"subject": "s"}}],
        },
    )
    with runtime.database.transaction() as session:
        runtime.rules.run_for(session, nobody, [ann], now=runtime.clock.now())
        entries = [h for h in history(session, ann) if h.automation_id == nobody.id]
    assert [(h.outcome, h.reason) for h in entries] == [
        ("fired", entries[0].reason),
        ("skipped", "notify: nobody to notify: no owner and no fallback address"),
    ]


def test_fixed_addresses_get_one_mail_each_even_if_the_contact_may_not_be_mailed(
    runtime: Runtime, sink: SmtpSink
) -> None:
    rule = publish(
        runtime,
        {
            "kind": "rule",
            "key": "big-order",
            "name": "Big order",
            "trigger": {"event": "order_completed"},
            "actions": [
                {
                    "notify": {
                        "subject": "Big order",
                        "to": ["a@shop.example.com", "b@shop.example.com"],
                    }
                }
            ],
        },
    )
    # Unsubscribed: the notifications are not mail to them, so they go out.
    ann = new_contact(runtime, "ann@example.com", consent={"email": "unsubscribed"})
    with runtime.database.transaction() as session:
        runtime.rules.run_for(session, rule, [ann], now=runtime.clock.now())
        runtime.rules.run_for(session, rule, [ann], now=runtime.clock.now())  # a new run
    run_until_idle(runtime)
    received = sink.wait_for(4)
    assert sorted(m.recipients[0] for m in received) == [
        "a@shop.example.com",
        "a@shop.example.com",
        "b@shop.example.com",
        "b@shop.example.com",
    ]
