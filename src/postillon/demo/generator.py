"""The demo shop's contacts with their timelines, generated a few hundred at a time.

Every contact comes from its own random generator, seeded with the demo's seed and the
contact's number: contact 4711 of seed 1 is the same whatever else is generated, which is
what lets a load skip the chunks that are stored already. Generation is pure: the same
options and the same end of the window give the same data.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from postillon.contacts.schemas import ContactIn
from postillon.demo.behaviour import ContactStory, Timeline, Window
from postillon.demo.people import make_person

SOURCE = "demo"
CHUNK_CONTACTS = 500
_SPORTY = frozenset({"running", "fitness", "outdoor"})


@dataclass(frozen=True)
class DemoOptions:
    contacts: int = 10_000
    days: int = 365
    seed: int = 1

    def __post_init__(self) -> None:
        if self.contacts < 1:
            raise ValueError("the demo needs at least one contact")
        if not 1 <= self.days <= 3650:
            raise ValueError("the demo covers between 1 and 3650 days")


def external_id(seed: int, number: int) -> str:
    """The demo contact's external id: also how a load recognises what is stored."""
    return f"demo-{seed}-{number:05d}"


@dataclass
class DemoContact:
    """One contact to store: the input, its events (rows for `store_events` but for the
    contact id), and the times of what the contact input cannot date."""

    number: int
    contact: ContactIn
    events: list[dict[str, Any]]
    created_at: datetime
    consent_changed_at: dict[str, datetime]
    tags_added_at: dict[str, datetime]
    last_seen_at: datetime | None
    last_seen: dict[str, Any] | None
    orders: int
    revenue: float


@dataclass
class DemoChunk:
    """Contacts `first`…`first + len(contacts) - 1`, stored together in one transaction."""

    first: int
    contacts: list[DemoContact] = field(default_factory=list)


def chunk_starts(options: DemoOptions) -> list[int]:
    return list(range(1, options.contacts + 1, CHUNK_CONTACTS))


def chunk_size(options: DemoOptions, first: int) -> int:
    return min(options.contacts, first + CHUNK_CONTACTS - 1) - first + 1


def generate_chunk(options: DemoOptions, window: Window, first: int) -> DemoChunk:
    chunk = DemoChunk(first)
    for number in range(first, first + chunk_size(options, first)):
        chunk.contacts.append(generate_contact(options.seed, number, window))
    return chunk


def generate(options: DemoOptions, end: datetime) -> Iterator[DemoChunk]:
    """Every chunk of the demo whose window ends at `end`, one at a time."""
    window = Window.ending(end, options.days)
    for first in chunk_starts(options):
        yield generate_chunk(options, window, first)


def generate_contact(seed: int, number: int, window: Window) -> DemoContact:
    rng = random.Random(f"postillon-demo:{seed}:{number}")
    person = make_person(rng, number, window.end.date())
    wholesale = rng.random() < 0.015
    timeline = ContactStory(rng, person, window, wholesale=wholesale).tell()
    if wholesale:
        timeline.tags["wholesale"] = timeline.created
    if person.favourite_category in _SPORTY and rng.random() < 0.5:
        timeline.tags["sports-fan"] = timeline.created
    loyalty = "vip" in timeline.tags or rng.random() < (0.25 if timeline.orders else 0.03)
    ext_id = external_id(seed, number)
    at = _clock(window)
    attributes: dict[str, Any] = {
        "city": person.city.name,
        "country": person.country.code,
        "loyalty_member": loyalty,
    }
    if rng.random() < 0.9:
        attributes["gender"] = person.gender
    if rng.random() < 0.85:
        attributes["birthday"] = person.birthday.isoformat()
    if rng.random() < 0.8:
        attributes["favourite_category"] = person.favourite_category
    if rng.random() < 0.6:
        attributes["shoe_size"] = person.shoe_size
    if timeline.email_status == "subscribed":
        attributes["newsletter_topics"] = list(person.newsletter_topics)
    consent: dict[Any, Any] = {}
    consent_changed_at = {}
    if timeline.email_status is not None:
        consent["email"] = {"status": timeline.email_status, "source": SOURCE}
        consent_changed_at["email"] = at(timeline.email_changed)
    if person.phone is not None and rng.random() < 0.5:
        consent["sms"] = {"status": "subscribed", "source": SOURCE}
        consent_changed_at["sms"] = at(timeline.created)
    contact = ContactIn(
        external_id=ext_id,
        email=person.email,
        phone=person.phone,
        first_name=person.first_name,
        last_name=person.last_name,
        attributes=attributes,
        tags=sorted(timeline.tags),
        consent=consent,
        lifecycle_stage=_lifecycle_stage(timeline, wholesale),
        timezone=person.city.timezone,
        locale=person.country.locale,
    )
    return DemoContact(
        number=number,
        contact=contact,
        events=_event_rows(seed, number, ext_id, timeline, window),
        created_at=at(timeline.created),
        consent_changed_at=consent_changed_at,
        tags_added_at={tag: at(t) for tag, t in timeline.tags.items()},
        last_seen_at=at(timeline.last_active) if timeline.last_active is not None else None,
        last_seen=dict(timeline.last_device) if timeline.last_device else None,
        orders=timeline.orders,
        revenue=timeline.revenue,
    )


def _clock(window: Window) -> Callable[[float], datetime]:
    start, span = window.start, window.span

    def at(t: float) -> datetime:
        # Whole milliseconds, as browsers send them; never after the end of the window.
        return start + timedelta(milliseconds=int(min(t, span - 0.001) * 1000))

    return at


def _lifecycle_stage(timeline: Timeline, wholesale: bool) -> str:
    if timeline.orders:
        return "churned" if timeline.persona.churns else "customer"
    if wholesale:
        return "opportunity" if timeline.carts else "sql"
    if timeline.carts or timeline.sessions >= 5 or timeline.clicks >= 2:
        return "mql"
    if timeline.sessions >= 2:
        return "lead"
    return "subscriber"


def _event_rows(
    seed: int, number: int, user_id: str, timeline: Timeline, window: Window
) -> list[dict[str, Any]]:
    """The timeline as event rows; its times are all within the window (`tell` dropped
    the rest), so they need no clamping."""
    rows = []
    start = window.start
    prefix = f"demo-{seed}-{number}-"
    for index, (t, _, kind, name, properties, context) in enumerate(timeline.events):
        moment = start + timedelta(milliseconds=int(t * 1000))
        rows.append(
            {
                "contact_id": None,
                "anonymous_id": None,
                "user_id": user_id,
                "message_id": prefix + str(index),
                "type": kind,
                "name": name,
                "properties": properties,
                "context": context,
                "integrations": None,
                "source": SOURCE,
                "occurred_at": moment,
                "received_at": moment,
            }
        )
    return rows
