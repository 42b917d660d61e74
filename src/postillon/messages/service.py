"""Putting messages in the outbox: the one way any feature asks for a message to be sent.

Broadcasts, journeys, rules and the API all call `MessageService.enqueue` with requests
that each carry a deterministic `dedupe_key` ("broadcast:<id>:<contact>", "journey:<run>:
<step>" …): a request whose key exists already makes no second message, so a retried or
replayed caller can never send twice. Whether a message may go out (consent, topic,
suppression) is decided when it is sent, not here: consent can change in between.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy.orm import Session

from postillon.clock import Clock
from postillon.contacts.fields import FieldError, normalise_email
from postillon.errors import FieldProblem, InvalidInput, NotFound
from postillon.kit.ids import new_id
from postillon.kit.pagination import decode_cursor, encode_cursor
from postillon.messages import repository
from postillon.messages.schemas import (
    MessageOut,
    MessagePage,
    MessageStatsOut,
    QueuedMessageOut,
    SendIn,
    SendOut,
)


class MessageKind(StrEnum):
    marketing = "marketing"
    transactional = "transactional"
    # About the contact, to someone else (an owner notified by a rule): transactional,
    # sent to `to_address`, without open or click tracking (their reading is not the
    # contact's engagement).
    notification = "notification"


class MessageState(StrEnum):
    queued = "queued"
    sending = "sending"
    sent = "sent"
    failed = "failed"
    bounced = "bounced"
    suppressed = "suppressed"
    unknown = "unknown"
    # Never sent: its broadcast was cancelled while it waited.
    cancelled = "cancelled"


@dataclass(frozen=True)
class MessageRequest:
    """One message to put in the outbox. The kind and topic come from the template unless
    given here (a transactional resend of a marketing template is not possible: a
    marketing template stays marketing)."""

    contact_id: uuid.UUID
    template_id: uuid.UUID
    dedupe_key: str
    source: str
    context: dict[str, Any] = field(default_factory=dict)
    broadcast_id: uuid.UUID | None = None
    variant: str | None = None
    due_at: datetime | None = None
    # A rule's or journey's messages: which one, and the journey's step.
    automation_id: uuid.UUID | None = None
    step: str | None = None
    # A notification about the contact to another address (their owner, sales): the
    # message is a `notification` (see MessageKind) and goes there, not to the contact.
    to_address: str | None = None


@dataclass(frozen=True)
class EnqueueResult:
    # The message of each request, new or already there, by dedupe key.
    message_ids: dict[str, uuid.UUID]
    created: int
    duplicates: int
    # Contacts that have no email address: no message is made for them.
    without_address: list[uuid.UUID]


class MessageService:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock

    def enqueue(self, session: Session, requests: Sequence[MessageRequest]) -> EnqueueResult:
        """Queue messages in one set-based insert; keys seen before are skipped."""
        now = self.clock.now()
        templates = repository.templates_by_id(session, list({r.template_id for r in requests}))
        unknown = [
            FieldProblem(f"requests[{i}].template_id", f"no template has the id {r.template_id}")
            for i, r in enumerate(requests)
            if r.template_id not in templates
        ]
        if unknown:
            raise InvalidInput.of(unknown)
        addresses = repository.emails_of(session, [r.contact_id for r in requests])
        rows: list[dict[str, Any]] = []
        without_address: list[uuid.UUID] = []
        seen: set[str] = set()
        for request in requests:
            address = request.to_address or addresses.get(request.contact_id)
            if not address:
                without_address.append(request.contact_id)
                continue
            if request.dedupe_key in seen:
                continue
            seen.add(request.dedupe_key)
            template = templates[request.template_id]
            rows.append(
                {
                    "id": new_id(),
                    "contact_id": request.contact_id,
                    "channel": "email",
                    "kind": MessageKind.notification if request.to_address else template.kind,
                    "topic": template.topic,
                    "template_id": template.id,
                    "template_version": template.version,
                    "broadcast_id": request.broadcast_id,
                    "variant": request.variant,
                    "automation_id": request.automation_id,
                    "step": request.step,
                    "source": request.source,
                    "dedupe_key": request.dedupe_key,
                    "to_address": address,
                    "context": request.context,
                    "state": MessageState.queued,
                    "attempts": 0,
                    "due_at": request.due_at or now,
                    "queued_at": now,
                }
            )
        # Keys seen before keep their message. Usually there are none, and then the new
        # rows' ids are the answer unless another transaction took a key meanwhile (the
        # insert then counts fewer rows, and the ids are read back).
        ids = repository.ids_by_dedupe_key(session, [row["dedupe_key"] for row in rows])
        new_rows = [row for row in rows if row["dedupe_key"] not in ids]
        inserted = repository.insert_messages(session, new_rows)
        if inserted == len(new_rows):
            ids.update({row["dedupe_key"]: row["id"] for row in new_rows})
        else:
            ids = repository.ids_by_dedupe_key(session, [row["dedupe_key"] for row in rows])
        created = sum(1 for row in new_rows if ids.get(row["dedupe_key"]) == row["id"])
        return EnqueueResult(
            message_ids=ids,
            created=created,
            duplicates=len(rows) - created,
            without_address=without_address,
        )

    # The messages API.

    def send_template(self, session: Session, data: SendIn) -> SendOut:
        """Queue the template for each named contact; unknown ones are a 422 naming them."""
        template = repository.template_by_key(session, data.template)
        if template is None:
            raise InvalidInput.at("template", f"no template has the key {data.template!r}")
        if not data.contact_ids and not data.emails:
            raise InvalidInput.at("contact_ids", "name at least one contact (or emails)")
        problems: list[FieldProblem] = []
        known = repository.emails_of(session, data.contact_ids)
        problems += [
            FieldProblem(f"contact_ids[{i}]", f"no contact has the id {contact_id}")
            for i, contact_id in enumerate(data.contact_ids)
            if contact_id not in known
        ]
        normalised: list[str | None] = []
        for i, address in enumerate(data.emails):
            try:
                normalised.append(normalise_email(address))
            except FieldError as error:
                problems.append(FieldProblem(f"emails[{i}]", str(error)))
                normalised.append(None)
        by_email = repository.contact_ids_by_email(session, [e for e in normalised if e])
        problems += [
            FieldProblem(f"emails[{i}]", f"no contact has the address {address}")
            for i, address in enumerate(normalised)
            if address is not None and address not in by_email
        ]
        problems += [
            FieldProblem(f"contact_ids[{i}]", "the contact has no email address")
            for i, contact_id in enumerate(data.contact_ids)
            if contact_id in known and not known[contact_id]
        ]
        if problems:
            raise InvalidInput.of(problems)
        contacts = list(dict.fromkeys([*data.contact_ids, *(by_email[e] for e in normalised if e)]))
        # Without a key every call is a new message; with one, a repeat is the same message.
        key = data.dedupe_key or new_id().hex
        requests = [
            MessageRequest(
                contact_id=contact_id,
                template_id=template.id,
                dedupe_key=f"api:{key}:{contact_id}",
                source="api",
                context=data.context,
            )
            for contact_id in contacts
        ]
        before = repository.ids_by_dedupe_key(session, [r.dedupe_key for r in requests])
        result = self.enqueue(session, requests)
        return SendOut(
            kind=template.kind,
            messages=[
                QueuedMessageOut(
                    contact_id=r.contact_id,
                    message_id=result.message_ids[r.dedupe_key],
                    duplicate=r.dedupe_key in before,
                )
                for r in requests
            ],
        )

    def get(self, session: Session, message_id: uuid.UUID) -> MessageOut:
        message = repository.get_message(session, message_id)
        if message is None:
            raise NotFound(f"no message with id {message_id}")
        return MessageOut.model_validate(message)

    def contact_messages(
        self, session: Session, contact_id: uuid.UUID, *, cursor: str | None, limit: int
    ) -> MessagePage:
        """A contact's messages, newest first."""
        after: tuple[datetime, uuid.UUID] | None = None
        if cursor is not None:
            values = decode_cursor(cursor)
            try:
                after = (datetime.fromisoformat(str(values[0])), uuid.UUID(str(values[1])))
            except (ValueError, IndexError) as error:
                raise InvalidInput.at("cursor", "not a cursor returned by this API") from error
        rows = repository.contact_messages_page(session, contact_id, after=after, limit=limit + 1)
        if not rows and after is None and not repository.emails_of(session, [contact_id]):
            raise NotFound(f"no contact with id {contact_id}")
        page = rows[:limit]
        next_cursor = None
        if len(rows) > limit:
            last = page[-1]
            next_cursor = encode_cursor(last.queued_at.isoformat(), last.id.hex)
        return MessagePage(
            items=[MessageOut.model_validate(m) for m in page], next_cursor=next_cursor
        )

    def stats(self, session: Session) -> MessageStatsOut:
        counts = repository.count_by_state(session)
        return MessageStatsOut(
            states={state.value: counts.get(state.value, 0) for state in MessageState}
        )
