"""Entering a journey: status, conditions, entry policy, cooldown, entry key, and what an
entry leaves behind (the run, its history, the `journey_entered` event)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from postillon.automations.journeys.engine import Entrant
from postillon.clock import VirtualClock
from postillon.runtime import Runtime
from tests.automations.journeys.support import (
    contacts,
    enter,
    events,
    history,
    journey,
    publish,
    run_steps,
    runs,
    set_status,
    store_event,
    tag,
    template,
)


def _journey(key: str = "welcome", **settings: str) -> str:
    lines = "\n".join(f"{name}: {value}" for name, value in settings.items())
    return f"""
kind: journey
key: {key}
name: Welcome
trigger: {{event: signed_up}}
{lines}
steps:
  - {{id: hello, send: hello}}
  - {{id: later, wait: 2d}}
"""


@pytest.fixture(autouse=True)
def _template(runtime: Runtime) -> None:
    template(runtime, "hello")


def test_an_entry_starts_a_run_due_now_and_tells_the_timeline(
    runtime: Runtime, clock: VirtualClock
) -> None:
    published = publish(runtime, _journey())
    (ann,) = contacts(runtime, 1)
    event = {"id": 7, "name": "signed_up", "message_id": "m-7",
             "occurred_at": (clock.now() - timedelta(minutes=5)).isoformat(),
             "properties": {"plan": "pro"}}  # fmt: skip
    result = enter(runtime, "welcome", [ann], entry_key="m-7", source="event", event=event)

    (run,) = runs(runtime)
    assert result.entered == [run.id] and not result.queued and not result.refused
    assert (run.state, run.step_id, run.due_at, run.version) == ("active", "hello", clock.now(), 1)
    assert run.context["event"] == event
    assert run.context["started"] == event["occurred_at"]
    assert (run.entry_key, run.source, run.priority) == ("m-7", "event", None)
    (entered,) = history(runtime, ann)
    assert (entered.outcome, entered.run_id, entered.automation_id) == (
        "entered",
        run.id,
        published.id,
    )
    (announced,) = events(runtime, "journey_entered")
    assert announced.contact_id == ann
    assert announced.properties == {"journey": "welcome", "run": str(run.id), "source": "event"}


def test_a_paused_journey_lets_nobody_in(runtime: Runtime) -> None:
    publish(runtime, _journey(), status="paused")
    (ann,) = contacts(runtime, 1)
    result = enter(runtime, "welcome", [ann])
    assert result.refused == {ann: "the journey is paused"}
    assert runs(runtime) == []
    assert [h.outcome for h in history(runtime, ann)] == ["refused"]


def test_the_same_entry_key_never_starts_the_journey_twice(runtime: Runtime) -> None:
    publish(runtime, _journey(entry="{policy: unlimited}"))
    ann, bob = contacts(runtime, 2)
    with runtime.database.transaction() as session:
        defs = runtime.definitions.load(session)
        result = runtime.journeys.enter(
            session, defs, defs.by_key["welcome"],
            [Entrant(ann, "cart-1", "event"), Entrant(ann, "cart-1", "event"),
             Entrant(bob, "cart-2", "event")],
            now=runtime.clock.now(),
        )  # fmt: skip
    assert len(result.entered) == 2
    assert "cart-1" in result.refused[ann]
    # The event replayed later: nothing new.
    again = enter(runtime, "welcome", [ann, bob], entry_key="cart-1")
    assert not again.entered
    assert set(again.refused) == {ann, bob}
    assert sorted(r.entry_key for r in runs(runtime)) == ["cart-1", "cart-2"]
    assert len(events(runtime, "journey_entered")) == 2


def test_the_entry_key_is_the_named_event_property(runtime: Runtime, clock: VirtualClock) -> None:
    publish(runtime, _journey(entry="{policy: unlimited, key: cart.id}"))
    (ann,) = contacts(runtime, 1)
    with runtime.database.transaction() as session:
        first = store_event(session, runtime, ann, "signed_up", {"cart": {"id": 42}})
        second = store_event(session, runtime, ann, "signed_up", {"cart": {"id": 42}})
        keyless = store_event(session, runtime, ann, "signed_up", {})
        other = store_event(session, runtime, ann, "logged_in", {"cart": {"id": 43}})
        defs = runtime.definitions.load(session)
        published = defs.by_key["welcome"]
        entrants = runtime.journeys.entrants_for(
            published, [first, second, keyless, other], now=clock.now()
        )
        assert [e.entry_key for e in entrants] == [f"{ann}:42", f"{ann}:42", keyless.message_id]
        assert entrants[0].event is not None and entrants[0].event["id"] == first.id
        result = runtime.journeys.enter(session, defs, published, entrants, now=clock.now())
    assert len(result.entered) == 2


def test_the_trigger_filter_decides_which_events_make_entrants(
    runtime: Runtime, clock: VirtualClock
) -> None:
    published = publish(
        runtime,
        """
kind: journey
key: pro
name: Pro
trigger: {event: signed_up, where: {property: plan, op: "=", value: pro}}
steps: [{id: hello, send: hello}]
""",
    )
    (ann,) = contacts(runtime, 1)
    with runtime.database.transaction() as session:
        pro = store_event(session, runtime, ann, "signed_up", {"plan": "pro"})
        free = store_event(session, runtime, ann, "signed_up", {"plan": "free"})
        found = runtime.journeys.entrants_for(published, [pro, free], now=clock.now())
    assert [e.entry_key for e in found] == [pro.message_id]
    assert found[0].source == "event"


def test_entry_conditions_are_checked(runtime: Runtime) -> None:
    publish(runtime, _journey(conditions="{tag: vip}"))
    ann, bob = contacts(runtime, 2)
    tag(runtime, [ann], "vip")
    result = enter(runtime, "welcome", [ann, bob])
    assert len(result.entered) == 1
    assert result.refused == {bob: "does not match the journey's entry conditions"}
    assert [r.contact_id for r in runs(runtime)] == [ann]


def test_policy_once_means_once_ever(runtime: Runtime, clock: VirtualClock) -> None:
    publish(runtime, _journey(entry="{policy: once}"))
    (ann,) = contacts(runtime, 1)
    assert enter(runtime, "welcome", [ann]).entered
    run_steps(runtime)
    clock.advance(timedelta(days=3))
    run_steps(runtime)
    assert [r.state for r in runs(runtime)] == ["completed"]
    again = enter(runtime, "welcome", [ann])
    assert again.refused == {ann: "entry policy once: the contact was in this journey before"}


def test_policy_once_at_a_time_lets_them_in_again_after_the_end(
    runtime: Runtime, clock: VirtualClock
) -> None:
    publish(runtime, _journey(entry="{policy: once_at_a_time}"))
    (ann,) = contacts(runtime, 1)
    assert enter(runtime, "welcome", [ann]).entered
    run_steps(runtime)
    refused = enter(runtime, "welcome", [ann])
    assert "in this journey now" in refused.refused[ann]
    clock.advance(timedelta(days=2))
    run_steps(runtime)
    assert enter(runtime, "welcome", [ann]).entered
    assert [r.state for r in runs(runtime)] == ["completed", "active"]


def test_policy_unlimited_runs_side_by_side_and_cooldown_spaces_entries(
    runtime: Runtime, clock: VirtualClock
) -> None:
    publish(runtime, _journey(key="free", entry="{policy: unlimited}"))
    publish(runtime, _journey(key="spaced", entry="{policy: unlimited, cooldown: 1d}"))
    (ann,) = contacts(runtime, 1)
    assert len(enter(runtime, "free", [ann, ann]).entered) == 2
    assert len(enter(runtime, "spaced", [ann, ann]).entered) == 1
    clock.advance(timedelta(hours=23))
    refused = enter(runtime, "spaced", [ann])
    assert refused.refused[ann].startswith("cooldown: entered 2026-01-05T09:00:00+00:00")
    clock.advance(timedelta(hours=1))
    assert enter(runtime, "spaced", [ann]).entered
    assert len(runs(runtime, "free")) == 2 and len(runs(runtime, "spaced")) == 2


def test_refusals_are_history(runtime: Runtime) -> None:
    publish(runtime, _journey(entry="{policy: once}"))
    (ann,) = contacts(runtime, 1)
    enter(runtime, "welcome", [ann])
    enter(runtime, "welcome", [ann])
    entered, refused = history(runtime, ann)
    assert (entered.outcome, refused.outcome) == ("entered", "refused")
    assert refused.run_id is None
    assert refused.reason == "entry policy once: the contact was in this journey before"
    assert refused.details["source"] == "api"
    assert journey(runtime, "welcome").id == refused.automation_id


def test_entering_after_resume(runtime: Runtime) -> None:
    publish(runtime, _journey())
    (ann,) = contacts(runtime, 1)
    set_status(runtime, "welcome", "paused")
    assert enter(runtime, "welcome", [ann]).refused
    set_status(runtime, "welcome", "active")
    assert enter(runtime, "welcome", [ann]).entered


def test_machine_opens_start_nothing(runtime: Runtime, clock: VirtualClock) -> None:
    published = publish(
        runtime,
        "kind: journey\nkey: opened\nname: Opened\ntrigger: {event: email_opened}\n"
        "steps: [{id: hello, send: hello}]",
    )
    (ann,) = contacts(runtime, 1)
    with runtime.database.transaction() as session:
        scanner = store_event(session, runtime, ann, "email_opened", {"machine": True})
        person = store_event(session, runtime, ann, "email_opened", {"machine": False})
        found = runtime.journeys.entrants_for(published, [scanner, person], now=clock.now())
    assert [e.entry_key for e in found] == [person.message_id]
