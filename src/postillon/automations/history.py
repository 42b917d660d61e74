"""The record of every rule firing and journey step, per contact: what `explain` shows.

Everything the engine decides about a contact is written here, in the same transaction
as the decision, with the reason in words ("held: 2 marketing emails today, the cap is
2"; "branch 'opened?' → tips: opened mail 1"). One insert per batch.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy.orm import Session

from postillon.automations import repository
from postillon.kit.ids import new_ordered_ids


class Outcome(StrEnum):
    # Rules.
    fired = "fired"
    not_matched = "not_matched"  # the trigger came, the conditions did not hold
    skipped = "skipped"  # once per contact, cooldown, a cap, no address …
    failed = "failed"
    # Journeys.
    entered = "entered"
    refused = "refused"  # the entry policy, cooldown or conditions kept them out
    queued = "queued"  # an exclusive journey waits for the current one
    taken_over = "taken_over"
    sent = "sent"
    held = "held"  # a cap or quiet hours moved the step later
    waited = "waited"
    resumed = "resumed"
    timed_out = "timed_out"
    branched = "branched"
    variant = "variant"  # a split sent the run down a variant (or the control group)
    updated = "updated"
    moved = "moved"
    completed = "completed"
    converted = "converted"
    exited = "exited"
    paused = "paused"


@dataclass(slots=True)
class Entry:
    contact_id: uuid.UUID
    automation_id: uuid.UUID
    version: int
    outcome: Outcome
    reason: str
    at: datetime
    run_id: uuid.UUID | None = None
    step_id: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    event_id: int | None = None


def record(session: Session, entries: Sequence[Entry]) -> None:
    """Append history entries in one insert, in the caller's transaction. Their ids
    grow in the order given, so entries of one moment read back in the order written."""
    ids = new_ordered_ids(len(entries))
    repository.insert_history(
        session,
        [
            {
                "id": id_,
                "contact_id": e.contact_id,
                "automation_id": e.automation_id,
                "version": e.version,
                "run_id": e.run_id,
                "step_id": e.step_id,
                "at": e.at,
                "outcome": str(e.outcome),
                "reason": e.reason,
                "details": e.details,
                "event_id": e.event_id,
            }
            for id_, e in zip(ids, entries, strict=True)
        ],
    )
