"""Every query of lead scoring: score models, rules, the scores themselves and their history."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, case, delete, func, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from postillon.kit.ids import sorted_ids
from postillon.kit.repository import chunked, insert_rows, one_of, table_of
from postillon.models import Contact, ContactScore, ScoreChange, ScoreModel, ScoringRule

# Any number, the same in every process: the key of the scoring lock.
_SCORING_LOCK = 0x73636F72  # "scor"


def serialize_scoring(session: Session) -> None:
    """One scoring transaction at a time (rules, decay), as on SQLite (whose write lock
    does this): "once" rules, daily limits and "not decayed yet" are read from the
    history, and two workers reading it at once would both give the points."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SCORING_LOCK})


# Score models


def all_models(session: Session) -> list[ScoreModel]:
    """`main` first, then the others in creation order."""
    main_first = case((ScoreModel.key == "main", 0), else_=1)
    query = select(ScoreModel).order_by(main_first, ScoreModel.created_at, ScoreModel.key)
    return list(session.scalars(query))


def model_by_key(session: Session, key: str) -> ScoreModel | None:
    return session.scalar(select(ScoreModel).where(ScoreModel.key == key))


def models_by_id(session: Session, ids: Collection[uuid.UUID]) -> dict[uuid.UUID, ScoreModel]:
    if not ids:
        return {}
    query = select(ScoreModel).where(ScoreModel.id.in_(sorted_ids(ids)))
    return {model.id: model for model in session.scalars(query)}


def decaying_models(session: Session) -> list[ScoreModel]:
    query = (
        select(ScoreModel)
        .where(ScoreModel.decay_percent.is_not(None), ScoreModel.decay_after_days.is_not(None))
        .order_by(ScoreModel.key)
    )
    return list(session.scalars(query))


def delete_model(session: Session, model_id: uuid.UUID) -> None:
    """The model with its rules, values and history (explicitly: SQLite enforces foreign
    keys per connection, and nothing should depend on that)."""
    session.execute(delete(ScoreChange).where(ScoreChange.model_id == model_id))
    session.execute(delete(ContactScore).where(ContactScore.model_id == model_id))
    session.execute(delete(ScoringRule).where(ScoringRule.model_id == model_id))
    session.execute(delete(ScoreModel).where(ScoreModel.id == model_id))


# Rules


def rules_page(
    session: Session, *, event: str | None, model_id: uuid.UUID | None
) -> list[ScoringRule]:
    query = select(ScoringRule).order_by(ScoringRule.created_at, ScoringRule.id)
    if event is not None:
        query = query.where(ScoringRule.event == event)
    if model_id is not None:
        query = query.where(ScoringRule.model_id == model_id)
    return list(session.scalars(query))


def get_rule(session: Session, rule_id: uuid.UUID) -> ScoringRule | None:
    return session.get(ScoringRule, rule_id)


def enabled_rules_for(session: Session, event_names: Collection[str]) -> list[ScoringRule]:
    """The enabled rules on any of `event_names`, oldest first."""
    if not event_names:
        return []
    query = (
        select(ScoringRule)
        .where(one_of(session, ScoringRule.event, sorted(event_names)), ScoringRule.enabled)
        .order_by(ScoringRule.created_at, ScoringRule.id)
    )
    return list(session.scalars(query))


def delete_rule(session: Session, rule_id: uuid.UUID) -> None:
    # The history stays, without its rule (as the foreign key's SET NULL would do).
    session.execute(update(ScoreChange).where(ScoreChange.rule_id == rule_id).values(rule_id=None))
    session.execute(delete(ScoringRule).where(ScoringRule.id == rule_id))


# Scores


def existing_contacts(session: Session, ids: Collection[uuid.UUID]) -> set[uuid.UUID]:
    found: set[uuid.UUID] = set()
    for part in chunked(sorted_ids(ids)):
        found.update(session.scalars(select(Contact.id).where(one_of(session, Contact.id, part))))
    return found


def automation_notes_present(session: Session, notes: Collection[str]) -> set[str]:
    """Which of these automation action keys already gave points (`score_changes.note`)."""
    found: set[str] = set()
    for part in chunked(sorted(notes)):
        found.update(
            session.scalars(
                select(ScoreChange.note).where(
                    ScoreChange.reason == "automation", one_of(session, ScoreChange.note, part)
                )
            )
        )
    return found


def add_to_main_scores(session: Session, deltas: Mapping[uuid.UUID, int]) -> None:
    """`contacts.score += delta`, relative, so a concurrent writer's change is not lost."""
    if not deltas:
        return
    table = table_of(Contact)
    statement = (
        update(table)
        .where(table.c.id == bindparam("contact"))
        .values(score=table.c.score + bindparam("delta"))
    )
    rows = [{"contact": cid, "delta": delta} for cid, delta in sorted(deltas.items())]
    session.connection().execute(statement, rows)


def add_to_model_scores(
    session: Session, deltas: Mapping[tuple[uuid.UUID, uuid.UUID], int]
) -> None:
    """`contact_scores.score += delta` for (model id, contact id) pairs, creating the rows
    that do not exist yet (starting from 0)."""
    if not deltas:
        return
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(table_of(ContactScore))
    statement = statement.on_conflict_do_update(
        index_elements=["contact_id", "model_id"],
        set_={"score": table_of(ContactScore).c.score + statement.excluded.score},
    )
    rows = [
        {"contact_id": cid, "model_id": mid, "score": delta}
        for (mid, cid), delta in sorted(deltas.items())
    ]
    session.connection().execute(statement, rows)


def main_scores(session: Session, ids: Collection[uuid.UUID]) -> dict[uuid.UUID, int]:
    found: dict[uuid.UUID, int] = {}
    for part in chunked(sorted_ids(ids)):
        query = select(Contact.id, Contact.score).where(one_of(session, Contact.id, part))
        found.update({cid: int(score) for cid, score in session.execute(query)})
    return found


def model_scores(
    session: Session, model_ids: Collection[uuid.UUID], ids: Collection[uuid.UUID]
) -> dict[tuple[uuid.UUID, uuid.UUID], int]:
    """(model id, contact id) → score, for the pairs that have a row."""
    found: dict[tuple[uuid.UUID, uuid.UUID], int] = {}
    if not model_ids:
        return found
    for part in chunked(sorted_ids(ids)):
        query = select(ContactScore.model_id, ContactScore.contact_id, ContactScore.score).where(
            ContactScore.model_id.in_(sorted(model_ids)),
            one_of(session, ContactScore.contact_id, part),
        )
        found.update({(mid, cid): int(score) for mid, cid, score in session.execute(query)})
    return found


def insert_changes(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    insert_rows(session, ScoreChange, rows)


def move_history(session: Session, *, source: uuid.UUID, target: uuid.UUID) -> None:
    session.execute(
        update(ScoreChange).where(ScoreChange.contact_id == source).values(contact_id=target)
    )


# What the rules have given already


def rule_pairs_with_history(
    session: Session, rule_ids: Collection[uuid.UUID], contact_ids: Collection[uuid.UUID]
) -> set[tuple[uuid.UUID, uuid.UUID]]:
    """The (rule, contact) pairs among these that have given points before."""
    found: set[tuple[uuid.UUID, uuid.UUID]] = set()
    if not rule_ids:
        return found
    for part in chunked(sorted_ids(contact_ids)):
        query = (
            select(ScoreChange.rule_id, ScoreChange.contact_id)
            .where(
                ScoreChange.rule_id.in_(sorted(rule_ids)),
                one_of(session, ScoreChange.contact_id, part),
            )
            .distinct()
        )
        found.update((rid, cid) for rid, cid in session.execute(query) if rid is not None)
    return found


def points_given_since(
    session: Session,
    rule_ids: Collection[uuid.UUID],
    contact_ids: Collection[uuid.UUID],
    *,
    since: datetime,
) -> dict[tuple[uuid.UUID, uuid.UUID], int]:
    """(rule, contact) → the points (in absolute value) the rule gave since `since`."""
    found: dict[tuple[uuid.UUID, uuid.UUID], int] = {}
    if not rule_ids:
        return found
    for part in chunked(sorted_ids(contact_ids)):
        query = (
            select(
                ScoreChange.rule_id, ScoreChange.contact_id, func.sum(func.abs(ScoreChange.delta))
            )
            .where(
                ScoreChange.rule_id.in_(sorted(rule_ids)),
                one_of(session, ScoreChange.contact_id, part),
                ScoreChange.changed_at >= since,
            )
            .group_by(ScoreChange.rule_id, ScoreChange.contact_id)
        )
        for rid, cid, total in session.execute(query):
            if rid is not None:
                found[(rid, cid)] = int(total or 0)
    return found


# Decay


def decay_candidates(
    session: Session, model: ScoreModel, *, is_main: bool, cutoff: datetime, limit: int
) -> list[tuple[uuid.UUID, int]]:
    """Contacts whose `model` score would lose at least one point to decay, not seen
    since `cutoff` (or, never seen, created before it) and whose score in this model
    has not changed since `cutoff` (a decay is a change: each decays once a period)."""
    assert model.decay_percent is not None
    contacts = table_of(Contact)
    changed_since = (
        select(ScoreChange.id)
        .where(
            ScoreChange.contact_id == contacts.c.id,
            ScoreChange.model_id == model.id,
            ScoreChange.changed_at > cutoff,
        )
        .exists()
    )
    inactive = func.coalesce(contacts.c.last_seen_at, contacts.c.created_at) <= cutoff
    if is_main:
        score = contacts.c.score
        query = select(contacts.c.id, score).where(
            score * model.decay_percent >= 100, inactive, ~changed_since
        )
    else:
        values = table_of(ContactScore)
        score = values.c.score
        query = (
            select(contacts.c.id, score)
            .join_from(values, contacts, contacts.c.id == values.c.contact_id)
            .where(
                and_(values.c.model_id == model.id, score * model.decay_percent >= 100),
                inactive,
                ~changed_since,
            )
        )
    rows = session.execute(query.order_by(contacts.c.id).limit(limit))
    return [(cid, int(value)) for cid, value in rows]


# History


def history_page(
    session: Session,
    contact_id: uuid.UUID,
    *,
    model_id: uuid.UUID | None,
    before_id: int | None,
    limit: int,
) -> list[tuple[ScoreChange, str]]:
    """A contact's score changes, newest first, with their model's key."""
    query = (
        select(ScoreChange, ScoreModel.key)
        .join(ScoreModel, ScoreModel.id == ScoreChange.model_id)
        .where(ScoreChange.contact_id == contact_id)
        .order_by(ScoreChange.id.desc())
        .limit(limit)
    )
    if model_id is not None:
        query = query.where(ScoreChange.model_id == model_id)
    if before_id is not None:
        query = query.where(ScoreChange.id < before_id)
    return [(change, key) for change, key in session.execute(query)]
