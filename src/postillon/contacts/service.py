"""The contacts domain: create, find, change, tag, consent and list contacts."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from postillon.clock import Clock
from postillon.contacts import fields
from postillon.contacts import repository as contacts_repository
from postillon.contacts.changes import ContactChanges, changes_from_input
from postillon.contacts.schemas import (
    AttributeDefinitionOut,
    ConsentOut,
    ContactIn,
    ContactOut,
)
from postillon.contacts.upsert import (
    Action,
    ApplyContext,
    ConfirmationRequester,
    Mode,
    Outcome,
    apply_changes,
    raise_for_failures,
)
from postillon.errors import InvalidInput, NotFound
from postillon.kit.pagination import Page, decode_cursor, encode_cursor
from postillon.settings import Settings


@dataclass(frozen=True)
class ContactFilter:
    email: str | None = None
    external_id: str | None = None
    tag: str | None = None
    search: str | None = None
    lifecycle_stage: str | None = None


class ContactService:
    def __init__(self, settings: Settings, clock: Clock) -> None:
        self.settings = settings
        self.clock = clock
        # Set by the runtime: subscriptions mails double opt-in confirmations.
        self.confirmations: ConfirmationRequester | None = None

    def context(self, source: str) -> ApplyContext:
        return ApplyContext(
            now=self.clock.now(),
            secret_key=self.settings.secret_key,
            source=source,
            double_opt_in_sources=frozenset(self.settings.double_opt_in_sources),
            confirmations=self.confirmations,
        )

    def check(
        self,
        data: ContactIn,
        *,
        where: Callable[[str], str] = lambda name: name,
        contact_id: uuid.UUID | None = None,
    ) -> ContactChanges:
        """Turn an API input into checked changes (problems are collected, not raised)."""
        return changes_from_input(data, where=where, contact_id=contact_id)

    def apply(
        self,
        session: Session,
        items: Sequence[ContactChanges],
        *,
        mode: Mode,
        source: str,
        all_or_nothing: bool = True,
    ) -> list[Outcome]:
        """Apply checked changes; all-or-nothing raises before anything is written."""
        outcomes = apply_changes(session, items, mode=mode, context=self.context(source))
        if all_or_nothing:
            raise_for_failures(outcomes)
        return outcomes

    def create(self, session: Session, data: ContactIn, *, source: str = "api") -> ContactOut:
        outcome = self.apply(session, [self.check(data)], mode=Mode.create, source=source)[0]
        return self.get(session, _id_of(outcome))

    def upsert(
        self, session: Session, data: ContactIn, *, source: str = "api"
    ) -> tuple[ContactOut, Action]:
        outcome = self.apply(session, [self.check(data)], mode=Mode.upsert, source=source)[0]
        return self.get(session, _id_of(outcome)), outcome.action

    def update(
        self, session: Session, contact_id: uuid.UUID, data: ContactIn, *, source: str = "api"
    ) -> ContactOut:
        changes = self.check(data, contact_id=contact_id)
        self.apply(session, [changes], mode=Mode.update, source=source)
        return self.get(session, contact_id)

    def upsert_batch(
        self, session: Session, items: Sequence[ContactIn], *, source: str = "api"
    ) -> list[Outcome]:
        if len(items) > self.settings.max_batch_size:
            raise InvalidInput.at(
                "contacts", f"at most {self.settings.max_batch_size} contacts in one batch"
            )
        checked = [self.check(item, where=_item_locator(index)) for index, item in enumerate(items)]
        return self.apply(session, checked, mode=Mode.upsert, source=source)

    def get(self, session: Session, contact_id: uuid.UUID) -> ContactOut:
        rows = contacts_repository.rows_by_ids(session, [contact_id])
        if not rows:
            raise NotFound(f"no contact with id {contact_id}")
        return self.views(session, rows)[0]

    def require(self, session: Session, contact_id: uuid.UUID) -> None:
        if contacts_repository.get(session, contact_id) is None:
            raise NotFound(f"no contact with id {contact_id}")

    def views(self, session: Session, rows: Sequence[dict[str, Any]]) -> list[ContactOut]:
        """Contacts as the API shows them; three queries for any number of rows."""
        ids = [row["id"] for row in rows]
        tags = contacts_repository.tags_of(session, ids)
        consents = contacts_repository.consents_of(session, ids)
        owners = contacts_repository.user_emails_by_id(
            session, {row["owner_id"] for row in rows if row["owner_id"]}
        )
        return [
            ContactOut(
                **{k: v for k, v in row.items() if k != "owner_id"},
                tags=sorted(tags.get(row["id"], ())),
                consent={
                    fields.Channel(channel): ConsentOut(
                        status=c["status"], changed_at=c["changed_at"], source=c["source"]
                    )
                    for channel, c in sorted(consents.get(row["id"], {}).items())
                },
                owner=owners.get(row["owner_id"]) if row["owner_id"] else None,
            )
            for row in rows
        ]

    def list_contacts(
        self, session: Session, query: ContactFilter, *, cursor: str | None, limit: int
    ) -> Page[ContactOut]:
        """A page of contacts matching `query`, in creation order."""
        limit = self._page_size(limit)
        email = None
        if query.email is not None:
            try:
                email = fields.normalise_email(query.email)
            except fields.FieldError as exc:
                raise InvalidInput.at("email", str(exc)) from None
        after_id = None
        if cursor:
            try:
                after_id = uuid.UUID(str(decode_cursor(cursor)[0]))
            except (ValueError, IndexError):
                raise InvalidInput.at("cursor", "not a cursor returned by this API") from None
        rows = contacts_repository.list_page(
            session,
            email=email,
            external_id=query.external_id,
            tag=query.tag,
            search=query.search,
            lifecycle_stage=query.lifecycle_stage,
            after_id=after_id,
            limit=limit + 1,
        )
        next_cursor = None
        if len(rows) > limit:
            rows = rows[:limit]
            next_cursor = encode_cursor(str(rows[-1]["id"]))
        return Page(self.views(session, rows), next_cursor)

    def delete(self, session: Session, contact_id: uuid.UUID) -> None:
        self.require(session, contact_id)
        contacts_repository.delete_contact(session, contact_id)

    def add_tags(self, session: Session, contact_id: uuid.UUID, tags: Sequence[str]) -> ContactOut:
        changes = ContactChanges(contact_id=contact_id)
        for tag in tags:
            changes.add_tag(tag)
        self.apply(session, [changes], mode=Mode.update, source="api")
        return self.get(session, contact_id)

    def remove_tags(
        self, session: Session, contact_id: uuid.UUID, tags: Sequence[str]
    ) -> ContactOut:
        changes = ContactChanges(contact_id=contact_id, where=_tag_query_locator)
        for tag in tags:
            changes.remove_tag(tag)
        self.apply(session, [changes], mode=Mode.update, source="api")
        return self.get(session, contact_id)

    def set_consent(
        self,
        session: Session,
        contact_id: uuid.UUID,
        channel: fields.Channel,
        status: fields.ConsentStatus,
        source: str | None,
    ) -> ContactOut:
        changes = ContactChanges(contact_id=contact_id)
        changes.set_consent(channel.value, status.value, source)
        self.apply(session, [changes], mode=Mode.update, source="api")
        return self.get(session, contact_id)

    def attribute_definitions(self, session: Session) -> list[AttributeDefinitionOut]:
        return [
            AttributeDefinitionOut(name=d.name, type=d.type, created_at=d.created_at)
            for d in contacts_repository.all_attribute_definitions(session)
        ]

    def _page_size(self, limit: int) -> int:
        if not 1 <= limit <= self.settings.max_page_size:
            raise InvalidInput.at("limit", f"must be between 1 and {self.settings.max_page_size}")
        return limit


def _item_locator(index: int) -> Callable[[str], str]:
    return lambda name: f"contacts[{index}].{name}"


def _tag_query_locator(name: str) -> str:
    """Tags to remove come as repeated `tag` query parameters."""
    return "tag" if name == "tags" else name


def _id_of(outcome: Outcome) -> uuid.UUID:
    assert outcome.contact_id is not None, "a successful outcome names its contact"
    return outcome.contact_id
