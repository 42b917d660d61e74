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
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from postillon.automations.definitions import Definitions, Published
from postillon.models import Event

if TYPE_CHECKING:
    from postillon.automations.actions import ActionRunner
    from postillon.automations.collision import SendGate
    from postillon.clock import Clock
    from postillon.filters.service import FilterService
    from postillon.messages.service import MessageService
    from postillon.settings import Settings


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


class JourneyEngine:
    def __init__(
        self,
        settings: Settings,
        clock: Clock,
        filters: FilterService,
        messages: MessageService,
        actions: ActionRunner,
        send_gate: SendGate,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.filters = filters
        self.messages = messages
        self.actions = actions
        self.send_gate = send_gate

    def enter(
        self,
        session: Session,
        definitions: Definitions,
        journey: Published,
        entrants: Sequence[Entrant],
        *,
        now: datetime,
    ) -> EntryResult:
        raise NotImplementedError

    def remove(
        self,
        session: Session,
        journey: Published,
        contact_ids: Sequence[uuid.UUID],
        *,
        now: datetime,
        reason: str,
    ) -> int:
        raise NotImplementedError

    def on_events(
        self, session: Session, definitions: Definitions, events: Sequence[Event], *, now: datetime
    ) -> int:
        raise NotImplementedError

    def run_due(
        self, session: Session, definitions: Definitions, *, now: datetime, limit: int
    ) -> int:
        """Execute due steps of up to `limit` runs; returns the steps executed."""
        raise NotImplementedError
