"""The steps, each executed for a group of runs at the same step of the same journey
version with a fixed number of queries, whatever the group's size.

- send: the send gate decides for the group (caps, quiet hours); allowed messages go to
  the outbox in one `MessageService.enqueue`, keyed `journey:<run>:<step>` so a replayed
  step makes no second message; the journey's `on_cap` decides about held ones (wait
  until the gate's `retry_at`, skip the send, or exit), quiet hours their own action.
  The message's context (what its template reads as `event`) is the triggering event's
  properties with the step's `context` over them; it carries the run's split variant.
- update: one `ActionRunner.run` per action for the whole group.
- wait: the moment is computed per run (a duration; a local time of day on allowed
  weekdays; a date attribute ± days at a local time), in the contact's time zone, else
  the journey's. The run then stands at the following step, due at that moment.
- wait_for: the run waits (`waiting`, `wait_event`) until the event or its timeout.
- branch: each case's filter is evaluated for the contacts no earlier case took.
- split: a stable hash of run and step picks the variant; the rest is the control group.
- move_to: the run ends `moved` and enters the other journey when the batch is written.
- exit: the run ends `completed` (it went the way the journey says); `exited` is kept for
  runs that were made to leave (exit criteria, caps, removals, take-overs).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from postillon.automations import history as hist
from postillon.automations import model as am
from postillon.automations.actions import ActionTarget
from postillon.automations.collision import SendCandidate, SendDecision
from postillon.automations.definitions import Published, Status
from postillon.automations.documents import format_duration
from postillon.automations.journeys import repository
from postillon.automations.journeys.batch import Batch
from postillon.automations.journeys.runs import Run, RunState
from postillon.automations.journeys.times import date_moment, next_time_of_day, zone_for
from postillon.messages.service import MessageRequest

_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MIN_HOLD = timedelta(seconds=1)


def execute(batch: Batch, published: Published, step_id: str | None, runs: Sequence[Run]) -> None:
    """Execute one step for a group of runs standing at it."""
    batch.work += len(runs)
    journey = published.journey
    if step_id is None:
        # A wait was the last step: its time has come.
        for run in runs:
            batch.end(run, RunState.completed, "completed after its last wait")
        return
    try:
        step = journey.step(step_id)
    except KeyError:
        for run in runs:
            batch.end(run, RunState.exited, f"version {published.version} has no step {step_id!r}")
        return
    handler: Callable[[Batch, Published, Any, Sequence[Run]], None] = _HANDLERS[type(step)]
    handler(batch, published, step, runs)


def _send(batch: Batch, published: Published, step: am.SendStep, runs: Sequence[Run]) -> None:
    journey = published.journey
    action = step.action
    template = batch.template(action.template)
    if template is None:
        for run in runs:
            batch.note(run, hist.Outcome.skipped, f"no template {action.template!r}: not sent")
            batch.go(run, journey, step.id, step.next)
        return
    marketing = template.kind == "marketing" and not journey.transactional
    candidates = [
        SendCandidate(
            run.id,
            run.contact_id,
            action.channel,
            marketing,
            journey.quiet_hours,
            timezone=journey.timezone,
        )
        for run in runs
    ]
    decisions = batch.engine.send_gate.decide(batch.session, candidates, now=batch.now)
    sending: list[Run] = []
    for run in runs:
        decision = decisions.get(run.id, SendDecision(allowed=True))
        if decision.allowed:
            sending.append(run)
        else:
            _held_back(batch, journey, step, run, decision)
    if not sending:
        return
    requests = [
        MessageRequest(
            contact_id=run.contact_id,
            template_id=template.id,
            dedupe_key=f"journey:{run.id}:{step.id}",
            source="journey",
            # What templates read as `event`: the trigger's properties and the step's data.
            context={**run.event_properties, **action.context},
            variant=_variant(run),
            automation_id=published.id,
            step=step.id,
        )
        for run in sending
    ]
    enqueued = batch.engine.messages.enqueue(batch.session, requests)
    for run, request in zip(sending, requests, strict=True):
        message_id = enqueued.message_ids.get(request.dedupe_key)
        if message_id is None:
            batch.note(run, hist.Outcome.skipped, "the contact has no email address: not sent")
        else:
            run.remember("messages", step.id, str(message_id))
            batch.note(
                run, hist.Outcome.sent, f"{template.key} queued for sending",
                details={"message_id": str(message_id), "template": template.key,
                         "marketing": marketing},
            )  # fmt: skip
        batch.go(run, journey, step.id, step.next)


def _held_back(
    batch: Batch, journey: am.Journey, step: am.SendStep, run: Run, decision: SendDecision
) -> None:
    """A send the gate did not allow: hold (wait for `retry_at`), skip, or exit."""
    details: dict[str, Any] = {"rule": decision.rule, **decision.details}
    if decision.retry_at is not None:
        details["retry_at"] = decision.retry_at.isoformat()
    if decision.rule == "quiet_hours":
        policy = "wait" if decision.retry_at is not None else "skip"
    else:
        policy = str(journey.on_cap)
        if policy == "wait" and decision.retry_at is None:
            policy = "skip"
    details["policy"] = policy
    if policy == "wait":
        assert decision.retry_at is not None
        # Never due again in this batch: a gate answering "not now, but now" would
        # otherwise keep the worker busy.
        until = max(decision.retry_at, batch.now + _MIN_HOLD)
        run.due_at = until
        batch.note(
            run, hist.Outcome.held, f"held until {until.isoformat()}: {decision.reason}",
            details=details,
        )  # fmt: skip
    elif policy == "skip":
        batch.note(run, hist.Outcome.skipped, f"not sent: {decision.reason}", details=details)
        batch.go(run, journey, step.id, step.next)
    else:
        batch.end(run, RunState.exited, f"not sent, the journey exits: {decision.reason}",
                  details=details)  # fmt: skip


def _variant(run: Run) -> str | None:
    variant = run.context.get("variant")
    return variant if isinstance(variant, str) else None


def _update(batch: Batch, published: Published, step: am.UpdateStep, runs: Sequence[Run]) -> None:
    targets = [
        ActionTarget(
            contact_id=run.contact_id,
            key=f"journey:{run.id}:{step.id}",
            event=run.event,
            run_id=run.id,
            step_id=step.id,
        )
        for run in runs
    ]
    outcomes: list[list[dict[str, Any]]] = [[] for _ in runs]
    for action in step.actions:
        results = batch.engine.actions.run(batch.session, published, action, targets, now=batch.now)
        for mine, result in zip(outcomes, results, strict=True):
            mine.append(
                {"action": type(action).__name__, "done": result.done, "reason": result.reason,
                 **({"details": result.details} if result.details else {})}
            )  # fmt: skip
    # An action may have ended runs of this batch (removed from a journey, taken over).
    batch.reconcile()
    journey = published.journey
    for run, mine in zip(runs, outcomes, strict=True):
        done = [o for o in mine if o["done"]]
        reason = "; ".join(o["reason"] for o in mine)
        if len(done) < len(mine):
            reason = f"{len(done)} of {len(mine)} actions done: {reason}"
        batch.note(run, hist.Outcome.updated, reason, details={"actions": mine})
        if not batch.detached(run):
            batch.go(run, journey, step.id, step.next)


def _wait(batch: Batch, published: Published, step: am.WaitStep, runs: Sequence[Run]) -> None:
    journey = published.journey
    following = step.next or journey.following(step.id)
    if step.kind is am.WaitKind.duration:
        assert step.duration is not None
        # The same moment and words for the whole group.
        until = batch.now + step.duration
        reason = f"waits {format_duration(step.duration)} until {until.isoformat()}"
        details = {"next": following, "until": until.isoformat()}
        for run in runs:
            batch.note(run, hist.Outcome.waited, reason, details=details)
            run.steps_done += 1
            run.step_id, run.due_at = following, until
        return
    times = repository.contact_times(batch.session, {r.contact_id for r in runs})
    at = step.at
    assert at is not None
    for run in runs:
        zone_name, attributes = times.get(run.contact_id, (None, {}))
        zone = zone_for(zone_name, journey.timezone)
        if step.kind is am.WaitKind.time_of_day:
            until = next_time_of_day(batch.now, at, step.weekdays, zone)
            days = (
                ""
                if len(step.weekdays) == 7
                else " on " + ",".join(_WEEKDAYS[d] for d in step.weekdays)
            )
            reason = f"waits for {at.strftime('%H:%M')}{days} ({zone.key})"
        else:
            assert step.attribute is not None
            moment = date_moment(attributes.get(step.attribute), step.offset_days, at, zone)
            if moment is None:
                batch.note(
                    run, hist.Outcome.skipped,
                    f"no date in attribute {step.attribute!r}: the wait is skipped",
                    details={"next": following},
                )  # fmt: skip
                batch.go(run, journey, step.id, step.next)
                continue
            until = max(moment, batch.now)
            offset = f" {step.offset_days:+d} days" if step.offset_days else ""
            reason = f"waits for {step.attribute}{offset} at {at.strftime('%H:%M')} ({zone.key})"
            if moment < batch.now:
                reason = f"{step.attribute}{offset} has passed ({moment.isoformat()}): goes on"
        batch.note(
            run, hist.Outcome.waited, f"{reason} until {until.isoformat()}",
            details={"next": following, "until": until.isoformat()},
        )  # fmt: skip
        run.steps_done += 1
        run.step_id, run.due_at = following, until


def _wait_for(
    batch: Batch, published: Published, step: am.WaitForEventStep, runs: Sequence[Run]
) -> None:
    until = batch.now + step.timeout
    about = f" about the message of {step.message_step}" if step.message_step else ""
    for run in runs:
        run.state, run.wait_event, run.due_at = RunState.waiting, step.event.event, until
        run.set_context("waiting_since", batch.now.isoformat())
        batch.note(
            run, hist.Outcome.waited,
            f"waits for {step.event.event}{about} until {until.isoformat()}",
            details={"event": step.event.event, "timeout": until.isoformat()},
        )  # fmt: skip


def _branch(batch: Batch, published: Published, step: am.BranchStep, runs: Sequence[Run]) -> None:
    journey = published.journey
    remaining = list(runs)
    total = len(step.cases)
    matching = batch.evaluate([c.filter for c in step.cases], {r.contact_id for r in runs})
    for index, (case, matched) in enumerate(zip(step.cases, matching, strict=True)):
        rest: list[Run] = []
        for run in remaining:
            if run.contact_id not in matched:
                rest.append(run)
                continue
            batch.note(
                run, hist.Outcome.branched,
                f"case {index + 1} of {total} matched → {case.next}",
                details={"case": index, "next": case.next, "not_matched": list(range(index))},
            )  # fmt: skip
            batch.go(run, journey, step.id, case.next)
        remaining = rest
    otherwise = step.otherwise or journey.following(step.id)
    for run in remaining:
        batch.note(
            run, hist.Outcome.branched,
            f"no case of {total} matched → {otherwise or 'the end'}",
            details={"case": None, "next": otherwise, "not_matched": list(range(total))},
        )  # fmt: skip
        batch.go(run, journey, step.id, step.otherwise)


def bucket(run_id: Any, step_id: str) -> float:
    """A stable number in [0, 100) for a run at a split."""
    digest = hashlib.sha256(f"{run_id}:{step_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 10_000 / 100


def _split(batch: Batch, published: Published, step: am.SplitStep, runs: Sequence[Run]) -> None:
    journey = published.journey
    for run in runs:
        drawn = bucket(run.id, step.id)
        bound = 0
        chosen: am.SplitVariant | None = None
        for variant in step.variants:
            bound += variant.percent
            if drawn < bound:
                chosen = variant
                break
        name = chosen.name if chosen is not None else "control"
        run.remember("variants", step.id, name)
        run.set_context("variant", name)
        details = {"variant": name, "bucket": drawn}
        if chosen is None:
            batch.end(
                run, RunState.control, f"control group ({100 - bound}%): the run ends here",
                details=details,
            )  # fmt: skip
            continue
        batch.note(
            run, hist.Outcome.variant, f"variant {name} ({chosen.percent}%) → {chosen.next}",
            details=details,
        )  # fmt: skip
        batch.go(run, journey, step.id, chosen.next)


def _move(batch: Batch, published: Published, step: am.MoveStep, runs: Sequence[Run]) -> None:
    target = batch.definitions.by_key.get(step.journey)
    if target is None or not isinstance(target.tree, am.Journey):
        problem = f"cannot move: no published journey {step.journey!r}"
    elif target.status != Status.active:
        problem = f"cannot move: the journey {step.journey} is {target.status}"
    else:
        problem = None
    for run in runs:
        run.steps_done += 1
        if problem is not None or target is None:
            batch.end(run, RunState.exited, problem or "cannot move")
            continue
        batch.end(run, RunState.moved, f"moved to {step.journey}", details={"to": step.journey})
        batch.moves.append((run, target))


def _exit(batch: Batch, published: Published, step: am.ExitStep, runs: Sequence[Run]) -> None:
    for run in runs:
        run.steps_done += 1
        batch.end(run, RunState.completed, f"reached the exit step {step.id}")


_HANDLERS: dict[type, Callable[[Batch, Published, Any, Sequence[Run]], None]] = {
    am.SendStep: _send,
    am.UpdateStep: _update,
    am.WaitStep: _wait,
    am.WaitForEventStep: _wait_for,
    am.BranchStep: _branch,
    am.SplitStep: _split,
    am.MoveStep: _move,
    am.ExitStep: _exit,
}
