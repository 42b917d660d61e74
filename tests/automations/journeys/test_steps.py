"""Each kind of step, executed by the worker's journey task on the virtual clock."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from postillon.automations.journeys.steps import bucket
from postillon.clock import VirtualClock
from postillon.models import Contact, JourneyRun
from postillon.runtime import Runtime
from tests.automations.journeys.support import (
    contacts,
    enter,
    history,
    messages,
    outcomes,
    publish,
    run_of,
    run_steps,
    runs,
    set_status,
    tag,
    template,
)

EVENT = {"id": 1, "name": "cart_abandoned", "message_id": "m-1",
         "occurred_at": "2026-01-05T08:00:00+00:00", "properties": {"cart_id": "c-9"}}  # fmt: skip


@pytest.fixture(autouse=True)
def _templates(runtime: Runtime) -> None:
    template(runtime, "hello")
    template(runtime, "vip")


def _publish(runtime: Runtime, steps: str, key: str = "j", extra: str = "") -> None:
    publish(
        runtime,
        f"""
kind: journey
key: {key}
name: {key}
trigger: {{event: go}}
entry: {{policy: unlimited}}
{extra}
steps:
{steps}
""",
    )


def test_send_puts_one_message_per_run_and_step_in_the_outbox(
    runtime: Runtime, clock: VirtualClock
) -> None:
    _publish(runtime, "  - {id: mail, send: {template: hello, context: {coupon: SAVE5}}}")
    (ann,) = contacts(runtime, 1)
    (run_id,) = enter(runtime, "j", [ann], event=EVENT).entered
    assert run_steps(runtime) == 1
    (message,) = messages(runtime, ann)
    assert message.dedupe_key == f"journey:{run_id}:mail"
    assert (message.source, message.step, message.state, message.kind) == (
        "journey", "mail", "queued", "marketing"
    )  # fmt: skip
    assert message.automation_id == runs(runtime)[0].journey_id
    # Templates read the context as `event`: {{ event.cart_id }}, {{ event.coupon }}.
    assert message.context == {"cart_id": "c-9", "coupon": "SAVE5"}
    run = run_of(runtime, run_id)
    assert run.context["messages"] == {"mail": str(message.id)}
    assert (run.state, run.end_reason, run.steps_done) == (
        "completed",
        "completed after step mail",
        1,
    )
    assert outcomes(runtime, ann) == [("mail", "entered"), ("mail", "sent"), ("mail", "completed")]

    # The step replayed (a crash before the commit would do this): no second message.
    with runtime.database.transaction() as session:
        session.execute(
            update(JourneyRun)
            .where(JourneyRun.id == run_id)
            .values(state="active", due_at=clock.now(), ended_at=None)
        )
    run_steps(runtime)
    assert [m.id for m in messages(runtime, ann)] == [message.id]
    assert run_of(runtime, run_id).context["messages"] == {"mail": str(message.id)}


def test_a_send_without_an_address_or_template_is_skipped(runtime: Runtime) -> None:
    _publish(runtime, "  - {id: one, send: hello}\n  - {id: two, send: gone}")
    (nobody,) = contacts(runtime, 1, with_email=False)
    enter(runtime, "j", [nobody])
    run_steps(runtime)
    skipped = [h for h in history(runtime, nobody) if h.outcome == "skipped"]
    assert [h.reason for h in skipped] == [
        "the contact has no email address: not sent",
        "no template 'gone': not sent",
    ]
    assert runs(runtime)[0].state == "completed"
    assert messages(runtime) == []


def test_a_duration_wait_and_the_end_after_a_last_wait(
    runtime: Runtime, clock: VirtualClock
) -> None:
    _publish(runtime, "  - {id: mail, send: hello}\n  - {id: pause, wait: 1d12h}")
    (ann,) = contacts(runtime, 1)
    (run_id,) = enter(runtime, "j", [ann]).entered
    run_steps(runtime)
    run = run_of(runtime, run_id)
    assert (run.state, run.step_id, run.due_at) == (
        "active",
        None,
        clock.now() + timedelta(hours=36),
    )
    waited = history(runtime, ann)[-1]
    assert waited.reason == "waits 1d12h until 2026-01-06T21:00:00+00:00"
    clock.advance(timedelta(hours=35))
    assert run_steps(runtime) == 0
    clock.advance(timedelta(hours=1))
    assert run_steps(runtime) == 1
    done = run_of(runtime, run_id)
    assert (done.state, done.end_reason, done.steps_done) == (
        "completed", "completed after its last wait", 2
    )  # fmt: skip


def test_a_wait_until_a_local_time_on_weekdays(runtime: Runtime, clock: VirtualClock) -> None:
    _publish(
        runtime,
        "  - {id: morning, wait: {until: '09:30', weekdays: [monday, wednesday]}}\n"
        "  - {id: mail, send: hello}",
        extra="timezone: Europe/Berlin",
    )
    berlin, tokyo, nowhere = contacts(runtime, 3)
    with runtime.database.transaction() as session:
        session.execute(update(Contact).where(Contact.id == tokyo).values(timezone="Asia/Tokyo"))
    # Monday 5 January 2026, 09:00 UTC: 10:00 in Berlin (09:30 has passed), 18:00 in Tokyo.
    enter(runtime, "j", [berlin, tokyo, nowhere])
    run_steps(runtime)
    due = {r.contact_id: r.due_at for r in runs(runtime)}
    assert due[berlin] == due[nowhere] == datetime(2026, 1, 7, 8, 30, tzinfo=UTC)
    assert due[tokyo] == datetime(2026, 1, 7, 0, 30, tzinfo=UTC)
    assert history(runtime, tokyo)[-1].reason == (
        "waits for 09:30 on Mon,Wed (Asia/Tokyo) until 2026-01-07T00:30:00+00:00"
    )
    clock.set(datetime(2026, 1, 7, 0, 30, tzinfo=UTC))
    run_steps(runtime)
    assert [len(messages(runtime, c)) for c in (berlin, tokyo, nowhere)] == [0, 1, 0]


def test_a_wait_for_a_date_attribute(runtime: Runtime, clock: VirtualClock) -> None:
    _publish(
        runtime,
        "  - {id: before, wait: {attribute: renewal, offset_days: -3, until: '10:00'}}\n"
        "  - {id: mail, send: hello}",
    )
    future, past, missing, garbled = contacts(runtime, 4)
    with runtime.database.transaction() as session:
        for contact_id, value in (
            (future, {"renewal": "2026-02-01"}),
            (past, {"renewal": "2025-12-01"}),
            (garbled, {"renewal": "soon"}),
        ):
            session.execute(
                update(Contact).where(Contact.id == contact_id).values(attributes=value)
            )
    enter(runtime, "j", [future, past, missing, garbled])
    run_steps(runtime)
    assert run_of(runtime, runs(runtime)[0].id)
    by_contact = {r.contact_id: r for r in runs(runtime)}
    assert by_contact[future].due_at == datetime(2026, 1, 29, 10, 0, tzinfo=UTC)
    assert by_contact[future].state == "active"
    for gone_on in (past, missing, garbled):
        assert by_contact[gone_on].state == "completed"
        assert len(messages(runtime, gone_on)) == 1
    assert "renewal -3 days has passed" in history(runtime, past)[1].reason
    assert history(runtime, missing)[1].reason == (
        "no date in attribute 'renewal': the wait is skipped"
    )


BRANCHES = """
  - id: which
    branch:
      - {when: {tag: vip}, next: vip-mail}
      - {when: {tag: regular}, next: mail}
    otherwise: done
  - {id: vip-mail, send: vip, next: done}
  - {id: mail, send: hello}
  - {id: done, exit: {}}
"""


def test_a_branch_takes_the_first_matching_case(runtime: Runtime) -> None:
    _publish(runtime, BRANCHES)
    vip, both, regular, other = contacts(runtime, 4)
    tag(runtime, [vip, both], "vip")
    tag(runtime, [both, regular], "regular")
    enter(runtime, "j", [vip, both, regular, other])
    run_steps(runtime)
    sent = {m.contact_id: m.step for m in messages(runtime)}
    assert sent == {vip: "vip-mail", both: "vip-mail", regular: "mail"}
    assert all(r.state == "completed" for r in runs(runtime))
    assert all(r.end_reason == "reached the exit step done" for r in runs(runtime))
    branched = {c: next(h for h in history(runtime, c) if h.outcome == "branched") for c in sent}
    assert branched[both].reason == "case 1 of 2 matched → vip-mail"
    assert branched[regular].reason == "case 2 of 2 matched → mail"
    assert branched[regular].details["not_matched"] == [0]
    (no_case,) = [h for h in history(runtime, other) if h.outcome == "branched"]
    assert no_case.reason == "no case of 2 matched → done"


def test_an_if_without_else_goes_on_with_the_next_step(runtime: Runtime) -> None:
    _publish(
        runtime,
        "  - {id: check, if: {tag: vip}, then: vip-mail}\n"
        "  - {id: mail, send: hello, next: end}\n"
        "  - {id: vip-mail, send: vip}\n"
        "  - {id: end, exit: {}}",
    )
    vip, other = contacts(runtime, 2)
    tag(runtime, [vip], "vip")
    enter(runtime, "j", [vip, other])
    run_steps(runtime)
    assert {m.contact_id: m.step for m in messages(runtime)} == {vip: "vip-mail", other: "mail"}


def test_a_split_is_stable_and_keeps_a_control_group(runtime: Runtime) -> None:
    _publish(
        runtime,
        """
  - id: ab
    split:
      - {name: A, percent: 45, next: a}
      - {name: B, percent: 45, next: b}
  - {id: a, send: hello, next: end}
  - {id: b, send: vip}
  - {id: end, exit: {}}
""",
    )
    people = contacts(runtime, 400)
    enter(runtime, "j", people)
    run_steps(runtime)
    taken = {r.id: r.context["variants"]["ab"] for r in runs(runtime)}
    counts = Counter(taken.values())
    assert set(counts) == {"A", "B", "control"}
    assert 140 <= counts["A"] <= 220 and 140 <= counts["B"] <= 220 and counts["control"] <= 70
    for run in runs(runtime):
        expected = (
            "A" if bucket(run.id, "ab") < 45 else "B" if bucket(run.id, "ab") < 90 else "control"
        )
        assert taken[run.id] == expected
        if expected == "control":
            assert (run.state, run.end_reason) == (
                "control",
                "control group (10%): the run ends here",
            )
    by_run = {m.dedupe_key.split(":")[1]: m for m in messages(runtime)}
    assert len(by_run) == counts["A"] + counts["B"]
    for run_id, message in by_run.items():
        assert message.variant == taken[uuid.UUID(run_id)]
        assert message.step == {"A": "a", "B": "b"}[str(message.variant)]
    assert 0 <= bucket(uuid.uuid4(), "x") < 100


def test_move_to_ends_the_run_and_enters_the_other_journey(
    runtime: Runtime, clock: VirtualClock
) -> None:
    _publish(runtime, "  - {id: mail, send: hello}\n  - {id: over, wait: 1h}", key="customers")
    _publish(runtime, "  - {id: go, move_to: customers}", key="leads")
    _publish(runtime, "  - {id: go, move_to: closed}", key="stuck")
    _publish(runtime, "  - {id: mail, send: hello}", key="closed")
    set_status(runtime, "closed", "paused")
    ann, bob = contacts(runtime, 2)
    (lead,) = enter(runtime, "leads", [ann], event=EVENT).entered
    (stuck,) = enter(runtime, "stuck", [bob]).entered
    run_steps(runtime)
    moved = run_of(runtime, lead)
    assert (moved.state, moved.end_reason) == ("moved", "moved to customers")
    (customer,) = runs(runtime, "customers")
    assert (customer.entry_key, customer.source) == (f"move:{lead}", "move:leads")
    assert customer.context["event"] == EVENT
    assert customer.context["started"] == clock.now().isoformat()
    # It is due at once: the same worker round sent its mail.
    assert [m.step for m in messages(runtime, ann)] == ["mail"]
    blocked = run_of(runtime, stuck)
    assert (blocked.state, blocked.end_reason) == (
        "exited", "cannot move: the journey closed is paused"
    )  # fmt: skip


def test_a_run_goes_through_several_steps_in_one_round(runtime: Runtime) -> None:
    _publish(
        runtime,
        "  - {id: check, if: {tag: vip}, then: mail}\n"
        "  - {id: mail, send: hello}\n"
        "  - {id: second, send: vip}\n"
        "  - {id: pause, wait: 2h}\n"
        "  - {id: third, send: hello}",
    )
    people = contacts(runtime, 3)
    tag(runtime, people[:1], "vip")
    enter(runtime, "j", people)
    assert run_steps(runtime) == 12
    assert len(messages(runtime)) == 6
    assert {(r.step_id, r.steps_done) for r in runs(runtime)} == {("third", 4)}
