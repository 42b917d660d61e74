"""Every query about API keys."""

from __future__ import annotations

import contextlib
import uuid
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from postillon.models import ApiKey


def by_digest(session: Session, digest: str) -> ApiKey | None:
    return session.scalar(select(ApiKey).where(ApiKey.secret_digest == digest))


def all_keys(session: Session) -> list[ApiKey]:
    return list(session.scalars(select(ApiKey).order_by(ApiKey.created_at)))


def by_prefix_or_id(session: Session, reference: str) -> list[ApiKey]:
    condition = ApiKey.prefix == reference
    with contextlib.suppress(ValueError):
        condition = condition | (ApiKey.id == uuid.UUID(reference))
    return list(session.scalars(select(ApiKey).where(condition)))


def count_active(session: Session, scope: str) -> int:
    keys = session.scalars(
        select(ApiKey.id).where(ApiKey.scope == scope, ApiKey.revoked_at.is_(None))
    )
    return len(list(keys))


def touch(session: Session, key_id: uuid.UUID, now: datetime) -> None:
    session.execute(update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=now))
