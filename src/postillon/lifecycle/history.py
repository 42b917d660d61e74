"""Recording stage changes. Whatever moves contacts between stages (the stage API, contact
create/update/upsert/batch/import, merges, later rules) writes the new stage itself and
hands the moves to `record_stage_changes`, in the same transaction: a history row, a
`stage_changed` event on the timeline, and the contact queued for a segment refresh."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy.orm import Session

from postillon.events.service import InternalEvent, record_internal
from postillon.lifecycle import repository
from postillon.segments.refresh_queue import queue_contacts

STAGE_CHANGED = "stage_changed"


class Direction(StrEnum):
    forward = "forward"  # to a later stage of the pipeline, or into it from no stage
    backward = "backward"  # to an earlier stage, or out of the pipeline (no stage)


@dataclass(frozen=True)
class StageMove:
    contact_id: uuid.UUID
    from_stage: str | None
    to_stage: str | None


def pipeline_positions(session: Session, *, lock: bool = False) -> dict[str, int]:
    """stage key → position (0 first). `lock`: see `repository.pipeline`."""
    return {stage.key: stage.position for stage in repository.pipeline(session, lock=lock)}


def unknown_stage(stage: str, positions: Mapping[str, int]) -> str:
    """The message for a stage that is not in the pipeline."""
    return f"unknown stage {stage!r}; stages are {', '.join(positions) or 'none'}"


def direction(
    from_stage: str | None, to_stage: str | None, positions: Mapping[str, int]
) -> Direction:
    """No stage counts as before the first one."""
    before = -1 if from_stage is None else positions.get(from_stage, -1)
    after = -1 if to_stage is None else positions.get(to_stage, -1)
    return Direction.forward if after > before else Direction.backward


def record_stage_changes(
    session: Session,
    moves: Sequence[StageMove],
    *,
    positions: Mapping[str, int],
    source: str,
    now: datetime,
) -> None:
    """History rows, timeline events and refresh-queue rows for `moves` (whose new stage
    the caller has written); a fixed number of statements for any number of moves."""
    moves = [m for m in moves if m.from_stage != m.to_stage]
    if not moves:
        return
    repository.insert_changes(
        session,
        [
            {
                "contact_id": m.contact_id,
                "from_stage": m.from_stage,
                "to_stage": m.to_stage,
                "source": source,
                "changed_at": now,
            }
            for m in moves
        ],
    )
    record_internal(
        session,
        [
            InternalEvent(
                contact_id=m.contact_id,
                name=STAGE_CHANGED,
                properties={
                    "from": m.from_stage,
                    "to": m.to_stage,
                    "source": source,
                    "direction": direction(m.from_stage, m.to_stage, positions).value,
                },
            )
            for m in moves
        ],
        now=now,
    )
    queue_contacts(session, [m.contact_id for m in moves], now=now)
