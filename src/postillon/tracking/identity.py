"""Who each message is about: contacts by userId and traits, visitors by anonymousId.

Works on a whole batch with a fixed number of queries, except for `alias` messages (rare),
which may merge two contacts.

- A userId is a contact's external id. A message for an unknown userId creates the contact.
- identify applies its traits to the contact (an email alone is enough to find or create
  one). Bad traits reject that message only.
- A message carrying both a userId (or an identified email) and an anonymousId links the
  visitor to the contact: the visitor's anonymous events of the retention window are
  attributed to the contact, which becomes *monitored*; later anonymous events of that
  visitor go to the contact directly.
- alias(userId, previousId): if both name contacts, they are one person and are merged; if
  only previousId does, that contact takes userId as its external id; otherwise previousId
  is an anonymous id and its visitor is linked to userId's contact.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from postillon.contacts import repository as contacts_repository
from postillon.contacts.changes import ContactChanges
from postillon.contacts.merge import merge_contacts
from postillon.contacts.upsert import ApplyContext, Mode, apply_changes
from postillon.errors import FieldProblem
from postillon.events import repository as events_repository
from postillon.tracking import repository
from postillon.tracking.segment import Message
from postillon.tracking.traits import changes_from_message


@dataclass
class Resolution:
    """The contact of each message (by index in the batch); messages refused on the way."""

    contact_of: dict[int, uuid.UUID] = field(default_factory=dict)
    rejected: dict[int, list[FieldProblem]] = field(default_factory=dict)
    attributed: int = 0


def known_contacts(session: Session, messages: Sequence[Message]) -> dict[str, uuid.UUID]:
    """The stored contacts of the messages' userIds (and aliases' previousIds)."""
    user_ids = {m.user_id for m in messages if m.user_id is not None}
    user_ids.update(
        m.previous_id for m in messages if m.type == "alias" and m.previous_id is not None
    )
    return contacts_repository.ids_by_external_id(session, user_ids)


def resolve(
    session: Session,
    messages: Sequence[Message],
    *,
    context: ApplyContext,
    retention: timedelta,
    where: str,
    known: dict[str, uuid.UUID] | None = None,
) -> Resolution:
    """`known`: what `known_contacts` read before this transaction, if it did. It may be
    stale: a userId created since is found again by the upsert, and an event for a
    contact merged away since fails its foreign key (the caller runs the batch again).
    A batch with aliases reads them again here, since it may merge or rename contacts."""
    result = Resolution()
    aliases = [m for m in messages if m.type == "alias"]
    known = known_contacts(session, messages) if known is None or aliases else dict(known)

    # Contacts to create or change: every identify, and the first message of each unknown
    # userId (an alias whose previousId is a known contact renames it instead).
    renamed = {m.user_id for m in aliases if m.previous_id in known and m.user_id not in known}
    pending: list[tuple[Message, ContactChanges]] = []
    asked: set[str] = set()
    for message in messages:
        location = f"{where}[{message.index}]" if where else ""
        if message.type == "identify":
            changes = changes_from_message(message, location)
            if message.user_id is None and "email" not in changes.values:
                continue  # anonymous traits stay on the event only
            pending.append((message, changes))
        elif (
            message.user_id is not None
            and message.user_id not in known
            and message.user_id not in asked
            and message.user_id not in renamed
        ):
            asked.add(message.user_id)
            pending.append((message, changes_from_message(message, location)))
    if pending:
        outcomes = apply_changes(
            session, [changes for _, changes in pending], mode=Mode.upsert, context=context
        )
        for (message, _), outcome in zip(pending, outcomes, strict=True):
            if outcome.error is not None:
                problems = list(outcome.error.problems) or [
                    FieldProblem(location_of(message, where), outcome.error.message)
                ]
                result.rejected[message.index] = problems
                continue
            assert outcome.contact_id is not None
            result.contact_of[message.index] = outcome.contact_id
            if message.user_id is not None:
                known[message.user_id] = outcome.contact_id

    links: dict[str, uuid.UUID] = {}
    merged: dict[uuid.UUID, uuid.UUID] = {}
    for alias in aliases:
        if alias.index in result.rejected:
            continue
        contact_id = _apply_alias(session, alias, known, links, merged, context.now)
        if contact_id is not None:
            result.contact_of[alias.index] = contact_id
    if merged:
        result.contact_of = {i: merged.get(c, c) for i, c in result.contact_of.items()}
        known.update({uid: merged.get(c, c) for uid, c in known.items()})

    for message in messages:
        if message.index in result.rejected or message.type == "alias":
            continue
        contact_id = result.contact_of.get(message.index)
        if contact_id is None and message.user_id is not None:
            contact_id = known.get(message.user_id)
        if contact_id is not None:
            result.contact_of[message.index] = contact_id
            if message.anonymous_id is not None:
                links[message.anonymous_id] = contact_id

    result.attributed = _track_visitors(session, messages, result, links, context.now, retention)
    return result


def link_visitors(
    session: Session, links: dict[str, uuid.UUID], *, now: datetime, retention: timedelta
) -> int:
    """Link anonymous ids to contacts proven to be them (a form submitted with an email, a
    tracked email click in a browser with the cookie…): their anonymous events of the
    window are attributed and the contacts become monitored. Returns the events attributed."""
    return _track_visitors(session, [], Resolution(), links, now, retention)


def location_of(message: Message, where: str) -> str:
    return f"{where}[{message.index}]" if where else "body"


def _apply_alias(
    session: Session,
    alias: Message,
    known: dict[str, uuid.UUID],
    links: dict[str, uuid.UUID],
    merged: dict[uuid.UUID, uuid.UUID],
    now: datetime,
) -> uuid.UUID | None:
    assert alias.user_id is not None and alias.previous_id is not None
    current = known.get(alias.user_id)
    previous = known.get(alias.previous_id)
    if previous is not None and current is not None and previous != current:
        merge_contacts(
            session,
            survivor_id=current,
            absorbed_id=previous,
            reason=f"alias: {alias.previous_id} is {alias.user_id}",
            now=now,
        )
        merged.update({absorbed: current for absorbed, c in merged.items() if c == previous})
        merged[previous] = current
        known[alias.previous_id] = current
        return current
    if previous is not None and current is None:
        contacts_repository.set_external_id(session, previous, alias.user_id, now)
        known[alias.user_id] = previous
        return previous
    if current is not None:
        links[alias.previous_id] = current
        if alias.anonymous_id is not None:
            links[alias.anonymous_id] = current
    return current


def _track_visitors(
    session: Session,
    messages: Sequence[Message],
    result: Resolution,
    links: dict[str, uuid.UUID],
    now: datetime,
    retention: timedelta,
) -> int:
    """Record every anonymous id seen, link the ones proven to be a contact, attribute
    their recent anonymous history, and send their anonymous messages to the contact."""
    anonymous_ids = {m.anonymous_id for m in messages if m.anonymous_id is not None}
    anonymous_ids.update(links)
    if not anonymous_ids:
        return 0
    stored = repository.visitors_by_id(session, anonymous_ids)
    new_links = {aid: cid for aid, cid in links.items() if stored.get(aid) != cid}
    new_rows = [
        {
            "anonymous_id": aid,
            "contact_id": links.get(aid),
            "first_seen_at": now,
            "last_seen_at": now,
            "linked_at": now if aid in links else None,
        }
        for aid in sorted(anonymous_ids - stored.keys())
    ]
    repository.insert_visitors(session, new_rows)
    repository.mark_seen(session, sorted(stored.keys() - new_links.keys()), now)
    repository.update_visitors(
        session,
        [
            {"anonymous_id": aid, "last_seen_at": now, "contact_id": cid, "linked_at": now}
            for aid, cid in sorted(new_links.items())
            if aid in stored
        ],
    )
    attributed = events_repository.attribute_anonymous(session, new_links, since=now - retention)
    contacts_repository.mark_monitored(session, set(new_links.values()), now)

    for message in messages:
        if message.index in result.contact_of or message.index in result.rejected:
            continue
        if message.anonymous_id is None:
            continue
        linked = links.get(message.anonymous_id) or stored.get(message.anonymous_id)
        if linked is not None:
            result.contact_of[message.index] = linked
    return attributed
