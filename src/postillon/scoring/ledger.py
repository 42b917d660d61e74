"""Applying score changes, in sets: the one way a score moves.

Scores are changed relatively (`score = score + delta`), so a concurrent writer's change is
never lost; the values are then read back to write each change's history row with the score
it led to, and to see which thresholds were crossed upwards (each announced once per call,
as a `score_reached` event on the contact's timeline). Changed contacts are queued for
segment re-evaluation in the same transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy.orm import Session

from postillon.events.service import InternalEvent, record_internal
from postillon.models import ScoreModel
from postillon.scoring import repository
from postillon.segments.refresh_queue import queue_contacts

MAIN_MODEL = "main"
SCORE_REACHED = "score_reached"


class Reason(StrEnum):
    """Why a score changed (`score_changes.reason`)."""

    rule = "rule"
    decay = "decay"
    api = "api"
    merge = "merge"
    # A rule's or journey's action; the note is the action's key (one change per key).
    automation = "automation"


@dataclass(frozen=True)
class Change:
    contact_id: uuid.UUID
    model: ScoreModel
    delta: int
    reason: Reason
    rule_id: uuid.UUID | None = None
    event_id: int | None = None
    note: str | None = None
    # Whether crossing a threshold emits `score_reached` (not for changes that a
    # `score_reached` event caused: rules on it could otherwise feed one another forever).
    announce: bool = True


@dataclass(frozen=True)
class Applied:
    """What `apply_changes` did: the scores after it, per (model key, contact id), and
    the thresholds crossed upwards as (contact id, model key, threshold, score)."""

    scores: dict[tuple[str, uuid.UUID], int]
    reached: list[tuple[uuid.UUID, str, int, int]]


def apply_changes(session: Session, changes: Sequence[Change], *, now: datetime) -> Applied:
    """Apply `changes` in order; changes of contacts that no longer exist are dropped."""
    changes = [c for c in changes if c.delta != 0]
    if not changes:
        return Applied({}, [])
    existing = repository.existing_contacts(session, {c.contact_id for c in changes})
    changes = [c for c in changes if c.contact_id in existing]
    totals: dict[tuple[uuid.UUID, uuid.UUID], int] = {}
    models: dict[uuid.UUID, ScoreModel] = {}
    for change in changes:
        pair = (change.model.id, change.contact_id)
        totals[pair] = totals.get(pair, 0) + change.delta
        models[change.model.id] = change.model
    main = {cid: d for (mid, cid), d in totals.items() if models[mid].key == MAIN_MODEL}
    named = {pair: d for pair, d in totals.items() if models[pair[0]].key != MAIN_MODEL}
    repository.add_to_main_scores(session, main)
    repository.add_to_model_scores(session, named)

    finals = repository.model_scores(session, {mid for mid, _ in named}, {cid for _, cid in named})
    main_id = next((m.id for m in models.values() if m.key == MAIN_MODEL), None)
    if main_id is not None:
        finals.update(
            {(main_id, cid): s for cid, s in repository.main_scores(session, main.keys()).items()}
        )
    # Walk the changes in order from the score each pair had before them.
    running = {pair: finals[pair] - total for pair, total in totals.items() if pair in finals}
    history: list[dict[str, Any]] = []
    reached: list[tuple[uuid.UUID, str, int, int]] = []
    announced: set[tuple[uuid.UUID, uuid.UUID, int]] = set()
    for change in changes:
        pair = (change.model.id, change.contact_id)
        if pair not in running:
            continue  # deleted meanwhile
        before = running[pair]
        after = running[pair] = before + change.delta
        history.append(
            {
                "contact_id": change.contact_id,
                "model_id": change.model.id,
                "delta": change.delta,
                "score": after,
                "reason": change.reason.value,
                "note": change.note,
                "rule_id": change.rule_id,
                "event_id": change.event_id,
                "changed_at": now,
            }
        )
        if not change.announce:
            continue
        for threshold in change.model.thresholds or ():
            key = (change.contact_id, change.model.id, threshold)
            if before < threshold <= after and key not in announced:
                announced.add(key)
                reached.append((change.contact_id, change.model.key, threshold, after))
    repository.insert_changes(session, history)
    record_internal(
        session,
        [
            InternalEvent(
                contact_id=contact_id,
                name=SCORE_REACHED,
                properties={"model": model_key, "threshold": threshold, "score": score},
            )
            for contact_id, model_key, threshold, score in reached
        ],
        now=now,
    )
    queue_contacts(session, {row["contact_id"] for row in history}, now=now)
    return Applied(
        {(models[mid].key, cid): score for (mid, cid), score in running.items()}, reached
    )
