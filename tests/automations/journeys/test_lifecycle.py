"""Pausing and resuming, versions, removal, and the worker's task."""

from __future__ import annotations

from datetime import timedelta

import pytest

from postillon.automations.journeys.tasks import JourneyStepTask
from postillon.clock import VirtualClock
from postillon.messages.sending import SendTask
from postillon.runtime import Runtime
from postillon.worker.tasks import default_tasks
from tests.automations.journeys.support import (
    contacts,
    enter,
    history,
    journey,
    messages,
    publish,
    run_of,
    run_steps,
    runs,
    set_status,
    template,
)

V1 = """
kind: journey
key: drip
name: Drip
trigger: {event: x}
entry: {policy: unlimited}
steps:
  - {id: first, send: one}
  - {id: pause, wait: 1d}
  - id: look
    wait_for: {event: clicked, timeout: 1d}
  - {id: last, send: two}
"""
V2 = """
kind: journey
key: drip
name: Drip
trigger: {event: x}
entry: {policy: unlimited}
steps:
  - {id: start, send: three}
  - {id: pause, wait: 1d}
  - {id: last, send: four}
"""


@pytest.fixture(autouse=True)
def _templates(runtime: Runtime) -> None:
    for key in ("one", "two", "three", "four"):
        template(runtime, key)


def _sent(runtime: Runtime, contact_id: object) -> list[str | None]:
    return [m.step for m in messages(runtime) if m.contact_id == contact_id]


def test_a_paused_journey_holds_its_runs_and_resuming_continues_them(
    runtime: Runtime, clock: VirtualClock
) -> None:
    publish(runtime, V1)
    ann, bob = contacts(runtime, 2)
    enter(runtime, "drip", [ann])
    run_steps(runtime)
    enter(runtime, "drip", [bob])
    set_status(runtime, "drip", "paused")
    clock.advance(timedelta(days=3))
    assert run_steps(runtime) == 0
    assert _sent(runtime, ann) == ["first"] and _sent(runtime, bob) == []
    assert {r.state for r in runs(runtime)} == {"active"}
    set_status(runtime, "drip", "active")
    run_steps(runtime)
    # Bob starts; Ann's wait for a click begins now (not three days ago).
    assert _sent(runtime, bob) == ["first"]
    (ann_run,) = [r for r in runs(runtime) if r.contact_id == ann]
    assert (ann_run.state, ann_run.due_at) == ("waiting", clock.now() + timedelta(days=1))
    set_status(runtime, "drip", "paused")
    clock.advance(timedelta(days=2))
    assert run_steps(runtime) == 0
    assert run_of(runtime, ann_run.id).state == "waiting"
    set_status(runtime, "drip", "active")
    run_steps(runtime)
    assert _sent(runtime, ann) == ["first", "last"]


def test_runs_stay_on_the_version_they_entered(runtime: Runtime, clock: VirtualClock) -> None:
    publish(runtime, V1)
    ann, bob = contacts(runtime, 2)
    enter(runtime, "drip", [ann])
    run_steps(runtime)
    assert journey(runtime, "drip").version == 1
    publish(runtime, V2)
    assert journey(runtime, "drip").version == 2
    enter(runtime, "drip", [bob])
    run_steps(runtime)
    clock.advance(timedelta(days=1))
    run_steps(runtime)  # Ann waits for a click (a step v2 does not have), Bob is done
    clock.advance(timedelta(days=1))
    run_steps(runtime)
    assert _sent(runtime, ann) == ["first", "last"]
    assert _sent(runtime, bob) == ["start", "last"]
    versions = {r.contact_id: r.version for r in runs(runtime)}
    assert versions == {ann: 1, bob: 2}
    assert {h.version for h in history(runtime, ann)} == {1}
    templates = {m.contact_id: m.template_id for m in messages(runtime) if m.step == "last"}
    assert templates[ann] != templates[bob]


def test_remove_ends_the_runs_and_frees_an_exclusive_place(
    runtime: Runtime, clock: VirtualClock
) -> None:
    publish(runtime, V1.replace("entry:", "exclusive: {priority: 1}\nentry:"))
    publish(
        runtime,
        "kind: journey\nkey: later\nname: Later\ntrigger: {event: y}\nexclusive: true\n"
        "steps: [{id: hello, send: one}]",
    )
    ann, bob = contacts(runtime, 2)
    enter(runtime, "drip", [ann, bob])
    (queued,) = enter(runtime, "later", [ann]).queued
    run_steps(runtime)
    with runtime.database.transaction() as session:
        drip = runtime.definitions.load(session).by_key["drip"]
        removed = runtime.journeys.remove(
            session, drip, [ann, ann], now=clock.now(), reason="removed by rule stop"
        )
        assert removed == 1
        assert runtime.journeys.remove(session, drip, [ann], now=clock.now(), reason="again") == 0
    ended = next(r for r in runs(runtime, "drip") if r.contact_id == ann)
    assert (ended.state, ended.end_reason) == ("exited", "removed by rule stop")
    assert [h.outcome for h in history(runtime, ann) if h.run_id == ended.id][-1] == "exited"
    assert next(r for r in runs(runtime, "drip") if r.contact_id == bob).state == "active"
    assert run_of(runtime, queued).state == "active"


def test_the_worker_runs_journey_steps_before_sending() -> None:
    names = [type(task) for task in default_tasks()]
    assert names.index(JourneyStepTask) < names.index(SendTask)


def test_the_task_works_in_batches_and_reports_what_it_did(
    runtime: Runtime, clock: VirtualClock
) -> None:
    publish(runtime, V1)
    people = contacts(runtime, 25)
    enter(runtime, "drip", people)
    task = JourneyStepTask(batch_size=10, batches_per_round=2)
    assert task.run_due(runtime, clock.now()) == 40  # 20 runs, two steps each
    assert task.run_due(runtime, clock.now()) == 10
    assert task.run_due(runtime, clock.now()) == 0
    assert len(messages(runtime)) == 25


def test_two_workers_share_the_due_runs(runtime: Runtime, clock: VirtualClock) -> None:
    if runtime.database.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer at a time: its workers take turns")
    publish(runtime, V1)
    people = contacts(runtime, 10)
    enter(runtime, "drip", people)
    first, second = runtime.database.session(), runtime.database.session()
    try:
        with first.begin(), second.begin():
            definitions = runtime.definitions.load(first)
            # The first worker holds its batch (its transaction is open) …
            assert runtime.journeys.run_due(first, definitions, now=clock.now(), limit=4) == 8
            # … and the second takes the others at once instead of waiting for it.
            assert runtime.journeys.run_due(second, definitions, now=clock.now(), limit=10) == 12
    finally:
        first.close()
        second.close()
    assert run_steps(runtime) == 0
    assert sorted(m.contact_id for m in messages(runtime)) == sorted(people)
