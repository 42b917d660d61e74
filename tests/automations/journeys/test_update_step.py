"""The update step: each of its actions runs once for the whole group of runs, through
the action runner (contacts upsert, scoring ledger, lifecycle), and the history says
what each action did for each run."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from postillon.automations import model as am
from postillon.automations.actions import ActionResult, ActionRunner, ActionTarget
from postillon.automations.definitions import Published
from postillon.clock import VirtualClock
from postillon.models import Contact, JourneyRun, ScoreChange
from postillon.runtime import Runtime
from tests.automations.journeys.support import (
    contacts,
    enter,
    history,
    messages,
    publish,
    run_of,
    run_steps,
    runs,
    tag,
    template,
)

JOURNEY = """
kind: journey
key: qualify
name: Qualify
trigger: {event: demo_requested}
entry: {policy: unlimited}
steps:
  - id: mark
    update:
      - {tags_add: [hot]}
      - {tags_remove: cold}
      - {set: {plan: pro}}
      - {score: 10}
      - {stage: mql}
  - {id: pause, wait: 1d}
"""


def _contact(runtime: Runtime, contact_id: object) -> Contact:
    with runtime.database.transaction(read_only=True) as session:
        found = session.get(Contact, contact_id)
        assert found is not None
        session.expunge(found)
        return found


def test_an_update_step_changes_the_contacts_and_says_how(
    runtime: Runtime, clock: VirtualClock
) -> None:
    publish(runtime, JOURNEY)
    ann, bob = contacts(runtime, 2)
    tag(runtime, [ann], "cold")
    enter(runtime, "qualify", [ann, bob])
    assert run_steps(runtime) == 4
    with runtime.database.transaction(read_only=True) as session:
        for person in (ann, bob):
            assert runtime.contacts.get(session, person).tags == ["hot"]
    for person in (ann, bob):
        contact = _contact(runtime, person)
        assert (contact.attributes, contact.score, contact.lifecycle_stage) == (
            {"plan": "pro"}, 10, "mql"
        )  # fmt: skip
    (updated,) = [h for h in history(runtime, ann) if h.outcome == "updated"]
    assert [a["action"] for a in updated.details["actions"]] == [
        "TagAction", "TagAction", "SetAttributesAction", "ScoreAction", "StageAction"
    ]  # fmt: skip
    assert all(a["done"] for a in updated.details["actions"])
    assert updated.reason.startswith("tags +hot; tags -cold; attributes set: plan; +10 points")
    assert {(r.step_id, r.steps_done) for r in runs(runtime)} == {(None, 2)}


def test_an_action_that_fails_is_said_and_the_run_goes_on(runtime: Runtime) -> None:
    publish(runtime, JOURNEY.replace("{stage: mql}", "{stage: nowhere}"))
    (ann,) = contacts(runtime, 1)
    enter(runtime, "qualify", [ann])
    run_steps(runtime)
    (updated,) = [h for h in history(runtime, ann) if h.outcome == "updated"]
    assert updated.reason.startswith("4 of 5 actions done:")
    assert [a["done"] for a in updated.details["actions"]] == [True, True, True, True, False]
    assert runs(runtime)[0].state == "active"


def test_a_replayed_update_step_gives_no_points_twice(
    runtime: Runtime, clock: VirtualClock
) -> None:
    publish(runtime, JOURNEY)
    (ann,) = contacts(runtime, 1)
    (run_id,) = enter(runtime, "qualify", [ann]).entered
    run_steps(runtime)
    with runtime.database.transaction() as session:
        session.execute(
            update(JourneyRun)
            .where(JourneyRun.id == run_id)
            .values(step_id="mark", due_at=clock.now())
        )
    run_steps(runtime)
    assert _contact(runtime, ann).score == 10
    with runtime.database.transaction(read_only=True) as session:
        assert session.scalar(select(func.count()).select_from(ScoreChange)) == 1
    assert run_of(runtime, run_id).step_id is None


def test_an_update_that_removes_the_contact_from_a_journey_in_the_same_batch(
    runtime: Runtime, clock: VirtualClock
) -> None:
    template(runtime, "hello")
    publish(
        runtime,
        "kind: journey\nkey: nurture\nname: Nurture\ntrigger: {event: x}\n"
        "steps: [{id: pause, wait: 1h}, {id: check, if: {tag: x}, then: mail},"
        " {id: mail, send: hello}]",
    )
    publish(
        runtime,
        "kind: journey\nkey: sales\nname: Sales\ntrigger: {event: y}\n"
        "steps: [{id: pause, wait: 1h}, {id: stop, update: [{journey_remove: nurture}]},"
        " {id: later, wait: 1d}]",
    )
    (ann,) = contacts(runtime, 1)
    enter(runtime, "nurture", [ann])
    enter(runtime, "sales", [ann])
    run_steps(runtime)
    clock.advance(timedelta(hours=1))
    run_steps(runtime)
    # Both runs were in the batch: the removal stands, the nurture run sends nothing.
    (nurture,) = runs(runtime, "nurture")
    assert (nurture.state, nurture.end_reason) == ("exited", "removed by sales")
    assert messages(runtime, ann) == []
    (sales,) = runs(runtime, "sales")
    assert (sales.state, sales.step_id) == ("active", None)


class BrokenActions(ActionRunner):
    """The real runner, except that tagging `boom` fails (as a bug would)."""

    def __init__(self, runner: ActionRunner) -> None:
        self.__dict__.update(runner.__dict__)
        self.mended = False

    def run(self, session: Session, automation: Published, action: am.Action,
            targets: Sequence[ActionTarget], *, now: datetime,
            position: int | None = None) -> list[ActionResult]:  # fmt: skip
        if not self.mended and isinstance(action, am.TagAction) and "boom" in action.add:
            raise RuntimeError("the tag service is down")
        return super().run(session, automation, action, targets, now=now, position=position)


def test_a_failing_step_is_rolled_back_and_retried_without_holding_up_the_others(
    runtime: Runtime, clock: VirtualClock
) -> None:
    broken = BrokenActions(runtime.journeys.actions)
    runtime.journeys.actions = broken
    publish(runtime, JOURNEY.replace("key: qualify", "key: fine"))
    publish(
        runtime,
        JOURNEY.replace("key: qualify", "key: failing").replace(
            "      - {stage: mql}", "      - {stage: mql}\n      - {tags_add: [boom]}"
        ),
    )
    ann, bob = contacts(runtime, 2)
    enter(runtime, "failing", [ann])
    enter(runtime, "fine", [bob])
    run_steps(runtime)
    (failing,) = runs(runtime, "failing")
    assert (failing.state, failing.step_id, failing.steps_done) == ("active", "mark", 0)
    assert failing.due_at == clock.now() + timedelta(minutes=1)
    assert failing.context["failures"] == 1
    # The actions before the failing one were rolled back with it.
    contact = _contact(runtime, ann)
    assert (contact.score, contact.lifecycle_stage, contact.attributes) == (0, None, {})
    failed = [h for h in history(runtime, ann) if h.outcome == "failed"]
    assert [h.reason for h in failed] == [
        "step mark failed (RuntimeError: the tag service is down); again at "
        "2026-01-05T09:01:00+00:00"
    ]
    (fine,) = runs(runtime, "fine")
    assert (fine.step_id, _contact(runtime, bob).score) == (None, 10)

    clock.advance(timedelta(minutes=1))
    run_steps(runtime)
    assert run_of(runtime, failing.id).due_at == clock.now() + timedelta(minutes=2)
    # Mended: the step goes through once, and the count of failures is forgotten.
    broken.mended = True
    clock.advance(timedelta(minutes=2))
    run_steps(runtime)
    mended = run_of(runtime, failing.id)
    assert (mended.step_id, mended.steps_done, "failures" in mended.context) == (None, 2, False)
    assert _contact(runtime, ann).score == 10
