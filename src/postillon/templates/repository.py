"""Every query of templates and content blocks."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from typing import Any

from sqlalchemy import delete, exists, select
from sqlalchemy.orm import Session

from postillon.kit.ids import sorted_ids
from postillon.kit.repository import chunked, insert_rows, one_of
from postillon.models import Contact, ContentBlock, EmailTemplate, Message, VoucherPool


def template_by_key(session: Session, key: str) -> EmailTemplate | None:
    return session.scalars(select(EmailTemplate).where(EmailTemplate.key == key)).one_or_none()


def templates_by_id(session: Session, ids: Collection[uuid.UUID]) -> dict[uuid.UUID, EmailTemplate]:
    found: dict[uuid.UUID, EmailTemplate] = {}
    for part in chunked(sorted_ids(ids)):
        query = select(EmailTemplate).where(one_of(session, EmailTemplate.id, part))
        found.update((template.id, template) for template in session.scalars(query))
    return found


def all_templates(session: Session) -> list[EmailTemplate]:
    return list(session.scalars(select(EmailTemplate).order_by(EmailTemplate.key)))


def add_template_if_absent(session: Session, row: dict[str, Any]) -> None:
    """Insert a template unless its key is taken (system templates, made on first use)."""
    insert_rows(session, EmailTemplate, [row], ignore_conflicts=True)


def add_template(session: Session, template: EmailTemplate) -> None:
    session.add(template)
    session.flush()


def is_referenced(session: Session, template_id: uuid.UUID) -> bool:
    """Whether any message was made from the template."""
    return bool(session.scalar(select(exists().where(Message.template_id == template_id))))


def delete_template(session: Session, template_id: uuid.UUID) -> None:
    session.execute(delete(EmailTemplate).where(EmailTemplate.id == template_id))


def contact_id_by_email(session: Session, email: str) -> uuid.UUID | None:
    return session.scalar(select(Contact.id).where(Contact.email == email))


def block_by_key(session: Session, key: str) -> ContentBlock | None:
    return session.scalars(select(ContentBlock).where(ContentBlock.key == key)).one_or_none()


def blocks_by_key(session: Session, keys: Collection[str]) -> dict[str, ContentBlock]:
    if not keys:
        return {}
    query = select(ContentBlock).where(one_of(session, ContentBlock.key, sorted(keys)))
    return {block.key: block for block in session.scalars(query)}


def all_blocks(session: Session) -> list[ContentBlock]:
    return list(session.scalars(select(ContentBlock).order_by(ContentBlock.key)))


def add_block(session: Session, block: ContentBlock) -> None:
    session.add(block)
    session.flush()


def delete_block(session: Session, block_id: uuid.UUID) -> None:
    session.execute(delete(ContentBlock).where(ContentBlock.id == block_id))


def voucher_pool_keys(session: Session, keys: Collection[str]) -> set[str]:
    """Which of `keys` name voucher pools (templates check the pools they use)."""
    if not keys:
        return set()
    query = select(VoucherPool.key).where(one_of(session, VoucherPool.key, sorted(keys)))
    return set(session.scalars(query))
