"""The journey engine's entry points (what rules, the event consumer, the date and
schedule triggers and the worker call).

- `enter`: contacts enter a journey (trigger, rule action, date or schedule, a move
  from another journey, the API), under its entry policy, cooldown, entry key,
  conditions and exclusivity; each entrant's first step is due at once.
- `remove`: end runs as `exited` (a rule's "remove from journey").
- `on_events`: stored events resume runs waiting for them, and end runs whose goal
  (converted) or exit criterion (exited) they meet.
- `run_due`: claim a batch of runs whose step is due (`FOR UPDATE SKIP LOCKED` on
  PostgreSQL) and execute the steps as sets, until each run waits or ends.
- `entrants_for`: the entrants stored events make for a journey (the consumer's loop).

The work is done by `entry` (entering, exclusivity, queued runs), `executor` and `steps`
(due steps), `events` (waits, goals, exits) over the runs of `repository`; ARCHITECTURE.md
("How a journey runs") tells the whole story.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from postillon.automations import history as hist
from postillon.automations.definitions import Definitions, DefinitionStore, Published
from postillon.automations.journeys import events as journey_events
from postillon.automations.journeys import executor, repository
from postillon.automations.journeys.batch import Batch
from postillon.automations.journeys.entry import Entrant, EntryResult, enter_journey
from postillon.automations.journeys.entry import entrants_for as _entrants_for
from postillon.automations.journeys.runs import RunState
from postillon.models import Event

if TYPE_CHECKING:
    from postillon.automations.actions import ActionRunner
    from postillon.automations.collision import SendGate
    from postillon.clock import Clock
    from postillon.filters.service import FilterService
    from postillon.messages.service import MessageService
    from postillon.settings import Settings

__all__ = ["Entrant", "EntryResult", "JourneyEngine"]


class JourneyEngine:
    def __init__(
        self,
        settings: Settings,
        clock: Clock,
        filters: FilterService,
        messages: MessageService,
        actions: ActionRunner,
        send_gate: SendGate,
        *,
        definitions: DefinitionStore | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.filters = filters
        self.messages = messages
        self.actions = actions
        self.send_gate = send_gate
        # What `remove` loads when its caller (an action) has no definitions at hand.
        self.definition_store = definitions or DefinitionStore()

    def enter(
        self,
        session: Session,
        definitions: Definitions,
        journey: Published,
        entrants: Sequence[Entrant],
        *,
        now: datetime,
    ) -> EntryResult:
        """Let contacts into a journey under its status, entry conditions, entry policy,
        cooldown, entry key and exclusivity; entered runs are due at once."""
        return enter_journey(session, self.filters, definitions, journey, entrants, now=now)

    def entrants_for(
        self, journey: Published, events: Sequence[Event], *, now: datetime
    ) -> list[Entrant]:
        """The entrants these stored events make for a journey with an event trigger."""
        return _entrants_for(journey, events, now=now)

    def remove(
        self,
        session: Session,
        journey: Published,
        contact_ids: Sequence[uuid.UUID],
        *,
        now: datetime,
        reason: str,
        definitions: Definitions | None = None,
    ) -> int:
        """End the contacts' runs of this journey that have not ended (`exited`, with the
        reason); returns how many. A contact freed from an exclusive journey starts its
        next queued one (`definitions` are loaded when not given)."""
        runs = repository.live_runs(
            session, list(dict.fromkeys(contact_ids)), journey_id=journey.id
        )
        if not runs:
            return 0
        if definitions is None:
            definitions = self.definition_store.load(session)
        batch = Batch(self, session, definitions, now, runs)
        for run in runs:
            batch.end(run, RunState.exited, reason, outcome=hist.Outcome.exited)
        batch.finish()
        return len(runs)

    def on_events(
        self, session: Session, definitions: Definitions, events: Sequence[Event], *, now: datetime
    ) -> int:
        """Stored events resume the runs waiting for them and end the runs whose goal
        (converted) or exit criterion (exited) they meet; returns the runs changed."""
        return journey_events.on_events(self, session, definitions, events, now=now)

    def run_due(
        self, session: Session, definitions: Definitions, *, now: datetime, limit: int
    ) -> int:
        """Execute due steps of up to `limit` runs; returns the steps executed."""
        return executor.run_due(self, session, definitions, now=now, limit=limit)
