"""The queries of the filter language: its catalog, and facts for the Python evaluator."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from postillon.kit.repository import chunked, one_of, row_dicts
from postillon.models import (
    ContactScore,
    ContactTrait,
    Event,
    LifecycleStage,
    ScoreModel,
    Segment,
    SegmentMembership,
)


def stage_keys(session: Session) -> tuple[str, ...]:
    return tuple(session.scalars(select(LifecycleStage.key).order_by(LifecycleStage.position)))


def score_model_ids(session: Session) -> dict[str, uuid.UUID]:
    return {key: id_ for key, id_ in session.execute(select(ScoreModel.key, ScoreModel.id))}


def segment_ids(session: Session) -> dict[str, uuid.UUID]:
    return {key: id_ for key, id_ in session.execute(select(Segment.key, Segment.id))}


def model_scores(
    session: Session, ids: Sequence[uuid.UUID]
) -> Iterator[tuple[uuid.UUID, str, int]]:
    for part in chunked(ids):
        yield from session.execute(
            select(ContactScore.contact_id, ScoreModel.key, ContactScore.score)
            .join(ScoreModel, ScoreModel.id == ContactScore.model_id)
            .where(one_of(session, ContactScore.contact_id, part))
        ).all()


def current_segments(session: Session, ids: Sequence[uuid.UUID]) -> Iterator[tuple[uuid.UUID, str]]:
    for part in chunked(ids):
        yield from session.execute(
            select(SegmentMembership.contact_id, Segment.key)
            .join(Segment, Segment.id == SegmentMembership.segment_id)
            .where(
                one_of(session, SegmentMembership.contact_id, part),
                SegmentMembership.exited_at.is_(None),
            )
        ).all()


def traits_of(session: Session, ids: Sequence[uuid.UUID]) -> Iterator[dict[str, Any]]:
    table = ContactTrait.__table__
    for part in chunked(ids):
        yield from row_dicts(
            session.execute(select(table).where(one_of(session, table.c.contact_id, part)))
        )


def events_named(
    session: Session, ids: Sequence[uuid.UUID], names: Sequence[str]
) -> Iterator[tuple[uuid.UUID, str, datetime, dict[str, Any]]]:
    for part in chunked(ids):
        yield from session.execute(
            select(Event.contact_id, Event.name, Event.occurred_at, Event.properties)
            .where(one_of(session, Event.contact_id, part), Event.name.in_(names))
            .order_by(Event.contact_id, Event.occurred_at, Event.id)
        ).all()
