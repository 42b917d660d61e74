"""Every query about the lifecycle pipeline and contacts' stage history."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.orm import Session

from postillon.kit.ids import sorted_ids
from postillon.kit.repository import chunked, insert_rows, one_of
from postillon.models import Contact, LifecycleStage, StageChange


def pipeline(session: Session, *, lock: bool = False) -> list[LifecycleStage]:
    """The stages in pipeline order. `lock` keeps them from being replaced until the
    transaction ends (PostgreSQL; SQLite's write lock does that already): a contact's
    stage is checked against them and then written."""
    query = select(LifecycleStage).order_by(LifecycleStage.position)
    if lock:
        query = query.with_for_update(read=True)
    return list(session.scalars(query))


def lock_pipeline_for_replace(session: Session) -> None:
    """Wait for the writers that checked a stage against the pipeline, then keep new ones
    waiting until this transaction ends."""
    session.execute(select(LifecycleStage.key).with_for_update())


def replace_pipeline(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Rows of `{"key", "name", "position"}` become the whole pipeline."""
    session.execute(delete(LifecycleStage))
    insert_rows(session, LifecycleStage, rows)


def contact_counts(session: Session, keys: Collection[str] | None = None) -> dict[str, int]:
    """How many contacts are in each stage (of `keys`, or of any stage)."""
    query = (
        select(Contact.lifecycle_stage, func.count())
        .where(Contact.lifecycle_stage.is_not(None))
        .group_by(Contact.lifecycle_stage)
    )
    if keys is not None:
        if not keys:
            return {}
        query = query.where(Contact.lifecycle_stage.in_(sorted(keys)))
    return {str(stage): int(count) for stage, count in session.execute(query)}


def contacts_in_stages(session: Session, keys: Collection[str]) -> list[uuid.UUID]:
    if not keys:
        return []
    query = select(Contact.id).where(Contact.lifecycle_stage.in_(sorted(keys)))
    return list(session.scalars(query))


def stages_of(
    session: Session, contact_ids: Collection[uuid.UUID], *, lock: bool = False
) -> dict[uuid.UUID, str | None]:
    """contact id → its stage, for the contacts that exist; `lock` holds the rows (in id
    order, so that two such callers cannot deadlock) until the transaction ends."""
    found: dict[uuid.UUID, str | None] = {}
    for part in chunked(sorted(set(contact_ids))):
        query = (
            select(Contact.id, Contact.lifecycle_stage)
            .where(one_of(session, Contact.id, part))
            .order_by(Contact.id)
        )
        if lock:
            query = query.with_for_update()
        found.update({id_: stage for id_, stage in session.execute(query)})
    return found


def set_stage(
    session: Session, contact_ids: Sequence[uuid.UUID], stage: str | None, now: datetime
) -> None:
    for part in chunked(sorted_ids(contact_ids)):
        session.execute(
            update(Contact)
            .where(one_of(session, Contact.id, part))
            .values(lifecycle_stage=stage, updated_at=now)
        )


def insert_changes(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Rows of `{"contact_id", "from_stage", "to_stage", "source", "changed_at"}`."""
    insert_rows(session, StageChange, rows)


def history_page(
    session: Session,
    contact_id: uuid.UUID,
    *,
    before: tuple[datetime, int] | None,
    limit: int,
) -> list[StageChange]:
    """A contact's stage changes, newest first, older than `before` (time, id)."""
    query = (
        select(StageChange)
        .where(StageChange.contact_id == contact_id)
        .order_by(StageChange.changed_at.desc(), StageChange.id.desc())
        .limit(limit)
    )
    if before is not None:
        changed_at, change_id = before
        query = query.where(
            or_(
                StageChange.changed_at < changed_at,
                and_(StageChange.changed_at == changed_at, StageChange.id < change_id),
            )
        )
    return list(session.scalars(query))


def move_history(session: Session, *, source: uuid.UUID, target: uuid.UUID) -> None:
    """A merged contact's stage history becomes the survivor's."""
    session.execute(
        update(StageChange).where(StageChange.contact_id == source).values(contact_id=target)
    )
