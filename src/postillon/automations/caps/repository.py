"""Every query of collision control: the frequency caps, the contacts' zones, the per-contact
lock and the marketing messages counted against the caps."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import (
    BigInteger,
    String,
    and_,
    bindparam,
    case,
    column,
    delete,
    func,
    select,
    text,
    values,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from postillon.kit.repository import chunked, one_of, table_of
from postillon.kit.types import UTCDateTime, Uuid
from postillon.models import Contact, FrequencyCap, Message

# Messages that never reach the recipient do not count against a cap.
UNCOUNTED_STATES = ("suppressed", "cancelled", "failed")
# A message counts at the moment it reaches the recipient (see `marketing_counts`), which
# can be later than when it was queued; the query looks back this far by `queued_at` (the
# indexed column) for messages that reach the recipient in the week asked about.
LONGEST_LEAD = timedelta(days=31)
# The chunk of (contact, channel) bounds one counting statement takes.
_BOUNDS_CHUNK = 1000


def all_caps(session: Session) -> list[FrequencyCap]:
    return list(session.scalars(select(FrequencyCap).order_by(FrequencyCap.channel)))


def caps_for(session: Session, channels: Collection[str]) -> dict[str, FrequencyCap]:
    if not channels:
        return {}
    query = select(FrequencyCap).where(FrequencyCap.channel.in_(sorted(channels)))
    return {cap.channel: cap for cap in session.scalars(query)}


def save_cap(
    session: Session, channel: str, *, per_day: int | None, per_week: int | None, now: datetime
) -> None:
    """Insert or replace the channel's caps."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(table_of(FrequencyCap)).values(
        channel=channel, per_day=per_day, per_week=per_week, updated_at=now
    )
    statement = statement.on_conflict_do_update(
        index_elements=["channel"],
        set_={
            "per_day": statement.excluded.per_day,
            "per_week": statement.excluded.per_week,
            "updated_at": statement.excluded.updated_at,
        },
    )
    session.execute(statement)


def delete_cap(session: Session, channel: str) -> None:
    session.execute(delete(FrequencyCap).where(FrequencyCap.channel == channel))


def timezones_of(
    session: Session, contact_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, str | None]:
    found: dict[uuid.UUID, str | None] = {}
    for part in chunked(sorted(contact_ids)):
        query = select(Contact.id, Contact.timezone).where(one_of(session, Contact.id, part))
        found.update({contact_id: zone for contact_id, zone in session.execute(query)})
    return found


def serialize_contacts(session: Session, contact_ids: Collection[uuid.UUID]) -> None:
    """On PostgreSQL, one decider at a time per contact until the transaction ends: two
    workers counting a contact's messages at once would both see room under a cap and
    both send. Transaction-scoped advisory locks, taken in key order so that two batches
    sharing contacts cannot deadlock. SQLite's write lock already does this."""
    if not contact_ids or session.get_bind().dialect.name != "postgresql":
        return
    keys = sorted({lock_key(contact_id) for contact_id in contact_ids})
    statement = text(
        "SELECT pg_advisory_xact_lock(key) FROM"
        " (SELECT key FROM unnest(:keys) AS key ORDER BY key) AS ordered"
    ).bindparams(bindparam("keys", type_=postgresql.ARRAY(BigInteger)))
    session.execute(statement, {"keys": keys})


def lock_key(contact_id: uuid.UUID) -> int:
    """The contact's advisory lock key: 64 bits of a hash, the same in every process."""
    digest = hashlib.blake2b(b"postillon.send_gate:" + contact_id.bytes, digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


@dataclass(frozen=True)
class CountBounds:
    """Count a contact's marketing messages on a channel in its local day and week."""

    contact_id: uuid.UUID
    channel: str
    day_start: datetime
    day_end: datetime
    week_start: datetime
    week_end: datetime


def marketing_counts(
    session: Session, bounds: Sequence[CountBounds]
) -> dict[tuple[uuid.UUID, str], tuple[int, int]]:
    """(contact, channel) → (messages in its day, in its week), one grouped statement per
    1,000 pairs, the pairs' bounds joined in as a VALUES list.

    A message counts at the moment it reaches (or is to reach) the recipient: `sent_at`
    once sent, else `due_at`. Not `queued_at`: a local-time broadcast queues a Berlin
    contact's 10:00 message the evening before (when the first zone on Earth reaches
    10:00), a throttled broadcast spreads due times over hours, a retried message goes
    later, and each of these lands in the recipient's day when it arrives. A message due
    later today (a broadcast this evening) therefore counts today already, and one due
    tomorrow counts tomorrow. Messages that never reach anyone (suppressed, cancelled,
    failed) do not count; `unknown` ones may have, and do."""
    found: dict[tuple[uuid.UUID, str], tuple[int, int]] = {}
    for part in chunked(bounds, _BOUNDS_CHUNK):
        listed = (
            values(
                column("contact_id", Uuid),
                column("channel", String),
                column("day_start", UTCDateTime),
                column("day_end", UTCDateTime),
                column("week_start", UTCDateTime),
                column("week_end", UTCDateTime),
                column("scan_from", UTCDateTime),
                name="bounds",
            )
            .data(
                [
                    (
                        b.contact_id,
                        b.channel,
                        b.day_start,
                        b.day_end,
                        b.week_start,
                        b.week_end,
                        b.week_start - LONGEST_LEAD,
                    )
                    for b in part
                ]
            )
            .cte("bounds")
        )
        arrives = func.coalesce(Message.sent_at, Message.due_at)
        today = func.sum(
            case((and_(arrives >= listed.c.day_start, arrives < listed.c.day_end), 1), else_=0)
        )
        query = (
            select(listed.c.contact_id, listed.c.channel, today, func.count())
            .select_from(listed)
            .join(
                Message,
                and_(
                    Message.contact_id == listed.c.contact_id,
                    Message.channel == listed.c.channel,
                    Message.queued_at >= listed.c.scan_from,
                ),
            )
            .where(
                Message.kind == "marketing",
                Message.state.not_in(UNCOUNTED_STATES),
                arrives >= listed.c.week_start,
                arrives < listed.c.week_end,
            )
            .group_by(listed.c.contact_id, listed.c.channel)
        )
        for contact_id, channel, day_count, week_count in session.execute(query):
            found[(contact_id, channel)] = (int(day_count or 0), int(week_count))
    return found
