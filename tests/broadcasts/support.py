"""Helpers of the broadcast tests: contacts, consents, segments and templates written
directly (the features that normally write them have their own tests)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from postillon.broadcasts.schemas import BroadcastIn
from postillon.broadcasts.tasks import BroadcastTask
from postillon.kit.ids import new_id
from postillon.kit.repository import insert_rows
from postillon.models import (
    Broadcast,
    Contact,
    ContactConsent,
    ContactTopic,
    EmailTemplate,
    Message,
    Segment,
    SegmentMembership,
)
from postillon.runtime import Runtime


def make_template(session: Session, runtime: Runtime, key: str, subject: str = "News") -> uuid.UUID:
    now = runtime.clock.now()
    template = EmailTemplate(
        id=new_id(), key=key, name=key, format="html", subject=subject, body="<p>Hi</p>",
        compiled_html="<p>Hi</p>", kind="marketing", topic="newsletter", version=1,
        created_at=now, updated_at=now,
    )  # fmt: skip
    session.add(template)
    session.flush()
    return template.id


def make_contacts(
    session: Session,
    runtime: Runtime,
    count: int,
    *,
    consent: str | None = "subscribed",
    timezone: str | None = None,
    with_email: bool = True,
) -> list[uuid.UUID]:
    """`count` contacts with an address each (unless not `with_email`) and this email
    consent (none for None)."""
    now = runtime.clock.now()
    ids = [new_id() for _ in range(count)]
    insert_rows(
        session,
        Contact,
        [
            {
                "id": contact_id,
                "email": f"{contact_id.hex}@example.com" if with_email else None,
                "timezone": timezone,
                "attributes": {},
                "score": 0,
                "state": "identified",
                "created_at": now,
                "updated_at": now,
            }
            for contact_id in ids
        ],
    )
    if consent is not None:
        insert_rows(
            session,
            ContactConsent,
            [
                {
                    "contact_id": contact_id,
                    "channel": "email",
                    "status": consent,
                    "changed_at": now,
                    "source": "test",
                }
                for contact_id in ids
            ],
        )
    return ids


def make_segment(
    session: Session,
    runtime: Runtime,
    key: str,
    members: Sequence[uuid.UUID],
    *,
    former: Sequence[uuid.UUID] = (),
) -> None:
    """A segment with these current members and these former ones (exited)."""
    now = runtime.clock.now()
    segment = Segment(
        id=new_id(), key=key, name=key, filter={"all": []}, member_count=len(members),
        created_at=now, updated_at=now,
    )  # fmt: skip
    session.add(segment)
    session.flush()
    rows = [
        {"segment_id": segment.id, "contact_id": c, "entered_at": now, "exited_at": None}
        for c in members
    ] + [
        {"segment_id": segment.id, "contact_id": c, "entered_at": now, "exited_at": now}
        for c in former
    ]
    insert_rows(session, SegmentMembership, rows)


def set_topic(
    session: Session, runtime: Runtime, contact_ids: Sequence[uuid.UUID], topic: str, status: str
) -> None:
    now = runtime.clock.now()
    insert_rows(
        session,
        ContactTopic,
        [
            {"contact_id": c, "topic": topic, "status": status, "changed_at": now, "source": "test"}
            for c in contact_ids
        ],
    )


def create(runtime: Runtime, **fields: Any) -> str:
    data = BroadcastIn.model_validate({"name": fields.get("key", "news"), **fields})
    with runtime.database.transaction() as session:
        return runtime.broadcasts.create(session, data).key


def run_broadcasts(runtime: Runtime, *, limit: int = 10_000) -> int:
    """Run the worker's broadcast task until it has nothing more to do now."""
    task = BroadcastTask()
    steps = 0
    while task.run_due(runtime, runtime.clock.now()):
        steps += 1
        assert steps < limit
    return steps


def broadcast(runtime: Runtime, key: str) -> Broadcast:
    with runtime.database.transaction(read_only=True) as session:
        found = session.scalars(select(Broadcast).where(Broadcast.key == key)).one()
        session.expunge(found)
        return found


def messages_of(runtime: Runtime, key: str) -> list[Message]:
    with runtime.database.transaction(read_only=True) as session:
        query = (
            select(Message)
            .join(Broadcast, Broadcast.id == Message.broadcast_id)
            .where(Broadcast.key == key)
            .order_by(Message.contact_id)
        )
        found = list(session.scalars(query))
        session.expunge_all()
        return found


def mark_sent(runtime: Runtime, key: str, at: datetime | None = None, **values: Any) -> None:
    """What the sender does: every queued message of the broadcast sent (and `values`)."""
    broadcast_id = broadcast(runtime, key).id
    with runtime.database.transaction() as session:
        session.execute(
            update(Message)
            .where(Message.broadcast_id == broadcast_id, Message.state == "queued")
            .values(state="sent", sent_at=at or runtime.clock.now(), **values)
        )
