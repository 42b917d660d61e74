"""Exclusive journeys: a contact is in at most one at a time; others queue behind it or,
with a higher priority and `on_busy: take_over`, end it and start."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import delete

from postillon.clock import VirtualClock
from postillon.models import ContactTag
from postillon.runtime import Runtime
from tests.automations.journeys.support import (
    contacts,
    enter,
    events,
    history,
    publish,
    run_of,
    run_steps,
    runs,
    tag,
    template,
)


def _exclusive(key: str, priority: int, on_busy: str = "queue", extra: str = "") -> str:
    return f"""
kind: journey
key: {key}
name: {key}
trigger: {{event: {key}_started}}
entry: {{policy: unlimited}}
exclusive: {{priority: {priority}, on_busy: {on_busy}}}
{extra}
steps:
  - {{id: hello, send: hello}}
  - {{id: later, wait: 1d}}
  - {{id: bye, send: hello}}
"""


@pytest.fixture(autouse=True)
def _setup(runtime: Runtime) -> None:
    template(runtime, "hello")
    publish(runtime, _exclusive("onboarding", 1))
    publish(runtime, _exclusive("tips", 0))
    publish(runtime, _exclusive("winback", 0, extra="conditions: {tag: lapsed}"))
    publish(runtime, _exclusive("urgent", 5, "take_over"))
    publish(runtime, _exclusive("minor", -1, "take_over"))
    publish(
        runtime,
        """
kind: journey
key: newsletter
name: Newsletter
trigger: {event: x}
steps: [{id: hello, send: hello}, {id: later, wait: 1d}]
""",
    )


def test_a_second_exclusive_journey_queues_and_starts_when_the_first_ends(
    runtime: Runtime, clock: VirtualClock
) -> None:
    (ann,) = contacts(runtime, 1)
    (first,) = enter(runtime, "onboarding", [ann]).entered
    queued = enter(runtime, "tips", [ann])
    assert not queued.entered and len(queued.queued) == 1
    # Not exclusive: unaffected.
    assert enter(runtime, "newsletter", [ann]).entered
    waiting = run_of(runtime, queued.queued[0])
    assert (waiting.state, waiting.due_at, waiting.priority) == ("queued", None, 0)
    assert history(runtime, ann)[-2].reason == (
        "waits until the contact's exclusive journey onboarding ends"
    )
    run_steps(runtime)
    assert run_of(runtime, waiting.id).state == "queued"
    assert [e.properties["journey"] for e in events(runtime, "journey_entered")] == [
        "onboarding", "newsletter"
    ]  # fmt: skip

    clock.advance(timedelta(days=1))
    run_steps(runtime)
    assert run_of(runtime, first).state == "completed"
    started = run_of(runtime, waiting.id)
    assert (started.state, started.step_id, started.due_at) == (
        "active", "bye", clock.now() + timedelta(days=1)
    )  # fmt: skip
    assert [e.properties["journey"] for e in events(runtime, "journey_entered")] == [
        "onboarding", "newsletter", "tips"
    ]  # fmt: skip
    # It was due at once: the same round sent its first mail.
    assert started.context["messages"].keys() == {"hello"}
    assert any(
        h.run_id == waiting.id and h.outcome == "entered" and "started" in h.reason
        for h in history(runtime, ann)
    )


def test_queued_runs_start_by_priority_then_age(runtime: Runtime, clock: VirtualClock) -> None:
    (ann,) = contacts(runtime, 1)
    tag(runtime, [ann], "lapsed")
    enter(runtime, "tips", [ann])  # runs
    (winback,) = enter(runtime, "winback", [ann]).queued  # priority 0, older
    clock.advance(timedelta(minutes=1))
    (onboarding,) = enter(runtime, "onboarding", [ann]).queued  # priority 1
    clock.advance(timedelta(minutes=1))
    (tips_again,) = enter(runtime, "tips", [ann]).queued  # priority 0, newer
    run_steps(runtime)
    clock.advance(timedelta(days=1))
    run_steps(runtime)
    assert run_of(runtime, onboarding).state == "active"
    assert run_of(runtime, winback).state == "queued"
    clock.advance(timedelta(days=1))
    run_steps(runtime)
    assert run_of(runtime, winback).state == "active"
    assert run_of(runtime, tips_again).state == "queued"


def test_a_queued_run_whose_conditions_no_longer_hold_exits_and_the_next_starts(
    runtime: Runtime, clock: VirtualClock
) -> None:
    (ann,) = contacts(runtime, 1)
    tag(runtime, [ann], "lapsed")
    enter(runtime, "onboarding", [ann])
    (winback,) = enter(runtime, "winback", [ann]).queued
    clock.advance(timedelta(minutes=1))
    (tips,) = enter(runtime, "tips", [ann]).queued
    with runtime.database.transaction() as session:
        session.execute(delete(ContactTag).where(ContactTag.contact_id == ann))
    run_steps(runtime)
    clock.advance(timedelta(days=1))
    run_steps(runtime)
    dropped = run_of(runtime, winback)
    assert (dropped.state, dropped.end_reason) == (
        "exited", "the entry conditions no longer held when its turn came"
    )  # fmt: skip
    assert run_of(runtime, tips).state == "active"


def test_a_higher_priority_takes_over(runtime: Runtime, clock: VirtualClock) -> None:
    ann, bob = contacts(runtime, 2)
    (onboarding,) = enter(runtime, "onboarding", [ann]).entered
    run_steps(runtime)
    result = enter(runtime, "urgent", [ann])
    (urgent,) = result.entered
    ended = run_of(runtime, onboarding)
    assert (ended.state, ended.end_reason, ended.due_at) == ("exited", "taken over by urgent", None)
    taken = [h for h in history(runtime, ann) if h.run_id == onboarding][-1]
    assert (taken.outcome, taken.reason) == ("taken_over", "taken over by urgent (priority 5 > 1)")
    entered = [h for h in history(runtime, ann) if h.run_id == urgent][-1]
    assert entered.reason == "entered (api), taking over from onboarding"
    assert run_of(runtime, urgent).state == "active"

    # A lower priority does not take over, even when it may: it queues.
    (bob_onboarding,) = enter(runtime, "onboarding", [bob]).entered
    assert enter(runtime, "minor", [bob]).queued
    assert run_of(runtime, bob_onboarding).state == "active"


def test_two_entries_at_once_into_exclusive_journeys(runtime: Runtime) -> None:
    (ann,) = contacts(runtime, 1)
    first = enter(runtime, "tips", [ann, ann])
    assert len(first.entered) == 1 and len(first.queued) == 1
    assert sorted(r.state for r in runs(runtime)) == ["active", "queued"]


def test_archiving_a_journey_starts_the_contacts_queued_exclusive_journey(
    runtime: Runtime,
) -> None:
    (ann,) = contacts(runtime, 1)
    (first,) = enter(runtime, "onboarding", [ann]).entered
    (queued,) = enter(runtime, "tips", [ann]).queued
    with runtime.database.transaction() as session:
        result = runtime.automations.archive(session, "onboarding", force=True)
    assert result.ended_runs == 1
    assert (run_of(runtime, first).state, run_of(runtime, first).end_reason) == (
        "exited", "journey archived"
    )  # fmt: skip
    started = run_of(runtime, queued)
    assert started.state == "active"
    run_steps(runtime)
    assert run_of(runtime, queued).context["messages"].keys() == {"hello"}
