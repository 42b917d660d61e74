"""A journey run as the engine holds it in memory while deciding about it.

Runs are read in batches (`repository`), changed in Python by the steps, and written back
with one executemany per batch. `context` is the run's JSON memory: the triggering event
(`event`), when goals start counting (`started`), the message each send step made
(`messages`: step id → message id), the split variants taken (`variants`: step id → name,
and `variant`, the last one, which messages carry), and when a wait for an event began
(`waiting_since`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from postillon.clock import ensure_utc
from postillon.models.automation import RUNNING_CONDITION


class RunState(StrEnum):
    active = "active"  # its step `step_id` is due at `due_at`
    waiting = "waiting"  # for the event `wait_event`, until `due_at` (the timeout)
    queued = "queued"  # an exclusive journey waiting for the contact's current one
    completed = "completed"  # went through its steps (after the last, or an exit step)
    converted = "converted"  # reached the journey's goal
    exited = "exited"  # an exit criterion, a cap, a removal, a take-over
    moved = "moved"  # to another journey
    control = "control"  # the control group of a split


LIVE: tuple[str, ...] = (RunState.active, RunState.waiting, RunState.queued)
# The states that hold a contact's place in an exclusive journey.
RUNNING: tuple[str, ...] = (RunState.active, RunState.waiting)
assert RUNNING_CONDITION.endswith(f"IN ({', '.join(repr(str(s)) for s in RUNNING)})")

# The columns a batch writes back (with `id`).
WRITTEN = (
    "state",
    "step_id",
    "due_at",
    "wait_event",
    "context",
    "ended_at",
    "end_reason",
    "steps_done",
)


CONTEXT_POSITION = 10  # the position of `context` among the fields


@dataclass(eq=False)
class Run:
    id: uuid.UUID
    journey_id: uuid.UUID
    version: int
    contact_id: uuid.UUID
    state: str
    step_id: str | None
    due_at: datetime | None
    wait_event: str | None
    entry_key: str
    source: str
    context: dict[str, Any]
    priority: int | None
    entered_at: datetime
    ended_at: datetime | None
    end_reason: str | None
    steps_done: int

    @classmethod
    def from_row(cls, row: Any) -> Run:
        """A run from a row of every `journey_runs` column in table order (which is the
        order of this class's fields; `repository` checks it)."""
        values = list(row)
        values[CONTEXT_POSITION] = dict(values[CONTEXT_POSITION] or {})
        return cls(*values)

    def written(self) -> dict[str, Any]:
        """The row a batch writes back."""
        return {
            "id": self.id,
            "state": self.state,
            "step_id": self.step_id,
            "due_at": self.due_at,
            "wait_event": self.wait_event,
            "context": self.context,
            "ended_at": self.ended_at,
            "end_reason": self.end_reason,
            "steps_done": self.steps_done,
        }

    @property
    def live(self) -> bool:
        return self.state in LIVE

    @property
    def event(self) -> dict[str, Any] | None:
        event = self.context.get("event")
        return event if isinstance(event, dict) else None

    @property
    def event_properties(self) -> dict[str, Any]:
        properties = (self.event or {}).get("properties")
        return properties if isinstance(properties, dict) else {}

    @property
    def started(self) -> datetime:
        """From when goal and exit events count: the triggering event's time (events
        that happened before it do not end the run), else the entry."""
        return _moment(self.context.get("started")) or self.entered_at

    @property
    def waiting_since(self) -> datetime:
        return _moment(self.context.get("waiting_since")) or self.entered_at

    def message_of(self, step_id: str) -> str | None:
        messages = self.context.get("messages")
        found = messages.get(step_id) if isinstance(messages, dict) else None
        return found if isinstance(found, str) else None

    def remember(self, section: str, step_id: str, value: str) -> None:
        """Set context[section][step_id] (a new dict: the row is written as a whole)."""
        current = self.context.get(section)
        self.context = {
            **self.context,
            section: {**(current if isinstance(current, dict) else {}), step_id: value},
        }

    def set_context(self, key: str, value: Any) -> None:
        self.context = {**self.context, key: value}


def _moment(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return ensure_utc(datetime.fromisoformat(value))
    except ValueError:
        return None
