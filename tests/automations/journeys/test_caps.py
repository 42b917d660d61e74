"""What a send step does when the send gate holds a message back: the journey's `on_cap`
(wait, skip, exit) for caps, the quiet hours' own action for quiet hours.

The gate's decisions (caps counted from the outbox, quiet hours in the contact's zone) are
the collision control's and tested with it; here a gate answers as scripted, so that each
policy meets each kind of answer."""

from __future__ import annotations

import uuid
from collections.abc import Hashable, Sequence
from datetime import datetime, timedelta

import pytest
from sqlalchemy.orm import Session

from postillon.automations.collision import SendCandidate, SendDecision, SendGate
from postillon.clock import VirtualClock
from postillon.models import EmailTemplate, FrequencyCap
from postillon.runtime import Runtime
from tests.automations.journeys.support import (
    contacts,
    enter,
    history,
    messages,
    publish,
    run_steps,
    runs,
    template,
)


class ScriptedGate(SendGate):
    """Holds the contacts it is told to, until a moment; remembers what it was asked."""

    def __init__(self, runtime: Runtime) -> None:
        super().__init__(runtime.clock)
        self.holds: dict[uuid.UUID, SendDecision] = {}
        self.asked: list[SendCandidate] = []
        # Hold even once `retry_at` has come (a gate at odds with itself).
        self.stubborn = False

    def decide(
        self, session: Session, candidates: Sequence[SendCandidate], *, now: datetime
    ) -> dict[Hashable, SendDecision]:
        self.asked.extend(candidates)
        decisions: dict[Hashable, SendDecision] = {}
        for candidate in candidates:
            held = self.holds.get(candidate.contact_id)
            if held is None or (
                not self.stubborn and held.retry_at is not None and held.retry_at <= now
            ):
                decisions[candidate.key] = SendDecision(allowed=True)
            else:
                decisions[candidate.key] = held
        return decisions


@pytest.fixture
def gate(runtime: Runtime) -> ScriptedGate:
    scripted = ScriptedGate(runtime)
    runtime.journeys.send_gate = scripted
    return scripted


def _journey(runtime: Runtime, key: str, on_cap: str, extra: str = "") -> None:
    publish(
        runtime,
        f"""
kind: journey
key: {key}
name: {key}
trigger: {{event: x}}
on_cap: {on_cap}
{extra}
steps:
  - {{id: mail, send: hello}}
  - {{id: after, send: bye}}
""",
    )


def _cap(clock: VirtualClock, *, retry: timedelta | None = timedelta(hours=15)) -> SendDecision:
    return SendDecision(
        allowed=False,
        retry_at=None if retry is None else clock.now() + retry,
        rule="cap_day",
        reason="1 marketing email today (cap 1 per day)",
        details={"sent_today": 1, "per_day": 1},
    )


@pytest.fixture(autouse=True)
def _templates(runtime: Runtime) -> None:
    template(runtime, "hello")
    template(runtime, "bye")


def test_on_cap_wait_holds_the_step_until_the_gate_allows_it(
    runtime: Runtime, clock: VirtualClock, gate: ScriptedGate
) -> None:
    _journey(runtime, "waits", "wait")
    ann, bob = contacts(runtime, 2)
    gate.holds[ann] = _cap(clock)
    enter(runtime, "waits", [ann, bob])
    run_steps(runtime)
    held = next(r for r in runs(runtime) if r.contact_id == ann)
    assert (held.state, held.step_id, held.due_at) == (
        "active",
        "mail",
        clock.now() + timedelta(hours=15),
    )
    entry = next(h for h in history(runtime, ann) if h.outcome == "held")
    assert entry.reason == (
        "held until 2026-01-06T00:00:00+00:00: 1 marketing email today (cap 1 per day)"
    )
    assert entry.details["policy"] == "wait" and entry.details["rule"] == "cap_day"
    assert [m.step for m in messages(runtime, bob)] == ["mail", "after"]
    assert messages(runtime, ann) == []
    clock.advance(timedelta(hours=15))
    run_steps(runtime)
    assert [m.step for m in messages(runtime, ann)] == ["mail", "after"]


def test_on_cap_skip_and_exit(runtime: Runtime, clock: VirtualClock, gate: ScriptedGate) -> None:
    _journey(runtime, "skips", "skip")
    _journey(runtime, "exits", "exit")
    ann, bob = contacts(runtime, 2)
    gate.holds[ann] = gate.holds[bob] = _cap(clock, retry=timedelta(seconds=1))
    enter(runtime, "skips", [ann])
    enter(runtime, "exits", [bob])
    run_steps(runtime)
    clock.advance(timedelta(seconds=1))
    run_steps(runtime)
    # Both of Ann's sends were skipped at once (the gate held her for both); the journey
    # went on without waiting.
    assert messages(runtime, ann) == []
    assert [h.outcome for h in history(runtime, ann)] == [
        "entered", "skipped", "skipped", "completed"
    ]  # fmt: skip
    assert history(runtime, ann)[1].reason == "not sent: 1 marketing email today (cap 1 per day)"
    (exited,) = runs(runtime, "exits")
    assert (exited.state, exited.end_reason) == (
        "exited", "not sent, the journey exits: 1 marketing email today (cap 1 per day)"
    )  # fmt: skip
    assert messages(runtime, bob) == []


def test_quiet_hours_follow_their_own_action(
    runtime: Runtime, clock: VirtualClock, gate: ScriptedGate
) -> None:
    quiet = 'quiet_hours: {start: "21:00", end: "08:00", action: hold}'
    _journey(runtime, "quiet", "exit", quiet)
    ann, bob = contacts(runtime, 2)
    gate.holds[ann] = SendDecision(
        allowed=False, retry_at=clock.now() + timedelta(hours=2), rule="quiet_hours",
        reason="quiet hours 21:00-08:00 UTC",
    )  # fmt: skip
    gate.holds[bob] = SendDecision(
        allowed=False, retry_at=None, rule="quiet_hours", reason="quiet hours 21:00-08:00 UTC"
    )
    enter(runtime, "quiet", [ann, bob])
    run_steps(runtime)
    assert gate.asked[0].quiet_hours is not None and gate.asked[0].quiet_hours.end.hour == 8
    # Held (not exited, whatever on_cap says), and skipped when quiet hours say skip.
    (ann_run,) = [r for r in runs(runtime) if r.contact_id == ann]
    assert (ann_run.state, ann_run.step_id) == ("active", "mail")
    assert [h.outcome for h in history(runtime, bob)][1] == "skipped"
    clock.advance(timedelta(hours=2))
    run_steps(runtime)
    assert [m.step for m in messages(runtime, ann)] == ["mail", "after"]


def test_transactional_sends_are_not_marketing(runtime: Runtime, gate: ScriptedGate) -> None:
    _journey(runtime, "orders", "wait", "transactional: true")
    _journey(runtime, "news", "wait")
    with runtime.database.transaction() as session:
        receipt = session.get(EmailTemplate, template(runtime, "receipt"))
        assert receipt is not None
        receipt.kind = "transactional"
    publish(
        runtime,
        "kind: journey\nkey: receipts\nname: Receipts\ntrigger: {event: y}\n"
        "steps: [{id: mail, send: receipt}]",
    )
    (ann,) = contacts(runtime, 1)
    for key in ("orders", "news", "receipts"):
        enter(runtime, key, [ann])
        run_steps(runtime)
    marketing = [c.marketing for c in gate.asked]
    assert marketing == [False, False, True, True, False]


def test_a_cap_of_one_a_day_across_journeys(runtime: Runtime, clock: VirtualClock) -> None:
    with runtime.database.transaction() as session:
        session.add(FrequencyCap(channel="email", per_day=1, per_week=None, updated_at=clock.now()))
    _journey(runtime, "first", "wait")
    _journey(runtime, "second", "skip")
    (ann,) = contacts(runtime, 1)
    enter(runtime, "first", [ann])
    enter(runtime, "second", [ann])
    run_steps(runtime)
    assert len(messages(runtime, ann)) == 1
    clock.advance(timedelta(days=1))
    run_steps(runtime)
    assert len(messages(runtime, ann)) == 2


def test_a_hold_until_now_still_waits_a_moment(
    runtime: Runtime, clock: VirtualClock, gate: ScriptedGate
) -> None:
    _journey(runtime, "waits", "wait")
    (ann,) = contacts(runtime, 1)
    gate.stubborn = True
    gate.holds[ann] = _cap(clock, retry=timedelta(0))
    enter(runtime, "waits", [ann])
    assert run_steps(runtime) == 1
    (held,) = runs(runtime)
    assert (held.step_id, held.due_at) == ("mail", clock.now() + timedelta(seconds=1))
