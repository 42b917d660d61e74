"""Every query of the broadcasts feature."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import exists, func, or_, select, update
from sqlalchemy.orm import Session

from postillon.kit.repository import one_of
from postillon.models import (
    Broadcast,
    BroadcastVariant,
    Contact,
    ContactConsent,
    ContactTopic,
    EmailTemplate,
    Message,
    Segment,
    SegmentMembership,
)

# Messages of these states are still to go or going.
PENDING_STATES = ("queued", "sending")


def by_key(session: Session, key: str, *, lock: bool = False) -> Broadcast | None:
    query = select(Broadcast).where(Broadcast.key == key)
    if lock:
        query = query.with_for_update()
    return session.scalar(query)


def all_broadcasts(session: Session) -> Sequence[Broadcast]:
    return session.scalars(select(Broadcast).order_by(Broadcast.created_at.desc())).all()


def add(session: Session, broadcast: Broadcast, variants: Sequence[BroadcastVariant]) -> None:
    session.add(broadcast)
    session.flush()
    session.add_all(variants)
    session.flush()


def templates_by_key(session: Session, keys: Sequence[str]) -> dict[str, EmailTemplate]:
    if not keys:
        return {}
    query = select(EmailTemplate).where(one_of(session, EmailTemplate.key, list(keys)))
    return {template.key: template for template in session.scalars(query)}


def variants_of(
    session: Session, broadcast_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[tuple[BroadcastVariant, EmailTemplate]]]:
    """Each broadcast's variants in order, with their templates."""
    found: dict[uuid.UUID, list[tuple[BroadcastVariant, EmailTemplate]]] = {
        broadcast_id: [] for broadcast_id in broadcast_ids
    }
    if not broadcast_ids:
        return found
    rows = session.execute(
        select(BroadcastVariant, EmailTemplate)
        .join(EmailTemplate, EmailTemplate.id == BroadcastVariant.template_id)
        .where(one_of(session, BroadcastVariant.broadcast_id, list(broadcast_ids)))
        .order_by(BroadcastVariant.broadcast_id, BroadcastVariant.position)
    )
    for variant, template in rows:
        found[variant.broadcast_id].append((variant, template))
    return found


def segment_id_by_key(session: Session, key: str) -> uuid.UUID | None:
    return session.scalar(select(Segment.id).where(Segment.key == key))


def active_ids(session: Session, now: datetime) -> list[uuid.UUID]:
    """Broadcasts with a step to take at `now`: due to start, recipients still to put in
    the outbox, an A/B test over, or every message out. Those waiting (a test running,
    messages still queued or in flight) are left out, so a worker round takes no write
    transaction for them."""
    pending = exists().where(
        Message.broadcast_id == Broadcast.id, Message.state.in_(PENDING_STATES)
    )
    running = Broadcast.state.in_(("testing", "sending"))
    query = (
        select(Broadcast.id)
        .where(
            or_(
                (Broadcast.state == "scheduled") & (Broadcast.start_at <= now),
                running & Broadcast.phase_done.is_(False),
                (Broadcast.state == "testing") & (Broadcast.test_ends_at <= now),
                (Broadcast.state == "sending") & Broadcast.phase_done.is_(True) & ~pending,
            )
        )
        .order_by(Broadcast.start_at)
    )
    return list(session.scalars(query))


def claim(session: Session, broadcast_id: uuid.UUID) -> Broadcast | None:
    """The broadcast, locked for this transaction; None if another worker holds it (on
    SQLite the write transaction holds the whole database anyway)."""
    query = (
        select(Broadcast)
        .where(Broadcast.id == broadcast_id)
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)
    )
    return session.scalar(query)


def audience_chunk(
    session: Session,
    *,
    kind: str,
    segment_id: uuid.UUID | None,
    topic: str | None,
    after: uuid.UUID | None,
    limit: int,
) -> Sequence[tuple[uuid.UUID, str | None, str | None]]:
    """The next `limit` recipients by contact id after `after`: contacts with an address
    whose email consent is subscribed and who are in the audience. A topic's subscribers
    are those without a row saying otherwise (no row means subscribed)."""
    consented = exists().where(
        ContactConsent.contact_id == Contact.id,
        ContactConsent.channel == "email",
        ContactConsent.status == "subscribed",
    )
    query = (
        select(Contact.id, Contact.email, Contact.timezone)
        .where(Contact.email.is_not(None), consented)
        .order_by(Contact.id)
        .limit(limit)
    )
    if after is not None:
        query = query.where(Contact.id > after)
    if kind == "segment":
        query = query.where(
            exists().where(
                SegmentMembership.segment_id == segment_id,
                SegmentMembership.contact_id == Contact.id,
                SegmentMembership.exited_at.is_(None),
            )
        )
    elif kind == "topic":
        query = query.where(
            ~exists().where(
                ContactTopic.contact_id == Contact.id,
                ContactTopic.topic == topic,
                ContactTopic.status != "subscribed",
            )
        )
    return session.execute(query).all()


def keys_taken(session: Session, keys: Sequence[str]) -> set[str]:
    """Which of these dedupe keys have a message already."""
    if not keys:
        return set()
    query = select(Message.dedupe_key).where(one_of(session, Message.dedupe_key, list(keys)))
    return set(session.scalars(query))


def counts_by_state(session: Session, broadcast_id: uuid.UUID) -> dict[str, int]:
    rows = session.execute(
        select(Message.state, func.count())
        .where(Message.broadcast_id == broadcast_id)
        .group_by(Message.state)
    )
    return {state: int(count) for state, count in rows}


def has_pending(session: Session, broadcast_id: uuid.UUID) -> bool:
    query = select(
        exists().where(Message.broadcast_id == broadcast_id, Message.state.in_(PENDING_STATES))
    )
    return bool(session.scalar(query))


def cancel_queued(session: Session, broadcast_id: uuid.UUID, now: datetime) -> int:
    """Queued messages of the broadcast will not go out; those in flight finish."""
    result = session.execute(
        update(Message)
        .where(Message.broadcast_id == broadcast_id, Message.state == "queued")
        .values(state="cancelled", last_error=f"broadcast cancelled at {now.isoformat()}")
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
