"""Taking in tracked messages: dedupe, identify, enrich, store and queue — per batch.

`ingest` runs in the caller's transaction; the web layer commits it before answering, so
an acknowledged message is stored (and queued for the consumers). The work is set-based:
a batch of 2,500 messages costs a fixed number of queries.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from postillon.clock import Clock
from postillon.contacts.upsert import ApplyContext
from postillon.errors import FieldProblem, NotFound
from postillon.events import repository as events_repository
from postillon.events.service import store_prepared_events
from postillon.kit.repository import PreparedRows
from postillon.models import Visitor
from postillon.settings import Settings
from postillon.tracking import identity, repository
from postillon.tracking.enrichment import enrich
from postillon.tracking.schemas import VisitorOut
from postillon.tracking.segment import Message, Rejected

# The snippet reports how long a page was looked at as a track call of this name; it is
# folded into the page view's `properties.dwell_ms` instead of being stored on its own.
DWELL_EVENT = "page_dwell"
_MAX_DWELL_MS = 24 * 3600 * 1000


@dataclass
class IngestResult:
    accepted: int = 0
    duplicates: int = 0
    rejected: list[Rejected] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "success": not self.rejected,
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "rejected": [r.as_dict() for r in sorted(self.rejected, key=lambda r: r.index)],
        }


@dataclass(frozen=True)
class PreparedBatch:
    """A batch read and converted by `TrackingService.prepare`, for `ingest` to write."""

    messages: list[Message]  # new ones, without the dwell reports
    dwell: list[Message]
    duplicates: int
    known: dict[str, uuid.UUID]  # userId → contact, as read
    events: PreparedRows  # one row per message, in their order

    @property
    def writes(self) -> bool:
        return bool(self.messages or self.dwell)


@dataclass(frozen=True)
class Sender:
    """Who sent a request: the key's prefix (the events' source) and the client address,
    used for the country when the message does not carry `context.ip` itself."""

    source: str
    client_ip: str | None = None


class TrackingService:
    def __init__(self, settings: Settings, clock: Clock) -> None:
        self.settings = settings
        self.clock = clock

    @property
    def retention(self) -> timedelta:
        return self.settings.anonymous_retention

    def prepare(
        self,
        session: Session,
        messages: Sequence[Message],
        *,
        sender: Sender,
        received_at: datetime,
    ) -> PreparedBatch:
        """What can be done before the write transaction (so outside its lock), in a
        read-only one: drop duplicates, look up the known userIds, enrich the events and
        convert them for the driver. What was read may be stale by the time `ingest`
        writes; see there."""
        fresh, duplicates = self._without_duplicates(session, messages)
        dwell, fresh = _split_dwell(fresh)
        return PreparedBatch(
            messages=fresh,
            dwell=dwell,
            duplicates=duplicates,
            known=identity.known_contacts(session, fresh),
            events=events_repository.prepare_events(
                session.get_bind().dialect,
                [_event_row(message, sender, received_at) for message in fresh],
            ),
        )

    def ingest(
        self, session: Session, batch: PreparedBatch, *, received_at: datetime, where: str = "batch"
    ) -> IngestResult:
        """Identify and store a prepared batch, in the caller's write transaction.

        A message stored by another request since `prepare` read the messageIds fails the
        insert on the unique messageId (IntegrityError), as does an event for a contact
        merged away since: the caller then prepares and ingests the batch again, in a new
        transaction, and finds the duplicate.
        """
        result = IngestResult(duplicates=batch.duplicates)
        repository.serialize_ingestion(session)
        context = ApplyContext(
            now=received_at, secret_key=self.settings.secret_key, source="tracking"
        )
        resolution = identity.resolve(
            session,
            batch.messages,
            context=context,
            retention=self.retention,
            where=where,
            known=batch.known,
        )
        result.rejected.extend(
            Rejected(index, problems) for index, problems in resolution.rejected.items()
        )
        stored = [
            (position, resolution.contact_of.get(message.index))
            for position, message in enumerate(batch.messages)
            if message.index not in resolution.rejected
        ]
        store_prepared_events(session, batch.events, stored, now=received_at)
        refused_dwell = self._fold_dwell(session, batch.dwell, where)
        result.rejected.extend(refused_dwell)
        result.accepted = len(stored) + len(batch.dwell) - len(refused_dwell)
        return result

    def _without_duplicates(
        self, session: Session, messages: Sequence[Message]
    ) -> tuple[list[Message], int]:
        """Each messageId once: repeated in the batch, or stored by an earlier request;
        and how many were dropped."""
        seen: set[str] = set()
        unique: list[Message] = []
        for message in messages:
            if message.message_id not in seen:
                seen.add(message.message_id)
                unique.append(message)
        stored = events_repository.existing_message_ids(session, [m.message_id for m in unique])
        if stored:
            unique = [m for m in unique if m.message_id not in stored]
        return unique, len(messages) - len(unique)

    def _fold_dwell(self, session: Session, dwell: Sequence[Message], where: str) -> list[Rejected]:
        """Put each reported dwell time on the page view it belongs to (same visitor)."""
        if not dwell:
            return []
        rejected: list[Rejected] = []
        wanted: dict[str, list[tuple[Message, int]]] = {}
        for message in dwell:
            page_id = message.properties.get("page_message_id")
            milliseconds = message.properties.get("dwell_ms")
            location = f"{where}[{message.index}].properties" if where else "properties"
            if not isinstance(page_id, str) or not page_id:
                problem = FieldProblem(f"{location}.page_message_id", "is required")
                rejected.append(Rejected(message.index, [problem]))
            elif (
                isinstance(milliseconds, bool)
                or not isinstance(milliseconds, int | float)
                or not 0 <= milliseconds <= _MAX_DWELL_MS
            ):
                problem = FieldProblem(
                    f"{location}.dwell_ms",
                    f"must be a number of milliseconds up to {_MAX_DWELL_MS}",
                )
                rejected.append(Rejected(message.index, [problem]))
            else:
                wanted.setdefault(page_id, []).append((message, int(milliseconds)))
        updates = []
        for event in events_repository.by_message_ids(session, sorted(wanted)):
            reports = [
                milliseconds
                for message, milliseconds in wanted[event.message_id]
                if (message.anonymous_id is not None and event.anonymous_id == message.anonymous_id)
                or (message.user_id is not None and event.user_id == message.user_id)
            ]
            if event.type != "page" or not reports:
                continue  # only the visitor who viewed the page reports its dwell time
            milliseconds = reports[-1]
            updates.append(
                {"id": event.id, "properties": {**event.properties, "dwell_ms": milliseconds}}
            )
        events_repository.set_properties(session, updates)
        return rejected

    def link_visitor(
        self, session: Session, anonymous_id: str, contact_id: uuid.UUID, now: datetime
    ) -> int:
        """The visitor `anonymous_id` is the contact (forms and tracked email clicks prove
        it); returns how many anonymous events of the window were attributed."""
        return identity.link_visitors(
            session, {anonymous_id: contact_id}, now=now, retention=self.retention
        )

    def visitor(self, session: Session, anonymous_id: str) -> VisitorOut:
        found = repository.get(session, anonymous_id)
        if found is None:
            raise NotFound(f"no visitor with anonymous id {anonymous_id!r} (or it has expired)")
        return self._view(session, found)

    def visitors_of(self, session: Session, contact_id: uuid.UUID) -> list[VisitorOut]:
        return [self._view(session, v) for v in repository.of_contact(session, contact_id)]

    def _view(self, session: Session, visitor: Visitor) -> VisitorOut:
        state = "anonymous"
        if visitor.contact_id is not None:
            state = "monitored"
        return VisitorOut(
            anonymous_id=visitor.anonymous_id,
            state=state,
            contact_id=visitor.contact_id,
            first_seen_at=visitor.first_seen_at,
            last_seen_at=visitor.last_seen_at,
            linked_at=visitor.linked_at,
            expires_at=None if visitor.contact_id else visitor.last_seen_at + self.retention,
            held_events=events_repository.count_unattributed(session, visitor.anonymous_id),
        )

    def purge_anonymous(self, session: Session, now: datetime, *, limit: int = 10_000) -> int:
        """Delete what remains of visitors who did not identify within the window."""
        cutoff = now - self.retention
        purged = events_repository.purge_unattributed(session, received_before=cutoff, limit=limit)
        if purged < limit:
            purged += repository.purge_anonymous(session, last_seen_before=cutoff)
        return purged


def _split_dwell(messages: Sequence[Message]) -> tuple[list[Message], list[Message]]:
    dwell: list[Message] = []
    other: list[Message] = []
    for message in messages:
        (dwell if message.type == "track" and message.name == DWELL_EVENT else other).append(
            message
        )
    return dwell, other


def _event_row(message: Message, sender: Sender, received_at: datetime) -> dict[str, Any]:
    """Every column but `id` and `contact_id`, which the write transaction decides."""
    return {
        "anonymous_id": message.anonymous_id,
        "user_id": message.user_id,
        "message_id": message.message_id,
        "type": message.type,
        "name": message.name,
        "properties": message.properties,
        "context": enrich(message.context, sender.client_ip),
        "integrations": message.integrations,
        "source": sender.source,
        "occurred_at": message.occurred_at,
        "received_at": received_at,
    }
