"""Loading the demo shop: contacts through the contacts' own checks, events through
`store_events`, a chunk of contacts and their events per transaction.

A load is a job, like a CSV import: it owns its transactions, one per chunk, so memory
stays flat and a crash keeps what was committed. Each chunk is recognised by the external
id of its first contact, so running the load again stores only the chunks that are
missing, and on a database that holds the demo already it does nothing.

Demo events are history, not news: they are not put on the event queue (no consumer
should react to a year-old order), and the loader writes what the queue's consumer would
have derived (last seen) itself and asks for the contacts' segments to be refreshed.
"""

from __future__ import annotations

import contextlib
import gc
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from postillon.clock import Clock
from postillon.contacts.service import ContactService
from postillon.contacts.upsert import Mode
from postillon.demo import repository
from postillon.demo.behaviour import Window
from postillon.demo.generator import (
    SOURCE,
    DemoChunk,
    DemoContact,
    DemoOptions,
    chunk_size,
    chunk_starts,
    external_id,
    generate_chunk,
)
from postillon.events.service import store_events
from postillon.kit.db import Database
from postillon.segments.refresh_queue import queue_contacts

# (contacts done, contacts to do, events stored so far)
Progress = Callable[[int, int, int], None]


@dataclass
class DemoReport:
    options: DemoOptions
    contacts: int = 0
    events: int = 0
    orders: int = 0
    revenue: float = 0.0
    # Contacts of this demo found stored already (skipped).
    present: int = 0
    # The external id of a contact of another demo (another seed) found stored: then
    # nothing was loaded.
    other_demo: str | None = None
    seconds: float = 0.0

    @property
    def loaded(self) -> bool:
        return self.contacts > 0


class DemoService:
    def __init__(self, contacts: ContactService, clock: Clock) -> None:
        self.contacts = contacts
        self.clock = clock

    def has_contacts(self, session: Session) -> bool:
        """Whether the database holds any contact (the demo loads on a first start only)."""
        return repository.has_contacts(session)

    def missing_chunks(
        self, session: Session, options: DemoOptions
    ) -> tuple[list[int], str | None]:
        """The chunks of this demo that are not (completely) stored, by their first
        contact; or none, and the external id of a contact of another demo (seed) when
        the database holds one of those instead.

        A chunk is complete when its last contact is stored: a chunk's contacts and
        events are written in one transaction, and with more contacts asked for than
        before, the last chunk's last contact is a new one."""
        markers = {
            external_id(options.seed, first + chunk_size(options, first) - 1): first
            for first in chunk_starts(options)
        }
        stored = repository.stored_external_ids(session, markers)
        if not stored:
            other = repository.other_demo_external_id(session, external_id(options.seed, 0))
            if other is not None:
                return [], other
        return [first for marker, first in markers.items() if marker not in stored], None

    def load(
        self, database: Database, options: DemoOptions, *, progress: Progress | None = None
    ) -> DemoReport:
        """Store the chunks of the demo that are missing, one transaction each."""
        started = time.monotonic()
        report = DemoReport(options)
        with database.transaction(read_only=True) as session:
            missing, report.other_demo = self.missing_chunks(session, options)
        if report.other_demo is not None:
            return report
        todo = sum(chunk_size(options, first) for first in missing)
        report.present = options.contacts - todo
        now = self.clock.now()
        window = Window.ending(now, options.days)
        done = 0
        for first in missing:
            with _without_cyclic_gc():
                chunk = generate_chunk(options, window, first)
                with database.transaction() as session:
                    stored = self.load_chunk(session, chunk, now=now)
            done += len(chunk.contacts)
            report.present += len(chunk.contacts) - len(stored)
            report.contacts += len(stored)
            report.events += sum(len(c.events) for c in stored)
            report.orders += sum(c.orders for c in stored)
            report.revenue = round(report.revenue + sum(c.revenue for c in stored), 2)
            if progress is not None:
                progress(done, todo, report.events)
        report.seconds = time.monotonic() - started
        return report

    def load_chunk(self, session: Session, chunk: DemoChunk, *, now: datetime) -> list[DemoContact]:
        """Store the contacts of the chunk that are not stored yet, with their events, in
        the caller's transaction; returns those it stored."""
        stored = repository.stored_external_ids(
            session, [c.contact.external_id for c in chunk.contacts if c.contact.external_id]
        )
        new = [c for c in chunk.contacts if c.contact.external_id not in stored]
        if not new:
            return []
        checked = [self.contacts.check(c.contact) for c in new]
        # The demo people are history, like their events: no contact-change events (no
        # rule or journey should react to them, and the queue would take a while).
        outcomes = self.contacts.apply(
            session, checked, mode=Mode.upsert, source=SOURCE, record_changes=False
        )
        by_id: dict[uuid.UUID, DemoContact] = {}
        rows: list[dict[str, Any]] = []
        for outcome, contact in zip(outcomes, new, strict=True):
            assert outcome.contact_id is not None  # apply raises for failed items
            by_id[outcome.contact_id] = contact
            for row in contact.events:
                row["contact_id"] = outcome.contact_id
            rows.extend(contact.events)
        store_events(session, rows, now=now, queue_them=False)
        self._backdate(session, by_id)
        queue_contacts(session, list(by_id), now=now)
        return new

    def _backdate(self, session: Session, by_id: dict[uuid.UUID, DemoContact]) -> None:
        """The contacts were written as of now; give them the times of their story."""
        consent_events = []
        for event_id, contact_id, channel in repository.consent_events(session, list(by_id)):
            changed_at = by_id[contact_id].consent_changed_at.get(channel)
            if changed_at is not None:
                consent_events.append(
                    {"id": event_id, "occurred_at": changed_at, "received_at": changed_at}
                )
        repository.backdate(
            session,
            contacts=[
                {
                    "id": contact_id,
                    "created_at": contact.created_at,
                    "last_seen_at": contact.last_seen_at,
                    "last_seen": contact.last_seen,
                }
                for contact_id, contact in by_id.items()
            ],
            consents=[
                {"contact_id": contact_id, "channel": channel, "changed_at": changed_at}
                for contact_id, contact in by_id.items()
                for channel, changed_at in contact.consent_changed_at.items()
            ],
            tags=[
                {"contact_id": contact_id, "tag": tag, "added_at": added_at}
                for contact_id, contact in by_id.items()
                for tag, added_at in contact.tags_added_at.items()
            ],
            events=consent_events,
        )


@contextlib.contextmanager
def _without_cyclic_gc() -> Iterator[None]:
    """A chunk makes hundreds of thousands of dicts and tuples; reference counting frees
    them, but their number alone would make the cyclic collector run over and over (a
    quarter of the time). It runs again between chunks."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
