"""Worker side of segments: the event-queue consumer that notes who changed, the task
that re-evaluates segments for them, and the scheduled full refresh."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from postillon.filters.parsing import parse_filter
from postillon.models import Event
from postillon.segments import membership, repository
from postillon.segments.refresh_queue import queue_contacts

if TYPE_CHECKING:
    from postillon.runtime import Runtime

logger = logging.getLogger("postillon.segments")


class SegmentEventConsumer:
    """Event-queue consumer: the contacts of new events are queued for re-evaluation.

    A contact's own `segment_entered` / `segment_exited` events matter only to segments
    that use that segment; for the others the refresh that wrote them has settled
    everything already (and queueing them would make every refresh run twice)."""

    name = "segment_membership"

    def handle(self, session: Session, events: Sequence[Event], now: datetime) -> None:
        used: set[str] | None = None
        touched: set[uuid.UUID] = set()
        for event in events:
            if event.contact_id is None or event.contact_id in touched:
                continue
            if event.name in (membership.SEGMENT_ENTERED, membership.SEGMENT_EXITED):
                if used is None:
                    used = _used_segments(session)
                if event.properties.get("segment") not in used:
                    continue
            touched.add(event.contact_id)
        queue_contacts(session, touched, now=now)


def _used_segments(session: Session) -> set[str]:
    used: set[str] = set()
    for segment in repository.all_segments(session):
        used |= membership.segment_references(parse_filter(segment.filter))
    return used


class ContactRefreshTask:
    """Re-evaluates every segment for a batch of queued contacts."""

    name = "segment_contact_refresh"

    def __init__(self, batch_size: int = 1000) -> None:
        self.batch_size = batch_size

    def run_due(self, runtime: Runtime, now: datetime) -> int:
        try:
            with runtime.database.transaction() as session:
                ids = repository.claim_refreshes(session, limit=self.batch_size)
                if ids:
                    runtime.segments.refresh_contacts(session, ids)
                return len(ids)
        except IntegrityError:
            # Another worker entered one of these contacts into a segment meanwhile; the
            # rows are back on the queue (rolled back) and the next round settles them.
            logger.info("segment refresh raced with another worker; retrying")
            return 0


class SegmentScheduleTask:
    """Fully refreshes segments not refreshed within `segment_refresh_interval`, one per
    transaction, so that conditions relative to the time stay true."""

    name = "segment_schedule"

    def run_due(self, runtime: Runtime, now: datetime) -> int:
        every = runtime.settings.segment_refresh_interval
        done = 0
        while done < 10:
            with runtime.database.transaction() as session:
                key = runtime.segments.refresh_due(session, every)
            if key is None:
                break
            logger.info("segment %s refreshed", key)
            done += 1
        return done
