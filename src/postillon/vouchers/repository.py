"""Every query of voucher pools and codes."""

from __future__ import annotations

import uuid
import zlib
from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from postillon.kit.ids import sorted_ids
from postillon.kit.repository import chunked, insert_rows, one_of, update_rows
from postillon.models import VoucherCode, VoucherPool


def pool_by_key(session: Session, key: str) -> VoucherPool | None:
    return session.scalars(select(VoucherPool).where(VoucherPool.key == key)).one_or_none()


def pools_by_key(session: Session, keys: Collection[str]) -> dict[str, VoucherPool]:
    if not keys:
        return {}
    query = select(VoucherPool).where(one_of(session, VoucherPool.key, sorted(keys)))
    return {pool.key: pool for pool in session.scalars(query)}


def all_pools(session: Session) -> list[VoucherPool]:
    return list(session.scalars(select(VoucherPool).order_by(VoucherPool.key)))


def add_pool(session: Session, pool: VoucherPool) -> None:
    session.add(pool)
    session.flush()


def counts(session: Session, pool_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, tuple[int, int]]:
    """(free, assigned) codes per pool."""
    query = (
        select(
            VoucherCode.pool_id,
            func.count().filter(VoucherCode.contact_id.is_(None)),
            func.count(VoucherCode.contact_id),
        )
        .where(one_of(session, VoucherCode.pool_id, pool_ids))
        .group_by(VoucherCode.pool_id)
    )
    found = {
        pool_id: (int(free), int(assigned)) for pool_id, free, assigned in session.execute(query)
    }
    return {pool_id: found.get(pool_id, (0, 0)) for pool_id in pool_ids}


def existing_codes(session: Session, pool_id: uuid.UUID, codes: Sequence[str]) -> set[str]:
    found: set[str] = set()
    for part in chunked(codes):
        query = select(VoucherCode.code).where(
            VoucherCode.pool_id == pool_id, one_of(session, VoucherCode.code, part)
        )
        found.update(session.scalars(query))
    return found


def insert_codes(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """New codes; a code the pool has already is skipped."""
    insert_rows(session, VoucherCode, rows, ignore_conflicts=True)


def serialize_pool(session: Session, pool_id: uuid.UUID) -> None:
    """One assigner per pool at a time on PostgreSQL (SQLite's write lock does this): two
    senders must not hand the same free code to different contacts."""
    if session.get_bind().dialect.name == "postgresql":
        key = zlib.crc32(b"postillon.voucher_pool:" + pool_id.bytes)
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


def codes_of_contacts(
    session: Session, pool_id: uuid.UUID, contact_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, str]:
    found: dict[uuid.UUID, str] = {}
    for part in chunked(sorted_ids(contact_ids)):
        query = select(VoucherCode.contact_id, VoucherCode.code).where(
            VoucherCode.pool_id == pool_id, one_of(session, VoucherCode.contact_id, part)
        )
        for contact_id, code in session.execute(query):
            if contact_id is not None:
                found[contact_id] = code
    return found


def free_codes(session: Session, pool_id: uuid.UUID, limit: int) -> list[tuple[uuid.UUID, str]]:
    """Any `limit` free codes, in index order: sorting a million free codes to pick a few
    would cost more than the assignment."""
    query = (
        select(VoucherCode.id, VoucherCode.code)
        .where(VoucherCode.pool_id == pool_id, VoucherCode.contact_id.is_(None))
        .limit(limit)
    )
    return [(code_id, code) for code_id, code in session.execute(query)]


def first_free_code(session: Session, pool_id: uuid.UUID) -> str | None:
    codes = free_codes(session, pool_id, 1)
    return codes[0][1] if codes else None


def assign_codes(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Rows of id, contact_id, message_id, assigned_at."""
    update_rows(session, VoucherCode, rows)
