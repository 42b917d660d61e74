"""The statistics queries of the outbox (`messages/stats.py`): one aggregate over
`messages` per question, grouped by whatever columns the caller names."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session

from postillon.models import EmailTemplate, Message

# Columns a statistic may be grouped or narrowed by: those that say where a message came
# from (journey steps will add theirs), never free text.
GROUPABLE = frozenset(
    {
        "template_id",
        "template_version",
        "broadcast_id",
        "variant",
        "source",
        "kind",
        "topic",
        "channel",
    }
)


def _count_where(condition: Any) -> Any:
    # COUNT(*) FILTER (WHERE …) written portably: COUNT skips the CASE's NULLs.
    return func.count(case((condition, 1)))


def figures(
    session: Session,
    *,
    where: Mapping[str, Any],
    group_by: Sequence[str],
    since: datetime | None,
    until: datetime | None,
) -> list[tuple[Any, ...]]:
    """One row per group: the group's values, then the counts `stats.Figures` holds.
    The time window is on `sent_at` (messages sent within it)."""
    groups = [getattr(Message, name) for name in group_by]
    sent = Message.sent_at.is_not(None)
    query = select(
        *groups,
        _count_where(sent).label("sent"),
        _count_where(and_(sent, Message.bounced_at.is_(None))).label("delivered"),
        _count_where(and_(Message.bounced_at.is_not(None), Message.bounce_kind == "hard")).label(
            "bounced_hard"
        ),
        _count_where(and_(Message.bounced_at.is_not(None), Message.bounce_kind == "soft")).label(
            "bounced_soft"
        ),
        _count_where(Message.opened_at.is_not(None)).label("unique_opens"),
        _count_where(Message.clicked_at.is_not(None)).label("unique_clicks"),
        func.coalesce(func.sum(Message.machine_opens), 0).label("machine_opens"),
        _count_where(Message.unsubscribed_at.is_not(None)).label("unsubscribes"),
        _count_where(Message.complained_at.is_not(None)).label("complaints"),
    )
    for name, value in where.items():
        query = query.where(getattr(Message, name) == value)
    if since is not None:
        query = query.where(Message.sent_at >= since)
    if until is not None:
        query = query.where(Message.sent_at < until)
    if groups:
        query = query.group_by(*groups)
    return [tuple(row) for row in session.execute(query)]


def template_id_by_key(session: Session, key: str) -> uuid.UUID | None:
    return session.scalar(select(EmailTemplate.id).where(EmailTemplate.key == key))
