"""The lifecycle pipeline (its ordered stages live in `lifecycle_stages`) and moving
contacts through it."""

from __future__ import annotations

import re
import uuid
from collections.abc import Collection, Sequence
from datetime import datetime

from sqlalchemy.orm import Session

from postillon.clock import Clock
from postillon.errors import Conflict, FieldProblem, InvalidInput, NotFound
from postillon.kit.pagination import Page, decode_cursor, encode_cursor
from postillon.lifecycle import repository
from postillon.lifecycle.history import (
    StageMove,
    pipeline_positions,
    record_stage_changes,
    unknown_stage,
)
from postillon.lifecycle.schemas import PipelineOut, StageIn, StageOut
from postillon.models import StageChange
from postillon.segments.refresh_queue import queue_contacts

_KEY = re.compile(r"[a-z0-9_-]+")
_KEY_LENGTH = 50
_NAME_LENGTH = 100
_SOURCE_LENGTH = 100


def normalise_stage(raw: str | None) -> str | None:
    """How contacts' stage input is read: blank is no stage, case does not matter."""
    if raw is None or not raw.strip():
        return None
    return raw.strip().lower()


class LifecycleService:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock

    def pipeline(self, session: Session) -> PipelineOut:
        """The stages in order, with how many contacts are in each."""
        counts = repository.contact_counts(session)
        return PipelineOut(
            stages=[
                StageOut(
                    key=stage.key,
                    name=stage.name,
                    position=stage.position,
                    contacts=counts.get(stage.key, 0),
                )
                for stage in repository.pipeline(session)
            ]
        )

    def replace_pipeline(self, session: Session, stages: Sequence[StageIn]) -> PipelineOut:
        """Make `stages` the pipeline, in this order. A stage that contacts are in cannot
        be left out (409, naming it); contacts whose stage moved place are queued for a
        segment refresh (filters may compare stages by their order)."""
        rows = _check_pipeline(stages)
        repository.lock_pipeline_for_replace(session)
        old = pipeline_positions(session)
        new = {row["key"]: row["position"] for row in rows}
        removed = set(old) - set(new)
        occupied = repository.contact_counts(session, removed)
        if occupied:
            problems = [
                FieldProblem(
                    "stages",
                    f"stage {key!r} still has {count} contact(s); move them to another "
                    "stage before removing it",
                )
                for key, count in sorted(occupied.items())
            ]
            raise Conflict(
                f"cannot remove stage(s) {', '.join(repr(k) for k in sorted(occupied))}: "
                "contacts are in them",
                problems,
            )
        repository.replace_pipeline(session, rows)
        moved = [key for key, position in new.items() if key in old and old[key] != position]
        queue_contacts(session, repository.contacts_in_stages(session, moved), now=self.clock.now())
        return self.pipeline(session)

    def change_stage(
        self,
        session: Session,
        contact_ids: Collection[uuid.UUID],
        stage: str | None,
        source: str,
    ) -> list[StageMove]:
        """Put many contacts in `stage` (a key; None takes them out of the pipeline),
        in a fixed number of statements. Contacts that do not exist are skipped; those
        already in the stage are left alone. Returns the moves made."""
        stage, positions = self._check_stage(session, stage, "stage")
        if not source.strip() or len(source) > _SOURCE_LENGTH:
            raise InvalidInput.at("source", f"give 1 to {_SOURCE_LENGTH} characters")
        current = repository.stages_of(session, contact_ids, lock=True)
        moves = [
            StageMove(contact_id, from_stage, stage)
            for contact_id, from_stage in current.items()
            if from_stage != stage
        ]
        now = self.clock.now()
        repository.set_stage(session, [m.contact_id for m in moves], stage, now)
        record_stage_changes(session, moves, positions=positions, source=source, now=now)
        return moves

    def set_contact_stage(
        self, session: Session, contact_id: uuid.UUID, stage: str | None, source: str
    ) -> StageMove | None:
        """One contact's stage (404 if there is no such contact); the move, if any."""
        moves = self.change_stage(session, [contact_id], stage, source)
        if not moves and not repository.stages_of(session, [contact_id]):
            raise NotFound(f"no contact with id {contact_id}")
        return moves[0] if moves else None

    def history(
        self, session: Session, contact_id: uuid.UUID, *, cursor: str | None, limit: int
    ) -> Page[StageChange]:
        """A contact's stage changes, newest first (404 if there is no such contact)."""
        if not repository.stages_of(session, [contact_id]):
            raise NotFound(f"no contact with id {contact_id}")
        before: tuple[datetime, int] | None = None
        if cursor:
            values = decode_cursor(cursor)
            try:
                before = (datetime.fromisoformat(str(values[0])), int(values[1]))
                if not 0 <= before[1] < 2**63:
                    raise ValueError("not an id")
            except (IndexError, ValueError):
                raise InvalidInput.at("cursor", "not a cursor returned by this API") from None
        changes = repository.history_page(session, contact_id, before=before, limit=limit + 1)
        next_cursor = None
        if len(changes) > limit:
            changes = changes[:limit]
            next_cursor = encode_cursor(changes[-1].changed_at.isoformat(), changes[-1].id)
        return Page(changes, next_cursor)

    def _check_stage(
        self, session: Session, raw: str | None, location: str
    ) -> tuple[str | None, dict[str, int]]:
        stage = normalise_stage(raw)
        positions = pipeline_positions(session, lock=True)
        if stage is not None and stage not in positions:
            raise InvalidInput.at(location, unknown_stage(stage, positions))
        return stage, positions


def _check_pipeline(stages: Sequence[StageIn]) -> list[dict[str, object]]:
    """Rows for `lifecycle_stages`, or every problem with its location."""
    problems: list[FieldProblem] = []
    rows: list[dict[str, object]] = []
    seen: set[str] = set()
    if not stages:
        problems.append(FieldProblem("stages", "give at least one stage"))
    for index, stage in enumerate(stages):
        key, name = stage.key.strip(), stage.name.strip()
        if not _KEY.fullmatch(key) or len(key) > _KEY_LENGTH:
            problems.append(
                FieldProblem(
                    f"stages[{index}].key",
                    f"use 1 to {_KEY_LENGTH} lowercase letters, digits, - and _",
                )
            )
        elif key in seen:
            problems.append(FieldProblem(f"stages[{index}].key", f"{key!r} is given twice"))
        seen.add(key)
        if not name or len(name) > _NAME_LENGTH:
            problems.append(
                FieldProblem(f"stages[{index}].name", f"give 1 to {_NAME_LENGTH} characters")
            )
        rows.append({"key": key, "name": name, "position": len(rows)})
    if problems:
        raise InvalidInput.of(problems)
    return rows
