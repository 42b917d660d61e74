"""Every query about contacts, their tags, consents and attribute definitions."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session

from postillon.kit.ids import sorted_ids
from postillon.kit.repository import (
    chunked,
    insert_rows,
    one_of,
    row_dicts,
    update_rows,
)
from postillon.models import (
    AttributeDefinition,
    Contact,
    ContactConsent,
    ContactImportTouch,
    ContactTag,
    Event,
    User,
    Visitor,
)

contacts_table = Contact.__table__
CONTACT_COLUMNS = tuple(c.name for c in contacts_table.columns)


def rows_by_column(session: Session, column: str, values: Collection[str]) -> list[dict[str, Any]]:
    """Contacts whose `email` or `external_id` is one of `values`, as plain rows."""
    found: list[dict[str, Any]] = []
    col = contacts_table.c[column]
    for part in chunked(list(values)):
        result = session.execute(select(contacts_table).where(one_of(session, col, part)))
        found.extend(row_dicts(result))
    return found


def rows_by_ids(session: Session, ids: Collection[uuid.UUID]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for part in chunked(list(ids)):
        result = session.execute(
            select(contacts_table).where(one_of(session, contacts_table.c.id, part))
        )
        found.extend(row_dicts(result))
    return found


def get(session: Session, contact_id: uuid.UUID) -> Contact | None:
    return session.get(Contact, contact_id)


def tags_of(session: Session, ids: Collection[uuid.UUID]) -> dict[uuid.UUID, set[str]]:
    tags: dict[uuid.UUID, set[str]] = defaultdict(set)
    for part in chunked(list(ids)):
        rows = session.execute(
            select(ContactTag.contact_id, ContactTag.tag).where(
                one_of(session, ContactTag.contact_id, part)
            )
        )
        for contact_id, tag in rows:
            tags[contact_id].add(tag)
    return tags


def consents_of(
    session: Session, ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, dict[str, dict[str, Any]]]:
    consents: dict[uuid.UUID, dict[str, dict[str, Any]]] = defaultdict(dict)
    for part in chunked(list(ids)):
        rows = session.execute(
            select(ContactConsent.__table__).where(one_of(session, ContactConsent.contact_id, part))
        )
        for mapping in row_dicts(rows):
            consents[mapping["contact_id"]][mapping["channel"]] = mapping
    return consents


def consent_statuses(
    session: Session, ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, dict[str, str]]:
    """Each contact's consent status by channel (what filters and templates read)."""
    statuses: dict[uuid.UUID, dict[str, str]] = defaultdict(dict)
    for part in chunked(list(ids)):
        rows = session.execute(
            select(ContactConsent.contact_id, ContactConsent.channel, ContactConsent.status).where(
                one_of(session, ContactConsent.contact_id, part)
            )
        )
        for contact_id, channel, status in rows:
            statuses[contact_id][channel] = status
    return statuses


def insert_contacts(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    insert_rows(session, Contact, rows)


def update_contacts(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Rewrite rows by primary key (one executemany per batch)."""
    update_rows(session, Contact, rows)


def add_tags(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    insert_rows(session, ContactTag, rows, ignore_conflicts=True)


def delete_tags(session: Session, pairs: Collection[tuple[uuid.UUID, str]]) -> None:
    """Remove (contact, tag) pairs: one statement per tag and chunk of contacts."""
    by_tag: dict[str, list[uuid.UUID]] = defaultdict(list)
    for contact_id, tag in pairs:
        by_tag[tag].append(contact_id)
    for tag, ids in by_tag.items():
        for part in chunked(sorted_ids(ids)):
            session.execute(
                delete(ContactTag).where(
                    ContactTag.tag == tag, one_of(session, ContactTag.contact_id, part)
                )
            )


def insert_consents(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    insert_rows(session, ContactConsent, rows)


def update_consents(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    update_rows(session, ContactConsent, rows)


def attribute_types(session: Session, names: Collection[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for part in chunked(sorted(names)):
        rows = session.execute(
            select(AttributeDefinition.name, AttributeDefinition.type).where(
                one_of(session, AttributeDefinition.name, part)
            )
        )
        found.update({name: kind for name, kind in rows})
    return found


def all_attribute_definitions(session: Session) -> list[AttributeDefinition]:
    return list(session.scalars(select(AttributeDefinition).order_by(AttributeDefinition.name)))


def define_attributes(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    insert_rows(session, AttributeDefinition, rows, ignore_conflicts=True)


def user_ids_by_email(session: Session, emails: Collection[str]) -> dict[str, uuid.UUID]:
    if not emails:
        return {}
    rows = session.execute(select(User.email, User.id).where(User.email.in_(sorted(emails))))
    return {email: user_id for email, user_id in rows}


def user_emails_by_id(session: Session, ids: Collection[uuid.UUID]) -> dict[uuid.UUID, str]:
    if not ids:
        return {}
    rows = session.execute(select(User.id, User.email).where(User.id.in_(sorted(ids))))
    return {user_id: email for user_id, email in rows}


def list_page(
    session: Session,
    *,
    email: str | None,
    external_id: str | None,
    tag: str | None,
    search: str | None,
    lifecycle_stage: str | None,
    after_id: uuid.UUID | None,
    limit: int,
) -> list[dict[str, Any]]:
    """A page of contacts in id order (ids are time-ordered, so this is creation order)."""
    query = select(contacts_table).order_by(contacts_table.c.id).limit(limit)
    if email is not None:
        query = query.where(contacts_table.c.email == email)
    if external_id is not None:
        query = query.where(contacts_table.c.external_id == external_id)
    if lifecycle_stage is not None:
        query = query.where(contacts_table.c.lifecycle_stage == lifecycle_stage)
    if tag is not None:
        query = query.where(
            select(ContactTag.contact_id)
            .where(ContactTag.contact_id == contacts_table.c.id, ContactTag.tag == tag)
            .exists()
        )
    if search:
        pattern = _like_prefix(search.lower())
        query = query.where(
            or_(
                contacts_table.c.email.like(pattern, escape="\\"),
                func.lower(contacts_table.c.first_name).like(pattern, escape="\\"),
                func.lower(contacts_table.c.last_name).like(pattern, escape="\\"),
                contacts_table.c.external_id == search,
            )
        )
    if after_id is not None:
        query = query.where(contacts_table.c.id > after_id)
    return row_dicts(session.execute(query))


def _like_prefix(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


def delete_contact(session: Session, contact_id: uuid.UUID) -> None:
    """Delete a contact with everything that hangs on it (explicitly: SQLite FKs are per
    connection and bulk deletes must not depend on them)."""
    session.execute(delete(Event).where(Event.contact_id == contact_id))
    session.execute(delete(ContactTag).where(ContactTag.contact_id == contact_id))
    session.execute(delete(ContactConsent).where(ContactConsent.contact_id == contact_id))
    session.execute(delete(ContactImportTouch).where(ContactImportTouch.contact_id == contact_id))
    session.execute(delete(Contact).where(Contact.id == contact_id))


def move_tags(session: Session, *, source: uuid.UUID, target: uuid.UUID, now: datetime) -> None:
    """Give `target` every tag of `source` it lacks, then drop those of `source`."""
    tags = session.scalars(select(ContactTag.tag).where(ContactTag.contact_id == source))
    rows = [{"contact_id": target, "tag": tag, "added_at": now} for tag in tags]
    add_tags(session, rows)
    session.execute(delete(ContactTag).where(ContactTag.contact_id == source))


def move_import_touches(session: Session, *, source: uuid.UUID, target: uuid.UUID) -> None:
    """Give `target` the import records of `source`; where both were touched by one import,
    the target's record stays."""
    touches = session.execute(
        select(ContactImportTouch.import_id, ContactImportTouch.action).where(
            ContactImportTouch.contact_id == source
        )
    ).all()
    session.execute(delete(ContactImportTouch).where(ContactImportTouch.contact_id == source))
    insert_rows(
        session,
        ContactImportTouch,
        [
            {"import_id": import_id, "contact_id": target, "action": action}
            for import_id, action in touches
        ],
        ignore_conflicts=True,
    )


def move_visitors(session: Session, *, source: uuid.UUID, target: uuid.UUID) -> None:
    session.execute(update(Visitor).where(Visitor.contact_id == source).values(contact_id=target))


def ids_by_external_id(session: Session, external_ids: Collection[str]) -> dict[str, uuid.UUID]:
    found: dict[str, uuid.UUID] = {}
    for part in chunked(sorted(external_ids)):
        query = select(Contact.external_id, Contact.id).where(
            one_of(session, Contact.external_id, part)
        )
        found.update({str(external_id): id_ for external_id, id_ in session.execute(query)})
    return found


def activity_of(
    session: Session, ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, tuple[datetime | None, dict[str, Any] | None]]:
    found: dict[uuid.UUID, tuple[datetime | None, dict[str, Any] | None]] = {}
    for part in chunked(sorted_ids(ids)):
        query = select(Contact.id, Contact.last_seen_at, Contact.last_seen).where(
            one_of(session, Contact.id, part)
        )
        found.update({id_: (at, seen) for id_, at, seen in session.execute(query)})
    return found


def mark_monitored(session: Session, ids: Collection[uuid.UUID], now: datetime) -> None:
    """Contacts whose browsing is now attributed to them; the first time counts."""
    for part in chunked(sorted_ids(ids)):
        session.execute(
            update(Contact)
            .where(one_of(session, Contact.id, part), Contact.state != "monitored")
            .values(state="monitored", monitored_at=now)
        )


def set_external_id(
    session: Session, contact_id: uuid.UUID, external_id: str, now: datetime
) -> None:
    session.execute(
        update(Contact)
        .where(Contact.id == contact_id)
        .values(external_id=external_id, updated_at=now)
    )
