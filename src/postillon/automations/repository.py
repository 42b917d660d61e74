"""Every query of the automations feature outside the journey runs (`journeys/repository.py`)."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select, tuple_, update
from sqlalchemy.orm import Session

from postillon.kit.repository import chunked, insert_rows, one_of
from postillon.models import (
    AttributeDefinition,
    Automation,
    AutomationHistory,
    AutomationVersion,
    Contact,
    EmailTemplate,
    JourneyRun,
)


def published_signature(session: Session, statuses: Sequence[str]) -> list[Any]:
    """(id, key, published_version, status) of every published automation in `statuses`."""
    return list(
        session.execute(
            select(Automation.id, Automation.key, Automation.published_version, Automation.status)
            .where(Automation.published_version.is_not(None), Automation.status.in_(statuses))
            .order_by(Automation.key)
        ).all()
    )


def version_documents(
    session: Session, keys: Sequence[tuple[uuid.UUID, int]]
) -> dict[tuple[uuid.UUID, int], dict[str, Any]]:
    rows = session.execute(
        select(
            AutomationVersion.automation_id, AutomationVersion.version, AutomationVersion.document
        ).where(tuple_(AutomationVersion.automation_id, AutomationVersion.version).in_(keys))
    ).all()
    return {(r.automation_id, r.version): r.document for r in rows}


def insert_history(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """One executemany straight to the driver (`kit.repository.insert_rows`): a batch of
    journey steps writes thousands of entries."""
    insert_rows(session, AutomationHistory, rows)


# --- automations and versions (the documents the marketer keeps) ---


def automation_by_key(session: Session, key: str, *, for_update: bool = False) -> Automation | None:
    """One automation; `for_update` locks its row (PostgreSQL) while it is published,
    paused or archived, so that two publishes cannot take the same version number."""
    query = select(Automation).where(Automation.key == key)
    if for_update:
        query = query.with_for_update()
    return session.scalar(query)


def add_automation(session: Session, automation: Automation) -> None:
    session.add(automation)
    session.flush()


def automations_page(
    session: Session,
    *,
    kind: str | None,
    status: str | None,
    after_key: str | None,
    limit: int,
) -> list[Automation]:
    """Automations in key order after `after_key`, optionally of one kind and status."""
    query = select(Automation)
    if kind is not None:
        query = query.where(Automation.kind == kind)
    if status is not None:
        query = query.where(Automation.status == status)
    if after_key is not None:
        query = query.where(Automation.key > after_key)
    return list(session.scalars(query.order_by(Automation.key).limit(limit)))


def kinds_and_statuses(session: Session) -> dict[str, tuple[str, str]]:
    """key → (kind, status) of every automation (what documents may name)."""
    rows = session.execute(select(Automation.key, Automation.kind, Automation.status)).all()
    return {r.key: (r.kind, r.status) for r in rows}


def last_version(session: Session, automation_id: uuid.UUID) -> AutomationVersion | None:
    return session.scalar(
        select(AutomationVersion)
        .where(AutomationVersion.automation_id == automation_id)
        .order_by(AutomationVersion.version.desc())
        .limit(1)
    )


def versions_of(session: Session, automation_id: uuid.UUID) -> list[AutomationVersion]:
    """Every published version of an automation, newest first."""
    return list(
        session.scalars(
            select(AutomationVersion)
            .where(AutomationVersion.automation_id == automation_id)
            .order_by(AutomationVersion.version.desc())
        )
    )


def add_version(session: Session, version: AutomationVersion) -> None:
    session.add(version)
    session.flush()


# --- what documents may name ---


def all_template_keys(session: Session) -> list[str]:
    return list(session.scalars(select(EmailTemplate.key).order_by(EmailTemplate.key)))


def attribute_types(session: Session, names: Collection[str]) -> dict[str, str]:
    if not names:
        return {}
    rows = session.execute(
        select(AttributeDefinition.name, AttributeDefinition.type).where(
            one_of(session, AttributeDefinition.name, sorted(names))
        )
    ).all()
    return {r.name: r.type for r in rows}


# --- journey runs, as publishing, archiving and explaining see them ---

OPEN_RUN_STATES = ("active", "waiting", "queued")


def run_counts(
    session: Session, journey_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, dict[str, int]]:
    """journey id → state → number of runs, for the journeys listed (one query)."""
    if not journey_ids:
        return {}
    rows = session.execute(
        select(JourneyRun.journey_id, JourneyRun.state, func.count())
        .where(one_of(session, JourneyRun.journey_id, list(journey_ids)))
        .group_by(JourneyRun.journey_id, JourneyRun.state)
    ).all()
    counts: dict[uuid.UUID, dict[str, int]] = {}
    for journey_id, state, count in rows:
        counts.setdefault(journey_id, {})[state] = int(count)
    return counts


def open_run_contacts(session: Session, journey_id: uuid.UUID) -> list[uuid.UUID]:
    """The contacts with a run of this journey that has not ended."""
    return list(
        session.scalars(
            select(JourneyRun.contact_id)
            .where(JourneyRun.journey_id == journey_id, JourneyRun.state.in_(OPEN_RUN_STATES))
            .distinct()
        )
    )


def open_runs_count(session: Session, journey_id: uuid.UUID) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(JourneyRun)
            .where(JourneyRun.journey_id == journey_id, JourneyRun.state.in_(OPEN_RUN_STATES))
        )
        or 0
    )


def migrate_runs(
    session: Session,
    journey_id: uuid.UUID,
    *,
    to_version: int,
    step_ids: Sequence[str],
) -> list[Any]:
    """Move the active and waiting runs of older versions whose current step exists in
    `to_version` onto it, in one UPDATE; returns (id, contact_id, version, step_id) of
    each as it was."""
    if not step_ids:
        return []
    moved = (
        select(JourneyRun.id, JourneyRun.contact_id, JourneyRun.version, JourneyRun.step_id)
        .where(
            JourneyRun.journey_id == journey_id,
            JourneyRun.version < to_version,
            JourneyRun.state.in_(("active", "waiting")),
            JourneyRun.step_id.in_(list(step_ids)),
        )
        .with_for_update()
    )
    rows = list(session.execute(moved).all())
    for part in chunked([r.id for r in rows]):
        session.execute(
            update(JourneyRun)
            .where(one_of(session, JourneyRun.id, part))
            .values(version=to_version)
            .execution_options(synchronize_session=False)
        )
    return rows


def end_open_runs(
    session: Session, journey_id: uuid.UUID, *, now: datetime, reason: str
) -> list[Any]:
    """End every run of a journey that has not ended as `exited`; returns (id,
    contact_id, version, step_id) of each."""
    ended = (
        select(JourneyRun.id, JourneyRun.contact_id, JourneyRun.version, JourneyRun.step_id)
        .where(JourneyRun.journey_id == journey_id, JourneyRun.state.in_(OPEN_RUN_STATES))
        .with_for_update()
    )
    rows = list(session.execute(ended).all())
    for part in chunked([r.id for r in rows]):
        session.execute(
            update(JourneyRun)
            .where(one_of(session, JourneyRun.id, part))
            .values(
                state="exited",
                ended_at=now,
                end_reason=reason,
                due_at=None,
                wait_event=None,
            )
            .execution_options(synchronize_session=False)
        )
    return rows


def contact_runs(session: Session, contact_id: uuid.UUID, *, limit: int) -> list[Any]:
    """A contact's journey runs with their journey's key and name, newest first."""
    return list(
        session.execute(
            select(JourneyRun, Automation.key, Automation.name)
            .join(Automation, Automation.id == JourneyRun.journey_id)
            .where(JourneyRun.contact_id == contact_id)
            .order_by(JourneyRun.entered_at.desc(), JourneyRun.id.desc())
            .limit(limit)
        ).all()
    )


def history_of_runs(session: Session, run_ids: Sequence[uuid.UUID]) -> list[Any]:
    """The history entries of these runs with their automation's key, name and kind,
    oldest first."""
    rows: list[Any] = []
    for part in chunked(list(run_ids)):
        rows += session.execute(
            select(AutomationHistory, Automation.key, Automation.name, Automation.kind)
            .join(Automation, Automation.id == AutomationHistory.automation_id)
            .where(one_of(session, AutomationHistory.run_id, part))
        ).all()
    rows.sort(key=lambda r: (r.AutomationHistory.at, r.AutomationHistory.id))
    return rows


def contact_history(
    session: Session,
    contact_id: uuid.UUID,
    *,
    kind: str | None = None,
    without_run: bool = False,
    automation_id: uuid.UUID | None = None,
    before: tuple[datetime, uuid.UUID] | None = None,
    limit: int,
) -> list[Any]:
    """A contact's history entries with their automation's key, name and kind, newest
    first, before the (at, id) of the last one seen."""
    query = (
        select(AutomationHistory, Automation.key, Automation.name, Automation.kind)
        .join(Automation, Automation.id == AutomationHistory.automation_id)
        .where(AutomationHistory.contact_id == contact_id)
    )
    if kind is not None:
        query = query.where(Automation.kind == kind)
    if without_run:
        query = query.where(AutomationHistory.run_id.is_(None))
    if automation_id is not None:
        query = query.where(AutomationHistory.automation_id == automation_id)
    if before is not None:
        at, entry_id = before
        query = query.where(
            or_(
                AutomationHistory.at < at,
                and_(AutomationHistory.at == at, AutomationHistory.id < entry_id),
            )
        )
    query = query.order_by(AutomationHistory.at.desc(), AutomationHistory.id.desc()).limit(limit)
    return list(session.execute(query).all())


def contact_exists(session: Session, contact_id: uuid.UUID) -> bool:
    return session.scalar(select(Contact.id).where(Contact.id == contact_id)) is not None


def contact_id_by_email(session: Session, email: str) -> uuid.UUID | None:
    return session.scalar(select(Contact.id).where(Contact.email == email))
