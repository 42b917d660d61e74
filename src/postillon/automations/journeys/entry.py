"""Contacts entering journeys: the journey's status, entry conditions, entry policy and
cooldown, the entry key, and exclusivity (queued entries and take-overs); and the queued
runs that start when a contact's exclusive journey ends.

Everything is decided for a set of entrants with a fixed number of queries, then the runs
are inserted with one `INSERT … ON CONFLICT DO NOTHING`: a (journey, entry key) that
exists already is skipped, so a replayed event never starts a journey twice, even when
two workers race. Every decision is a history entry; every start is a `journey_entered`
event on the contact's timeline, which rules (and other journeys) can trigger on.
"""

from __future__ import annotations

import dataclasses
import hashlib
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from postillon.automations import history as hist
from postillon.automations import model as am
from postillon.automations.definitions import Definitions, Published, Status
from postillon.automations.journeys import repository
from postillon.automations.journeys.runs import Run, RunState
from postillon.clock import ensure_utc
from postillon.events.service import InternalEvent, record_internal
from postillon.filters.evaluate import matches_properties
from postillon.filters.sql import Catalog
from postillon.kit.ids import new_id

if TYPE_CHECKING:
    from postillon.filters.service import FilterService

JOURNEY_ENTERED = "journey_entered"
_KEY_LENGTH = 300


@dataclass(frozen=True)
class Entrant:
    contact_id: uuid.UUID
    # Unique per journey: the same key never starts the journey twice (the triggering
    # event's entry-key property or message id; "date:<yyyy-mm-dd>", "schedule:<at>" …).
    entry_key: str
    # Who put them in: "event", "rule:<key>", "date", "schedule", "move:<journey>", "api".
    source: str
    # The triggering event: {"id", "name", "message_id", "occurred_at", "properties"}.
    event: dict[str, Any] | None = None


@dataclass(frozen=True)
class EntryResult:
    entered: list[uuid.UUID] = field(default_factory=list)  # run ids
    queued: list[uuid.UUID] = field(default_factory=list)  # run ids (exclusive journeys)
    # contact id → why not (entry policy, cooldown, conditions, duplicate key, paused).
    refused: dict[uuid.UUID, str] = field(default_factory=dict)


def catalog_at(filters: FilterService, session: Session, now: datetime) -> Catalog:
    """The filter catalog with the engine's `now` (relative conditions follow it)."""
    return dataclasses.replace(filters.catalog(session), now=now)


def event_document(event: Any) -> dict[str, Any]:
    """What a run keeps of its triggering event (an `Event` row or a seen event)."""
    occurred = event.occurred_at
    return {
        "id": event.id,
        "name": event.name,
        "message_id": event.message_id,
        "occurred_at": occurred.isoformat() if isinstance(occurred, datetime) else occurred,
        "properties": dict(event.properties or {}),
    }


def entrants_for(journey: Published, events: Sequence[Any], *, now: datetime) -> list[Entrant]:
    """The entrants that stored events make for a journey triggered by an event: events
    of a contact with the trigger's name whose properties pass its `where` (not opens or
    clicks email tracking attributed to machines). The entry key is
    `<contact id>:<value>` of the property at `entry.key` when the journey names one and
    the event has it (the same cart never starts the journey twice for a contact, and one
    contact's cart id cannot keep another out), else the event's message id."""
    trigger = journey.journey.trigger
    if not isinstance(trigger, am.EventTrigger):
        return []
    key_path = journey.journey.entry.key
    found: list[Entrant] = []
    for event in events:
        if event.contact_id is None or event.name != trigger.event:
            continue
        properties = event.properties or {}
        if properties.get("machine") is True:
            continue  # an open or click by a scanner or proxy: no sign of a person
        if trigger.where is not None and not matches_properties(trigger.where, properties, now):
            continue
        key = _property_key(properties, key_path) if key_path else None
        found.append(
            Entrant(
                contact_id=event.contact_id,
                entry_key=(
                    f"{event.contact_id}:{key}" if key is not None else str(event.message_id)
                ),
                source="event",
                event=event_document(event),
            )
        )
    return found


def _property_key(properties: dict[str, Any], path: tuple[str, ...]) -> str | None:
    value: Any = properties
    for part in path:
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    if isinstance(value, bool) or not isinstance(value, str | int | float) or value == "":
        return None
    return str(value)


def _moment(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return ensure_utc(datetime.fromisoformat(value))
    except ValueError:
        return None


def _stored_key(key: str) -> str:
    if len(key) <= _KEY_LENGTH:
        return key
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


@dataclass
class _Planned:
    entrant: Entrant
    run: dict[str, Any]
    taking_over: Run | None = None
    behind: str | None = None  # the journey a queued run waits for


def enter_journey(
    session: Session,
    filters: FilterService,
    definitions: Definitions,
    published: Published,
    entrants: Sequence[Entrant],
    *,
    now: datetime,
) -> EntryResult:
    """Let the entrants in (or queue or refuse them); see the module's docstring."""
    result = EntryResult()
    if not entrants:
        return result
    journey = published.journey
    history: list[hist.Entry] = []

    def refuse(entrant: Entrant, reason: str, **details: Any) -> None:
        result.refused[entrant.contact_id] = reason
        history.append(
            hist.Entry(
                entrant.contact_id, published.id, published.version, hist.Outcome.refused,
                reason, now, details={"entry_key": entrant.entry_key, "source": entrant.source,
                                      **details},
            )
        )  # fmt: skip

    if published.status != Status.active:
        for entrant in entrants:
            refuse(entrant, f"the journey is {published.status}")
        hist.record(session, history)
        return result

    repository.serialize_entry(session, published.id)
    keys = {id(e): _stored_key(e.entry_key) for e in entrants}
    used = repository.used_entry_keys(session, published.id, set(keys.values()))
    contacts = list(dict.fromkeys(e.contact_id for e in entrants))
    catalog = catalog_at(filters, session, now) if journey.conditions is not None else None
    matching = (
        filters.evaluate(session, journey.conditions, contacts, catalog=catalog)
        if journey.conditions is not None
        else set(contacts)
    )
    stats = repository.entry_stats(session, published.id, contacts)
    runs_now = {c: s.runs for c, s in stats.items()}
    live_now = {c: s.live for c, s in stats.items()}
    last_entered = {c: s.last_entered for c, s in stats.items() if s.last_entered is not None}
    exclusive = journey.exclusive
    running: dict[uuid.UUID, Run | _Planned] = {}
    if exclusive is not None:
        repository.serialize_exclusive(session)
        running.update(repository.running_exclusive(session, contacts))
    first_step = journey.steps[0].id
    seen_keys: set[str] = set()
    planned: list[_Planned] = []
    for entrant in entrants:
        contact, key = entrant.contact_id, keys[id(entrant)]
        if key in used or key in seen_keys:
            refuse(entrant, f"the entry key {entrant.entry_key!r} has started this journey before")
            continue
        if contact not in matching:
            refuse(entrant, "does not match the journey's entry conditions")
            continue
        policy = journey.entry.policy
        if policy is am.EntryPolicy.once and runs_now.get(contact, 0):
            refuse(entrant, "entry policy once: the contact was in this journey before")
            continue
        if policy is am.EntryPolicy.once_at_a_time and live_now.get(contact, 0):
            refuse(entrant, "entry policy once at a time: the contact is in this journey now")
            continue
        cooldown = journey.entry.cooldown
        last = last_entered.get(contact)
        if cooldown is not None and last is not None and now < last + cooldown:
            refuse(
                entrant,
                f"cooldown: entered {last.isoformat()}, may enter again from "
                f"{(last + cooldown).isoformat()}",
                again_from=(last + cooldown).isoformat(),
            )
            continue
        seen_keys.add(key)
        runs_now[contact] = runs_now.get(contact, 0) + 1
        live_now[contact] = live_now.get(contact, 0) + 1
        last_entered[contact] = now
        event = entrant.event
        if event is not None and isinstance(event.get("occurred_at"), datetime):
            event = {**event, "occurred_at": event["occurred_at"].isoformat()}
        # Goal and exit events count from the trigger's time (a move starts afresh).
        started = now
        if event is not None and not entrant.source.startswith("move:"):
            started = min(_moment(event.get("occurred_at")) or now, now)
        row: dict[str, Any] = {
            "id": new_id(),
            "journey_id": published.id,
            "version": published.version,
            "contact_id": contact,
            "state": RunState.active,
            "step_id": first_step,
            "due_at": now,
            "wait_event": None,
            "entry_key": key,
            "source": entrant.source[:100],
            "context": {"event": event, "started": started.isoformat(), "messages": {},
                        "variants": {}},
            "priority": exclusive.priority if exclusive is not None else None,
            "entered_at": now,
            "ended_at": None,
            "end_reason": None,
            "steps_done": 0,
        }  # fmt: skip
        plan = _Planned(entrant, row)
        if exclusive is not None:
            current = running.get(contact)
            if current is not None:
                current_priority = (
                    current.priority if isinstance(current, Run) else current.run["priority"]
                )
                if (
                    exclusive.on_busy is am.OnBusy.take_over
                    and isinstance(current, Run)
                    and exclusive.priority > (current_priority or 0)
                ):
                    plan.taking_over = current
                else:
                    row.update(state=RunState.queued, due_at=None)
                    plan.behind = _journey_key(definitions, current)
            if row["state"] == RunState.active:
                running[contact] = plan
        planned.append(plan)

    repository.insert_runs(session, [p.run for p in planned])
    inserted = repository.existing_ids(session, [p.run["id"] for p in planned])
    taken_over: list[Run] = []
    started_runs: list[_Planned] = []
    for plan in planned:
        entrant, row = plan.entrant, plan.run
        if row["id"] not in inserted:
            refuse(entrant, f"the entry key {entrant.entry_key!r} has started this journey before")
            continue
        details = {"entry_key": entrant.entry_key, "source": entrant.source}
        if row["state"] == RunState.queued:
            result.queued.append(row["id"])
            history.append(
                hist.Entry(
                    entrant.contact_id, published.id, published.version, hist.Outcome.queued,
                    f"waits until the contact's exclusive journey {plan.behind} ends", now,
                    run_id=row["id"], step_id=row["step_id"],
                    details={**details, "behind": plan.behind},
                )
            )  # fmt: skip
            continue
        result.entered.append(row["id"])
        started_runs.append(plan)
        reason = f"entered ({entrant.source})"
        if plan.taking_over is not None:
            old = plan.taking_over
            old_key = _journey_key(definitions, old)
            taken_over.append(old)
            reason += f", taking over from {old_key}"
            details["took_over"] = old_key
            old.state, old.ended_at, old.due_at, old.wait_event = (
                RunState.exited, now, None, None
            )  # fmt: skip
            old.end_reason = f"taken over by {journey.key}"
            history.append(
                hist.Entry(
                    old.contact_id, old.journey_id, old.version, hist.Outcome.taken_over,
                    f"taken over by {journey.key} (priority {row['priority']} > {old.priority})",
                    now, run_id=old.id, step_id=old.step_id,
                    details={"by": journey.key, "run": str(row["id"])},
                )
            )  # fmt: skip
        history.append(
            hist.Entry(
                entrant.contact_id, published.id, published.version, hist.Outcome.entered,
                reason, now, run_id=row["id"], step_id=row["step_id"], details=details,
            )
        )  # fmt: skip
    if taken_over:
        repository.update_runs(session, taken_over)
    hist.record(session, history)
    announce_entries(
        session,
        [(journey.key, p.run["id"], p.entrant.contact_id, p.entrant.source) for p in started_runs],
        now=now,
    )
    return result


def announce_entries(
    session: Session,
    entries: Sequence[tuple[str, uuid.UUID, uuid.UUID, str]],
    *,
    now: datetime,
) -> None:
    """`journey_entered` events (journey key, run id, contact, source) on the timelines."""
    record_internal(
        session,
        [
            InternalEvent(
                contact_id=contact,
                name=JOURNEY_ENTERED,
                properties={"journey": key, "run": str(run_id), "source": source},
            )
            for key, run_id, contact, source in entries
        ],
        now=now,
    )


def _journey_key(definitions: Definitions, run: Run | _Planned) -> str:
    journey_id = run.run["journey_id"] if isinstance(run, _Planned) else run.journey_id
    published = definitions.current.get(journey_id)
    return published.key if published is not None else str(journey_id)


def promote_queued(
    session: Session,
    filters: FilterService,
    definitions: Definitions,
    contact_ids: Collection[uuid.UUID],
    *,
    now: datetime,
) -> list[Run]:
    """Contacts whose exclusive journey ended start their next queued run (highest
    priority, then oldest), if its journey's entry conditions still hold for them; runs
    whose conditions no longer hold end as `exited`. Returns the started runs."""
    if not contact_ids:
        return []
    repository.serialize_exclusive(session)
    busy = repository.running_exclusive(session, contact_ids)
    free = [c for c in dict.fromkeys(contact_ids) if c not in busy]
    queued = repository.queued_runs(session, free)
    if not queued:
        return []
    by_version: dict[tuple[uuid.UUID, int], set[uuid.UUID]] = {}
    for runs in queued.values():
        for run in runs:
            by_version.setdefault((run.journey_id, run.version), set()).add(run.contact_id)
    passing: dict[tuple[uuid.UUID, int], set[uuid.UUID]] = {}
    catalog: Catalog | None = None
    for (journey_id, version), contacts in by_version.items():
        tree = definitions.version(session, journey_id, version)
        assert isinstance(tree, am.Journey)
        if tree.conditions is None:
            passing[(journey_id, version)] = contacts
            continue
        catalog = catalog or catalog_at(filters, session, now)
        passing[(journey_id, version)] = filters.evaluate(
            session, tree.conditions, contacts, catalog=catalog
        )
    changed: list[Run] = []
    started: list[Run] = []
    history: list[hist.Entry] = []
    for contact, runs in queued.items():
        for run in runs:
            changed.append(run)
            if contact not in passing[(run.journey_id, run.version)]:
                run.state, run.ended_at, run.due_at = RunState.exited, now, None
                run.end_reason = "the entry conditions no longer held when its turn came"
                history.append(
                    hist.Entry(
                        contact, run.journey_id, run.version, hist.Outcome.exited,
                        run.end_reason, now, run_id=run.id, step_id=run.step_id,
                    )
                )  # fmt: skip
                continue
            run.state, run.due_at = RunState.active, now
            started.append(run)
            history.append(
                hist.Entry(
                    contact, run.journey_id, run.version, hist.Outcome.entered,
                    "started: the contact's exclusive journey before it ended", now,
                    run_id=run.id, step_id=run.step_id, details={"source": run.source},
                )
            )  # fmt: skip
            break
    repository.update_runs(session, changed)
    hist.record(session, history)
    announce_entries(
        session,
        [(_journey_key(definitions, r), r.id, r.contact_id, r.source) for r in started],
        now=now,
    )
    return started
