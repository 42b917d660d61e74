"""Waits for an event (with a timeout, a property filter, and correlation to a message the
journey sent), goals (converted) and exit criteria (exited)."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select

from postillon.clock import VirtualClock
from postillon.messages.tracking import HitKind
from postillon.models import Event
from postillon.runtime import Runtime
from tests.automations.journeys.support import (
    contacts,
    enter,
    happen,
    history,
    messages,
    publish,
    run_of,
    run_steps,
    runs,
    tag,
    template,
)

BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36"

DRIP = """
kind: journey
key: drip
name: Drip
trigger: {event: signed_up}
steps:
  - {id: welcome, send: hello}
  - id: opened
    wait_for: {event: email_opened, message_step: welcome, timeout: 3d}
    on_event: tips
    on_timeout: resend
  - {id: resend, send: hello-again, next: end}
  - {id: tips, send: tips}
  - {id: end, exit: {}}
"""


@pytest.fixture(autouse=True)
def _templates(runtime: Runtime) -> None:
    for key in ("hello", "hello-again", "tips", "reminder"):
        template(runtime, key)


def _open(runtime: Runtime, message_id: uuid.UUID, *, agent: str = BROWSER) -> None:
    """An open recorded by email tracking, handed to the engine as the consumer would."""
    with runtime.database.transaction() as session:
        last = session.scalar(select(Event.id).order_by(Event.id.desc()).limit(1)) or 0
        runtime.email_tracking.record(
            session, message_id, kind=HitKind.open, method="GET", user_agent=agent
        )
        stored = list(session.scalars(select(Event).where(Event.id > last)))
        runtime.journeys.on_events(
            session, runtime.definitions.load(session), stored, now=runtime.clock.now()
        )


def test_opened_mail_one_within_three_days(runtime: Runtime, clock: VirtualClock) -> None:
    publish(runtime, DRIP)
    ann, bob = contacts(runtime, 2)
    enter(runtime, "drip", [ann, bob])
    run_steps(runtime)
    waiting = {r.contact_id: r for r in runs(runtime)}
    assert {(r.state, r.wait_event, r.due_at) for r in waiting.values()} == {
        ("waiting", "email_opened", clock.now() + timedelta(days=3))
    }
    (welcome,) = messages(runtime, ann)
    clock.advance(timedelta(days=1))
    _open(runtime, welcome.id)
    resumed = run_of(runtime, waiting[ann].id)
    assert (resumed.state, resumed.step_id, resumed.due_at) == ("active", "tips", clock.now())
    (entry,) = [h for h in history(runtime, ann) if h.outcome == "resumed"]
    assert entry.reason.startswith("email_opened at 2026-01-06T09:00:00+00:00 → tips")
    assert entry.event_id is not None
    run_steps(runtime)
    assert [m.step for m in messages(runtime, ann)] == ["welcome", "tips"]

    clock.advance(timedelta(days=2))
    run_steps(runtime)
    assert [m.step for m in messages(runtime, bob)] == ["welcome", "resend"]
    (timed_out,) = [h for h in history(runtime, bob) if h.outcome == "timed_out"]
    assert timed_out.reason == "no email_opened within 3d → resend"
    assert {r.state for r in runs(runtime)} == {"completed"}


def test_only_the_message_of_that_step_counts(runtime: Runtime, clock: VirtualClock) -> None:
    publish(runtime, DRIP)
    publish(
        runtime,
        "kind: journey\nkey: other\nname: Other\ntrigger: {event: x}\n"
        "steps: [{id: welcome, send: reminder}]",
    )
    (ann,) = contacts(runtime, 1)
    enter(runtime, "drip", [ann])
    enter(runtime, "other", [ann])
    run_steps(runtime)
    (drip,) = runs(runtime, "drip")
    (other,) = [m for m in messages(runtime, ann) if m.automation_id != drip.journey_id]
    welcome_id = drip.context["messages"]["welcome"]
    assert str(other.id) != welcome_id
    _open(runtime, other.id)
    assert run_of(runtime, drip.id).state == "waiting"
    # A scanner fetching the pixel is no person opening the mail.
    _open(runtime, uuid.UUID(welcome_id), agent="")
    assert run_of(runtime, drip.id).state == "waiting"
    _open(runtime, uuid.UUID(welcome_id))
    assert run_of(runtime, drip.id).step_id == "tips"


def test_a_wait_looks_at_events_after_it_began_and_matching_its_filter(
    runtime: Runtime, clock: VirtualClock
) -> None:
    publish(
        runtime,
        """
kind: journey
key: browse
name: Browse
trigger: {event: x}
steps:
  - id: look
    wait_for: {event: viewed, where: {property: product, op: "=", value: shoes}, timeout: 1d}
    on_event: hit
  - {id: miss, send: hello, next: end}
  - {id: hit, send: tips}
  - {id: end, exit: {}}
""",
    )
    (ann,) = contacts(runtime, 1)
    (run_id,) = enter(runtime, "browse", [ann]).entered
    run_steps(runtime)
    # Before the wait began; another product; then the one.
    happen(runtime, ann, "viewed", {"product": "shoes"}, at=clock.now() - timedelta(minutes=1))
    happen(runtime, ann, "viewed", {"product": "hats"})
    assert run_of(runtime, run_id).state == "waiting"
    clock.advance(timedelta(hours=2))
    happen(runtime, ann, "viewed", {"product": "shoes"})
    run_steps(runtime)
    assert [m.step for m in messages(runtime, ann)] == ["hit"]


def test_a_timeout_first_reads_the_events_the_consumer_has_not_passed_on(
    runtime: Runtime, clock: VirtualClock
) -> None:
    publish(runtime, DRIP.replace("email_opened, message_step: welcome", "clicked"))
    (ann,) = contacts(runtime, 1)
    enter(runtime, "drip", [ann])
    run_steps(runtime)
    clock.advance(timedelta(days=2))
    happen(runtime, ann, "clicked", consume=False)
    clock.advance(timedelta(days=1))
    run_steps(runtime)
    assert [m.step for m in messages(runtime, ann)] == ["welcome", "tips"]
    assert [h.outcome for h in history(runtime, ann)].count("resumed") == 1


CART = """
kind: journey
key: cart
name: Abandoned cart
trigger: {event: cart_abandoned}
entry: {policy: unlimited, key: cart_id}
goal: {event: order_completed}
exit_when:
  - {event: email_unsubscribed}
  - {filter: {tag: blocked}}
steps:
  - {id: wait-1h, wait: 1h}
  - {id: reminder, send: reminder}
  - id: bought
    wait_for: {event: order_completed, timeout: 23h}
    on_event: done
  - {id: second, send: reminder}
  - {id: done, exit: {}}
"""


def _cart_event(clock: VirtualClock) -> dict[str, object]:
    return {"id": 1, "name": "cart_abandoned", "message_id": "m-1",
            "occurred_at": clock.now().isoformat(), "properties": {"cart_id": "c-1"}}  # fmt: skip


def test_a_purchase_reaches_the_goal_before_the_reminder(
    runtime: Runtime, clock: VirtualClock
) -> None:
    publish(runtime, CART)
    ann, bob, cid = contacts(runtime, 3)
    for contact in (ann, bob, cid):
        enter(runtime, "cart", [contact], entry_key=f"cart-{contact}", event=_cart_event(clock))
    run_steps(runtime)
    # An order before the cart was abandoned is not the goal.
    happen(runtime, cid, "order_completed", at=clock.now() - timedelta(hours=1))
    clock.advance(timedelta(minutes=30))
    happen(runtime, ann, "order_completed")
    # Bob's order is stored, but the consumer has not passed it on yet.
    happen(runtime, bob, "order_completed", consume=False)
    clock.advance(timedelta(minutes=30))
    run_steps(runtime)
    assert messages(runtime, ann) == [] and messages(runtime, bob) == []
    assert [m.step for m in messages(runtime, cid)] == ["reminder"]
    by_contact = {r.contact_id: r for r in runs(runtime)}
    for contact in (ann, bob):
        assert by_contact[contact].state == "converted"
        assert str(by_contact[contact].end_reason).startswith("reached the goal: order_completed")
        assert [h.outcome for h in history(runtime, contact)][-1] == "converted"


def test_exit_criteria_by_event_and_by_filter(runtime: Runtime, clock: VirtualClock) -> None:
    publish(runtime, CART)
    ann, bob = contacts(runtime, 2)
    for contact in (ann, bob):
        enter(runtime, "cart", [contact], entry_key=f"cart-{contact}", event=_cart_event(clock))
    run_steps(runtime)
    clock.advance(timedelta(hours=2))
    run_steps(runtime)  # both sent the reminder and wait for the order
    happen(runtime, ann, "email_unsubscribed", {"topic": "all"})
    tag(runtime, [bob], "blocked")
    happen(runtime, bob, "page_viewed")  # any event of Bob re-checks the filters
    by_contact = {r.contact_id: r for r in runs(runtime)}
    assert (by_contact[ann].state, by_contact[ann].end_reason) == (
        "exited", "exit criterion 1: email_unsubscribed at 2026-01-05T11:00:00+00:00"
    )  # fmt: skip
    assert (by_contact[bob].state, by_contact[bob].end_reason) == (
        "exited", "exit criterion 2: matches its filter"
    )  # fmt: skip


def test_a_goal_filter_is_checked_when_runs_are_due(runtime: Runtime, clock: VirtualClock) -> None:
    publish(
        runtime,
        """
kind: journey
key: nurture
name: Nurture
trigger: {event: x}
goal: {filter: {tag: customer}}
steps:
  - {id: one, send: hello}
  - {id: pause, wait: 1d}
  - {id: two, send: tips}
""",
    )
    ann, bob = contacts(runtime, 2)
    enter(runtime, "nurture", [ann, bob])
    run_steps(runtime)
    tag(runtime, [ann], "customer")
    clock.advance(timedelta(days=1))
    run_steps(runtime)
    assert [m.step for m in messages(runtime, ann)] == ["one"]
    assert [m.step for m in messages(runtime, bob)] == ["one", "two"]
    converted = next(r for r in runs(runtime) if r.contact_id == ann)
    assert (converted.state, converted.end_reason) == (
        "converted", "reached the goal: matches its filter"
    )  # fmt: skip


def test_a_conversion_frees_the_contact_for_a_queued_exclusive_journey(
    runtime: Runtime, clock: VirtualClock
) -> None:
    publish(runtime, CART.replace("goal:", "exclusive: {priority: 1}\ngoal:"))
    publish(
        runtime,
        "kind: journey\nkey: next\nname: Next\ntrigger: {event: x}\nexclusive: true\n"
        "steps: [{id: hello, send: hello}]",
    )
    (ann,) = contacts(runtime, 1)
    enter(runtime, "cart", [ann], event=_cart_event(clock))
    (queued,) = enter(runtime, "next", [ann]).queued
    happen(runtime, ann, "order_completed")
    assert run_of(runtime, queued).state == "active"
    run_steps(runtime)
    assert [m.step for m in messages(runtime, ann)] == ["hello"]


def test_queued_runs_reach_goals_too(runtime: Runtime, clock: VirtualClock) -> None:
    publish(runtime, CART.replace("goal:", "exclusive: {priority: 1}\ngoal:"))
    (ann,) = contacts(runtime, 1)
    enter(runtime, "cart", [ann], entry_key="one", event=_cart_event(clock))
    (queued,) = enter(runtime, "cart", [ann], entry_key="two", event=_cart_event(clock)).queued
    happen(runtime, ann, "order_completed")
    assert {r.state for r in runs(runtime)} == {"converted"}
    assert str(run_of(runtime, queued).end_reason).startswith("reached the goal")
