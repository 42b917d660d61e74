"""The `automations` event-queue consumer: stored events start rules and journeys.

For a batch of stored events with a contact (anonymous ones are left out), in the
queue's transaction:

1. rules: `RuleEngine.on_events` fires the active rules whose trigger the events are;
2. journeys: for each event name, the active journeys it can start get one `Entrant` per
   event whose properties pass the trigger's filter, keyed by the journey's entry-key
   property (per contact) or else the event's message id, so the same event never
   starts a journey twice; the engine applies the entry policy;
3. `JourneyEngine.on_events` resumes runs waiting for these events and ends runs whose
   goal or exit criterion they are.

Events an automation caused carry its key in `properties.automation_chain` (see
`events.service.caused_by`): a journey is not entered by events its own entry or steps
caused, as a rule does not fire on its own (`rules.py`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from postillon.automations.definitions import Definitions, Published
from postillon.automations.journeys.engine import Entrant
from postillon.automations.rules import MAX_CHAIN, event_payload
from postillon.events.service import cause_chain, caused_by
from postillon.filters.evaluate import matches_properties
from postillon.models import Event

if TYPE_CHECKING:
    from postillon.runtime import Runtime

# `journey_runs.entry_key` holds at most 300 characters.
_KEY_VALUE_LENGTH = 200


class AutomationsConsumer:
    name = "automations"

    def handle_with(
        self, runtime: Runtime, session: Session, events: Sequence[Event], now: datetime
    ) -> None:
        known = sorted((e for e in events if e.contact_id is not None), key=lambda e: e.id)
        if not known:
            return
        definitions = runtime.definitions.load(session)
        if not definitions.current:
            return
        runtime.rules.on_events(session, definitions, known, now=now)
        enter_journeys(runtime, session, definitions, known, now=now)
        if definitions.journeys():
            runtime.journeys.on_events(session, definitions, known, now=now)


def enter_journeys(
    runtime: Runtime,
    session: Session,
    definitions: Definitions,
    events: Sequence[Event],
    *,
    now: datetime,
) -> int:
    """Enter the contacts of these events into the journeys they trigger; returns how
    many entrants were handed to the engine."""
    by_name: dict[str, list[Event]] = {}
    for event in events:
        by_name.setdefault(event.name, []).append(event)
    handed = 0
    for name, named in by_name.items():
        for journey in definitions.journeys_for(name):
            # What the entry causes (`journey_entered` …) carries the journey after the
            # chain of the event: rules reacting to it cannot start this journey again.
            groups: dict[tuple[str, ...], list[Entrant]] = {}
            for entrant in journey_entrants(journey, named, now=now):
                properties = (entrant.event or {}).get("properties")
                groups.setdefault(cause_chain(properties), []).append(entrant)
            for chain, entrants in groups.items():
                with caused_by(session, (*chain, journey.key)):
                    runtime.journeys.enter(session, definitions, journey, entrants, now=now)
                handed += len(entrants)
    return handed


def journey_entrants(
    journey: Published, events: Sequence[Event], *, now: datetime
) -> list[Entrant]:
    """The entrants these events make for a journey with an event trigger."""
    tree = journey.journey
    trigger = tree.trigger
    where = getattr(trigger, "where", None)
    entrants: list[Entrant] = []
    for event in events:
        if event.contact_id is None:
            continue
        properties = event.properties or {}
        chain = cause_chain(properties)
        if journey.key in chain or len(chain) >= MAX_CHAIN:
            continue
        if where is not None and not matches_properties(where, properties, now):
            continue
        entrants.append(
            Entrant(
                contact_id=event.contact_id,
                entry_key=entry_key(tree.entry.key, event),
                source="event",
                event=event_payload(event),
            )
        )
    return entrants


def entry_key(path: tuple[str, ...] | None, event: Event) -> str:
    """The event property at `path`, for this contact; else the event's message id."""
    if path is not None:
        value: Any = event.properties or {}
        for part in path:
            value = value.get(part) if isinstance(value, dict) else None
        if isinstance(value, str | int | float) and not isinstance(value, bool) and value != "":
            return f"{event.contact_id}:{str(value)[:_KEY_VALUE_LENGTH]}"
    return event.message_id
