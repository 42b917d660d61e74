"""Computed traits: refreshed for everyone by the worker (`tasks.TraitsRefreshTask`) and
on demand, read per contact. The definitions are in `purchases`, `rfm` and
`repository` (engagement windows, purchase frequency)."""

from __future__ import annotations

import uuid
from collections.abc import Collection

from sqlalchemy.orm import Session

from postillon.clock import Clock
from postillon.contacts import repository as contacts_repository
from postillon.errors import InvalidInput, NotFound
from postillon.kit.ids import sorted_ids
from postillon.kit.repository import chunked
from postillon.segments.refresh_queue import queue_contacts
from postillon.settings import Settings
from postillon.traits import repository
from postillon.traits.schemas import TraitsOut

# Contacts refreshed by one statement when ids are given.
_CHUNK = 1000
_MAX_IDS = 100_000


class TraitsService:
    def __init__(self, settings: Settings, clock: Clock) -> None:
        self.settings = settings
        self.clock = clock

    def refresh(
        self, session: Session, contact_ids: Collection[uuid.UUID] | None = None
    ) -> list[uuid.UUID]:
        """Recompute the traits of every contact, or of `contact_ids`; rewrite the rows
        that changed and queue those contacts for a segment refresh. Returns them.

        A refresh for some contacts gives them the RFM scores a full refresh would (their
        values ranked among the stored values of everyone else); everyone else's scores
        follow at the next full refresh. Refreshes run one at a time.
        """
        if contact_ids is not None and len(contact_ids) > _MAX_IDS:
            raise InvalidInput.at("contact_ids", f"at most {_MAX_IDS} contacts at once")
        now = self.clock.now()
        repository.serialize_refreshes(session)
        event = self.settings.purchase_event
        if contact_ids is None:
            changed = repository.refresh(session, now=now, purchase_event=event, contact_ids=None)
        else:
            changed = []
            for part in chunked(sorted_ids(set(contact_ids)), _CHUNK):
                changed += repository.refresh(
                    session, now=now, purchase_event=event, contact_ids=part
                )
        queue_contacts(session, changed, now=now)
        return changed

    def traits_of(self, session: Session, contact_id: uuid.UUID) -> TraitsOut:
        """404 if there is no such contact; empty traits if not computed yet."""
        found = repository.traits_of(session, contact_id)
        if found is not None:
            return TraitsOut.model_validate(found)
        if contacts_repository.get(session, contact_id) is None:
            raise NotFound(f"no contact with id {contact_id}")
        empty = dict.fromkeys(TraitsOut.model_fields)
        return TraitsOut.model_validate({**empty, "contact_id": contact_id})
