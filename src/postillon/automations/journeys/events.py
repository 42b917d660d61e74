"""What events do to runs: resume waits for an event, and end runs by the journey's
goal (`converted`) or exit criteria (`exited`).

The same checks run in two places. When stored events reach the `automations` consumer
(`on_events`), the live runs of their contacts are locked and checked against them. And
when the step worker claims runs (`check_criteria`, `time_out`), the events that ended or
resumed a run are read from the timeline itself, so a run whose goal event is stored but
not yet consumed (a lagging queue) still ends before its next step sends anything, and a
wait that times out looks at the events of its window first.

Only events that occurred after the run started (its triggering event's time, or its
entry) reach a goal or exit; a wait is met only by an event between the moment it began
and its timeout, and, with `message_step`, only by one about the message that step sent
(`properties.message_id`, as email tracking records it). Opens and clicks that email
tracking marks as a machine's (`properties.machine`) meet nothing.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from postillon.automations import history as hist
from postillon.automations import model as am
from postillon.automations.definitions import Definitions
from postillon.automations.documents import format_duration
from postillon.automations.journeys import repository
from postillon.automations.journeys.batch import Batch
from postillon.automations.journeys.repository import SeenEvent
from postillon.automations.journeys.runs import Run, RunState
from postillon.filters.evaluate import matches_properties
from postillon.models import Event

if TYPE_CHECKING:
    from postillon.automations.journeys.engine import JourneyEngine


def seen_events(events: Iterable[Event]) -> dict[uuid.UUID, list[SeenEvent]]:
    """Stored events of contacts, by contact, oldest first."""
    found: dict[uuid.UUID, list[SeenEvent]] = defaultdict(list)
    for event in sorted(events, key=lambda e: (e.occurred_at, e.id)):
        if event.contact_id is None:
            continue
        found[event.contact_id].append(
            SeenEvent(
                event.id,
                event.contact_id,
                event.name,
                event.message_id,
                event.occurred_at,
                dict(event.properties or {}),
            )
        )
    return found


def is_machine(event: SeenEvent | Event) -> bool:
    """An open or click that email tracking attributed to a machine (a scanner, a
    privacy proxy): recorded, but no sign of a person, so it meets no wait or goal."""
    return (event.properties or {}).get("machine") is True


def first_event(
    trigger: am.EventTrigger,
    events: Sequence[SeenEvent],
    *,
    since: datetime,
    until: datetime | None,
    now: datetime,
    message_id: str | None = None,
) -> SeenEvent | None:
    for event in events:
        if event.name != trigger.event or event.occurred_at < since or is_machine(event):
            continue
        if until is not None and event.occurred_at > until:
            continue
        if trigger.where is not None and not matches_properties(
            trigger.where, event.properties, now
        ):
            continue
        if message_id is not None and str(event.properties.get("message_id")) != message_id:
            continue
        return event
    return None


def _when(event: SeenEvent) -> str:
    return event.occurred_at.isoformat()


# --- goals and exit criteria ---


def criteria_names(journeys: Iterable[am.Journey]) -> set[str]:
    """The event names that reach a goal or an exit of these journeys."""
    names: set[str] = set()
    for journey in journeys:
        for criterion in (journey.goal, *journey.exit_when):
            if criterion is not None and criterion.event is not None:
                names.add(criterion.event.event)
    return names


def apply_criteria(
    batch: Batch, runs: Sequence[Run], events: dict[uuid.UUID, list[SeenEvent]]
) -> None:
    """End the runs that reached their journey's goal (converted) or an exit criterion
    (exited): by these events, then by the goal's and exits' filters (set-based, per
    journey version). The goal is checked first."""
    by_version: dict[tuple[uuid.UUID, int], list[Run]] = defaultdict(list)
    for run in runs:
        published = batch.published(run)
        if published is None or not run.live or batch.detached(run):
            continue
        journey = published.journey
        by_version[(run.journey_id, run.version)].append(run)
        mine = events.get(run.contact_id)
        if not mine:
            continue
        now = batch.now
        goal = journey.goal
        if goal is not None and goal.event is not None:
            met = first_event(goal.event, mine, since=run.started, until=None, now=now)
            if met is not None:
                batch.work += 1
                batch.end(
                    run, RunState.converted, f"reached the goal: {met.name} at {_when(met)}",
                    details={"event": met.name}, event_id=met.id,
                )  # fmt: skip
                continue
        for i, criterion in enumerate(journey.exit_when):
            if criterion.event is None:
                continue
            met = first_event(criterion.event, mine, since=run.started, until=None, now=now)
            if met is not None:
                batch.work += 1
                batch.end(
                    run, RunState.exited, f"exit criterion {i + 1}: {met.name} at {_when(met)}",
                    details={"criterion": i, "event": met.name}, event_id=met.id,
                )  # fmt: skip
                break
    for group in by_version.values():
        published = batch.published(group[0])
        assert published is not None
        journey = published.journey
        # The goal first (index -1), then the exits in order.
        criteria = [(-1, journey.goal)] if journey.goal is not None else []
        criteria += list(enumerate(journey.exit_when))
        filters = [(i, c.filter) for i, c in criteria if c.filter is not None]
        live = [r for r in group if r.live]
        if not filters or not live:
            continue
        matching = batch.evaluate([f for _, f in filters], {r.contact_id for r in live})
        for (index, _), met_by in zip(filters, matching, strict=True):
            for run in [r for r in live if r.live]:
                if run.contact_id not in met_by:
                    continue
                batch.work += 1
                if index < 0:
                    batch.end(run, RunState.converted, "reached the goal: matches its filter")
                else:
                    batch.end(
                        run, RunState.exited, f"exit criterion {index + 1}: matches its filter",
                        details={"criterion": index},
                    )  # fmt: skip


def check_criteria(batch: Batch, runs: Sequence[Run]) -> None:
    """Goals and exits of claimed runs, from the events on the timeline since the
    earliest of their starts, and from the filters."""
    journeys = [p.journey for r in runs if (p := batch.published(r)) is not None]
    names = criteria_names(journeys)
    events: dict[uuid.UUID, list[SeenEvent]] = {}
    if names:
        since = min(run.started for run in runs)
        events = repository.events_of(
            batch.session, {r.contact_id for r in runs}, names, since=since, until=None
        )
    apply_criteria(batch, runs, events)


# --- waits for an event ---


def wait_step(batch: Batch, run: Run) -> tuple[am.Journey, am.WaitForEventStep] | None:
    published = batch.published(run)
    if published is None or run.step_id is None:
        return None
    journey = published.journey
    try:
        step = journey.step(run.step_id)
    except KeyError:
        return None
    return (journey, step) if isinstance(step, am.WaitForEventStep) else None


def awaited_event(
    run: Run, step: am.WaitForEventStep, events: Sequence[SeenEvent], now: datetime
) -> SeenEvent | None:
    """The first event that meets the run's wait (see the module's docstring)."""
    message_id = None
    if step.message_step is not None:
        message_id = run.message_of(step.message_step)
        if message_id is None:
            return None  # that step sent nothing (skipped, no address): nothing to match
    return first_event(
        step.event, events, since=run.waiting_since, until=run.due_at, now=now,
        message_id=message_id,
    )  # fmt: skip


def resume(
    batch: Batch, run: Run, journey: am.Journey, step: am.WaitForEventStep, event: SeenEvent
) -> None:
    target = step.on_event or journey.following(step.id)
    batch.work += 1
    batch.note(
        run, hist.Outcome.resumed, f"{event.name} at {_when(event)} → {target or 'the end'}",
        details={"event": event.name, "next": target}, event_id=event.id,
    )  # fmt: skip
    batch.go(run, journey, step.id, step.on_event)


def time_out(batch: Batch, runs: Sequence[Run]) -> None:
    """Claimed waits whose timeout passed: an event of their window that the consumer
    has not handed on yet still resumes them; the others go to `on_timeout`."""
    waits: list[tuple[Run, tuple[am.Journey, am.WaitForEventStep]]] = []
    for run in runs:
        found = wait_step(batch, run)
        if found is None:
            batch.work += 1
            batch.end(run, RunState.exited, f"the step {run.step_id!r} is not a wait")
        else:
            waits.append((run, found))
    if not waits:
        return
    names = {step.event.event for _, (_, step) in waits}
    since = min(run.waiting_since for run, _ in waits)
    events = repository.events_of(
        batch.session, {run.contact_id for run, _ in waits}, names, since=since, until=batch.now
    )
    for run, (journey, step) in waits:
        met = awaited_event(run, step, events.get(run.contact_id, ()), batch.now)
        if met is not None:
            resume(batch, run, journey, step, met)
            continue
        target = step.on_timeout or journey.following(step.id)
        batch.work += 1
        batch.note(
            run, hist.Outcome.timed_out,
            f"no {step.event.event} within {format_duration(step.timeout)} → "
            f"{target or 'the end'}", details={"next": target},
        )  # fmt: skip
        batch.go(run, journey, step.id, step.on_timeout)


# --- the consumer's entry point ---


def on_events(
    engine: JourneyEngine,
    session: Session,
    definitions: Definitions,
    events: Sequence[Event],
    *,
    now: datetime,
) -> int:
    """Goals, exits and waits of the live runs of the events' contacts; returns the runs
    changed."""
    by_contact = seen_events(events)
    if not by_contact:
        return 0
    runs = repository.live_runs(session, list(by_contact))
    if not runs:
        return 0
    batch = Batch(engine, session, definitions, now, runs)
    apply_criteria(batch, runs, by_contact)
    for run in runs:
        if run.state != RunState.waiting or batch.detached(run):
            continue
        found = wait_step(batch, run)
        if found is None:
            continue
        journey, step = found
        met = awaited_event(run, step, by_contact.get(run.contact_id, ()), now)
        if met is not None:
            resume(batch, run, journey, step, met)
    return len(batch.finish())
