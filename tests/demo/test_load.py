"""Loading the demo shop into the database: contacts checked like any other, events with
their contacts, in chunks; loading again adds nothing."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select

from postillon.clock import VirtualClock
from postillon.contacts.schemas import ConsentIn
from postillon.demo import generator
from postillon.demo.behaviour import Window
from postillon.demo.generator import DemoOptions
from postillon.models import (
    AttributeDefinition,
    Contact,
    ContactConsent,
    ContactRefresh,
    ContactTag,
    Event,
    EventQueueItem,
)
from postillon.runtime import Runtime
from tests.support.files import stored_contacts

OPTIONS = DemoOptions(contacts=60, days=365, seed=1)


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks of 25 contacts, so that 60 contacts make three of them."""
    monkeypatch.setattr(generator, "CHUNK_CONTACTS", 25)


def count(runtime: Runtime, model: type[object], *conditions: object) -> int:
    with runtime.database.transaction(read_only=True) as session:
        query = select(func.count()).select_from(model)  # type: ignore[arg-type]
        return int(session.scalar(query.where(*conditions)) or 0)  # type: ignore[arg-type]


def test_the_demo_goes_in_with_its_contacts_events_and_times(
    runtime: Runtime, clock: VirtualClock
) -> None:
    progress: list[tuple[int, int, int]] = []

    report = runtime.demo.load(
        runtime.database, OPTIONS, progress=lambda *step: progress.append(step)
    )

    assert (report.contacts, report.present, report.other_demo) == (60, 0, None)
    assert report.orders > 0 and report.revenue > 0
    assert [step[:2] for step in progress] == [(25, 60), (50, 60), (60, 60)]
    assert progress[-1][2] == report.events
    assert count(runtime, Contact) == 60
    assert count(runtime, Event, Event.source == "demo") == report.events
    orders = count(runtime, Event, Event.name == "Order Completed")
    assert orders == report.orders
    now = clock.now()
    start = now - timedelta(days=365)
    with runtime.database.transaction(read_only=True) as session:
        contacts = {c.id: c for c in session.scalars(select(Contact))}
        timelines: dict[object, list[tuple[datetime, int, str]]] = defaultdict(list)
        query = select(Event.contact_id, Event.occurred_at, Event.id, Event.message_id).where(
            Event.source == "demo"
        )
        for contact_id, occurred_at, event_id, message_id in session.execute(query):
            assert contact_id in contacts, "every event belongs to a stored contact"
            assert start <= occurred_at < now
            timelines[contact_id].append((occurred_at, event_id, message_id))
        consents = list(session.scalars(select(ContactConsent)))
        tags = list(session.scalars(select(ContactTag)))
        types = {d.name: d.type for d in session.scalars(select(AttributeDefinition))}
    assert set(timelines) == set(contacts)
    for contact_id, events in timelines.items():
        events.sort()
        # Stored in the order of the story: by time, the event ids and message ids agree.
        assert [int(m.rsplit("-", 1)[1]) for _, _, m in events] == list(range(len(events)))
        assert contacts[contact_id].created_at <= events[0][0]
    assert all(start <= c.created_at < now for c in contacts.values())
    assert any(c.created_at < now - timedelta(days=180) for c in contacts.values())
    assert any(c.last_seen_at is not None and c.last_seen for c in contacts.values())
    assert all(start <= c.changed_at < now for c in consents)
    assert all(start <= t.added_at < now for t in tags)
    assert types["birthday"] == "date"
    assert types["newsletter_topics"] == "list"
    assert types["loyalty_member"] == "boolean"
    assert types["shoe_size"] == "number"
    assert types["city"] == "string"
    # History is not news: no consumer is asked to react to the demo's events, but the
    # contacts' segments are to be brought up to date.
    with runtime.database.transaction(read_only=True) as session:
        queued = session.scalars(select(EventQueueItem)).all()
        demo_ids = set(session.scalars(select(Event.id).where(Event.source == "demo")))
    assert not any(first in demo_ids for item in queued for first, _ in item.event_ranges)
    assert count(runtime, ContactRefresh) == 60
    # The consent decisions are on the timeline as of their time.
    assert count(runtime, Event, Event.name == "consent_changed") == len(consents)
    assert count(runtime, Event, Event.name == "consent_changed", Event.occurred_at < start) == 0


def test_contacts_are_stored_as_the_api_shows_any_contact(runtime: Runtime) -> None:
    runtime.demo.load(runtime.database, OPTIONS)

    contacts = stored_contacts(runtime, key="external_id")

    assert sorted(contacts) == [f"demo-1-{n:05d}" for n in range(1, 61)]
    generated = {
        c.number: c
        for c in generator.generate_chunk(
            OPTIONS, Window.ending(runtime.clock.now(), OPTIONS.days), 1
        ).contacts
    }
    for number, demo in generated.items():
        stored = contacts[f"demo-1-{number:05d}"]
        expected = demo.contact
        assert stored["email"] == expected.email
        assert (stored["first_name"], stored["last_name"]) == (
            expected.first_name,
            expected.last_name,
        )
        assert stored["attributes"] == expected.attributes
        assert stored["tags"] == expected.tags
        assert stored["lifecycle_stage"] == expected.lifecycle_stage
        assert (stored["timezone"], stored["locale"]) == (expected.timezone, expected.locale)
        assert stored["consent"].keys() == expected.consent.keys()
        for channel, consent in expected.consent.items():
            assert isinstance(consent, ConsentIn)
            assert stored["consent"][channel] | {"changed_at": None} == {
                "status": consent.status,
                "source": "demo",
                "changed_at": None,
            }
        assert datetime.fromisoformat(stored["created_at"]) == demo.created_at


def test_loading_again_adds_nothing_and_more_contacts_add_only_those(runtime: Runtime) -> None:
    first = runtime.demo.load(runtime.database, OPTIONS)
    events = count(runtime, Event)

    again = runtime.demo.load(runtime.database, OPTIONS)

    assert not again.loaded
    assert (again.contacts, again.present, again.events) == (0, 60, 0)
    assert count(runtime, Event) == events
    assert count(runtime, Contact) == 60

    more = runtime.demo.load(runtime.database, DemoOptions(contacts=70, seed=1))

    assert (more.contacts, more.present) == (10, 60)
    assert count(runtime, Contact) == 70
    assert count(runtime, Event, Event.source == "demo") == first.events + more.events


def test_a_chunk_left_out_by_a_crash_is_loaded_by_the_next_run(runtime: Runtime) -> None:
    runtime.demo.load(runtime.database, OPTIONS)
    with runtime.database.transaction() as session:
        # As if the second chunk's transaction had never committed.
        doomed = session.scalars(
            select(Contact).where(Contact.external_id.in_(["demo-1-00050", "demo-1-00049"]))
        ).all()
        for contact in doomed:
            session.delete(contact)
    assert count(runtime, Contact) == 58

    report = runtime.demo.load(runtime.database, OPTIONS)

    assert (report.contacts, report.present) == (2, 58)
    assert count(runtime, Contact) == 60


def test_another_seed_is_not_loaded_over_a_demo(runtime: Runtime) -> None:
    runtime.demo.load(runtime.database, OPTIONS)

    report = runtime.demo.load(runtime.database, DemoOptions(contacts=60, seed=2))

    assert report.other_demo is not None and report.other_demo.startswith("demo-1-")
    assert not report.loaded
    assert count(runtime, Contact) == 60
