"""The queries of the actions that leave Postillon: templates by key (sends and the owner
notification's system template) and the `webhook_deliveries` outbox."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from postillon.kit.repository import chunked, insert_rows, one_of
from postillon.models import EmailTemplate, WebhookDelivery


def template_by_key(session: Session, key: str) -> EmailTemplate | None:
    return session.scalars(select(EmailTemplate).where(EmailTemplate.key == key)).one_or_none()


# --- webhook deliveries ---


def insert_deliveries(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """New deliveries; a key that exists already is skipped (a replayed action)."""
    insert_rows(session, WebhookDelivery, rows, ignore_conflicts=True)


def delivery_ids_by_key(session: Session, keys: Collection[str]) -> dict[str, uuid.UUID]:
    found: dict[str, uuid.UUID] = {}
    for part in chunked(sorted(keys)):
        query = select(WebhookDelivery.dedupe_key, WebhookDelivery.id).where(
            one_of(session, WebhookDelivery.dedupe_key, part)
        )
        found.update({key: id_ for key, id_ in session.execute(query)})
    return found


def expire_leases(session: Session, *, claimed_before: datetime) -> list[WebhookDelivery]:
    """Deliveries left `sending` by a worker that stopped mid-call become `unknown`: the
    receiver may have had the call, so it is not made again."""
    query = (
        update(WebhookDelivery)
        .where(WebhookDelivery.state == "sending", WebhookDelivery.claimed_at < claimed_before)
        .values(
            state="unknown",
            last_error="the worker stopped during the call: it may have arrived; not repeated",
        )
        .returning(WebhookDelivery)
    )
    return list(session.scalars(query))


def claim_due(session: Session, *, now: datetime, limit: int) -> list[WebhookDelivery]:
    """Up to `limit` due queued deliveries, locked (`SKIP LOCKED` on PostgreSQL: other
    workers take the others), marked `sending` by the caller."""
    query = (
        select(WebhookDelivery)
        .where(WebhookDelivery.state == "queued", WebhookDelivery.due_at <= now)
        .order_by(WebhookDelivery.due_at, WebhookDelivery.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return list(session.scalars(query))


def update_deliveries(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Set columns of deliveries by id (each row: `id` and the same other keys)."""
    by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        by_columns.setdefault(tuple(sorted(row)), []).append(row)
    for group in by_columns.values():
        session.execute(update(WebhookDelivery), group)


def deliveries_of(session: Session, ids: Collection[uuid.UUID]) -> list[WebhookDelivery]:
    query = select(WebhookDelivery).where(WebhookDelivery.id.in_(sorted(ids)))
    return list(session.scalars(query.order_by(WebhookDelivery.queued_at)))
