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
from postillon.errors import FieldProblem, InvalidInput
from postillon.kit.ids import new_id
from postillon.messages import repository


class MessageKind(StrEnum):
    marketing = "marketing"
    transactional = "transactional"


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
            address = addresses.get(request.contact_id)
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
                    "kind": template.kind,
                    "topic": template.topic,
                    "template_id": template.id,
                    "template_version": template.version,
                    "broadcast_id": request.broadcast_id,
                    "variant": request.variant,
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
        repository.insert_messages(session, rows)
        ids = repository.ids_by_dedupe_key(session, [row["dedupe_key"] for row in rows])
        created = sum(1 for row in rows if ids.get(row["dedupe_key"]) == row["id"])
        return EnqueueResult(
            message_ids=ids,
            created=created,
            duplicates=len(rows) - created,
            without_address=without_address,
        )
