"""Worker tasks: contacts enter journeys on dates (`JourneyDateTask`) and on recurring
schedules (`JourneyScheduleTask`) at local times (see `schedules.py`).

Each round reads which journeys' marks are due (one query); each due journey is then
handled in a transaction of its own, so that one that fails (its mark is postponed and
the error raised after the others) holds up no other. Marks are due at the next trigger
moment known and at least every `tick` (5 minutes, on the :00, :05 … of the clock), so a
new zone, contact or version is seen within a tick. A paused journey's mark moves on
without entries: contacts due while it was paused do not enter when it resumes.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from postillon.automations import schedules
from postillon.automations.definitions import Published, Status
from postillon.kit.repository import chunked

if TYPE_CHECKING:
    from postillon.runtime import Runtime

logger = logging.getLogger("postillon.automations")

# After a failure, the journey's mark is due again this much later.
_RETRY_AFTER = timedelta(minutes=5)


class _TriggerTask(ABC):
    name: str
    kind: str

    def __init__(
        self,
        *,
        tick: timedelta = timedelta(minutes=5),
        chunk: int = 2000,
        grace: timedelta | None = None,
    ) -> None:
        self.tick = tick
        self.chunk = chunk
        # How far back missed trigger moments are still handled (None: the setting).
        self.grace = grace

    def run_due(self, runtime: Runtime, now: datetime) -> int:
        with runtime.database.transaction(read_only=True) as session:
            definitions = runtime.definitions.load(session)
            journeys = [j for j in definitions.journeys() if schedules.trigger_kind(j) == self.kind]
            if not journeys:
                return 0
            marks = schedules.due_marks(session, self.kind)
        due = [
            journey
            for journey in journeys
            if marks.get(schedules.mark_name(self.kind, journey.id), now) <= now
        ]
        entered = 0
        zones: list[str | None] | None = None
        failure: Exception | None = None
        for journey in due:
            try:
                with runtime.database.transaction() as session:
                    if zones is None:
                        zones = schedules.contact_zones(session)
                    found = self.collect(runtime, session, journey, now, zones=zones)
                    if found is not None and found.entrants:
                        for part in chunked(found.entrants, self.chunk):
                            runtime.journeys.enter(session, definitions, journey, part, now=now)
                        entered += len(found.entrants)
            except Exception as error:
                logger.exception("journey %s: its %s trigger failed", journey.key, self.kind)
                with runtime.database.transaction() as session:
                    schedules.postpone(session, self.kind, journey.id, until=now + _RETRY_AFTER)
                failure = failure or error
        if failure is not None:
            raise failure
        return entered

    def collect(
        self,
        runtime: Runtime,
        session: Session,
        journey: Published,
        now: datetime,
        *,
        zones: list[str | None] | None = None,
    ) -> schedules.Due | None:
        """Take the journey's mark if due and say who enters for its trigger moments up
        to `now` (nobody while it is paused); the mark moves on in `session`, whose
        transaction must also enter them. None: the mark was not due."""
        grace = self.grace or runtime.settings.journey_trigger_grace
        window = schedules.claim(session, self.kind, journey, now=now, grace=grace)
        if window is None:
            return None
        next_due = schedules.next_tick(now, self.tick)
        due = schedules.Due([], None)
        if journey.status == Status.active:
            if zones is None:
                zones = schedules.contact_zones(session)
            due = self._due(runtime, session, journey, window, zones)
            if due.next_moment is not None:
                next_due = min(next_due, due.next_moment)
        schedules.advance(session, self.kind, journey.id, handled_until=now, next_due=next_due)
        return due

    @abstractmethod
    def _due(
        self,
        runtime: Runtime,
        session: Session,
        journey: Published,
        window: schedules.Window,
        zones: list[str | None],
    ) -> schedules.Due:
        """Who is due in the window, and the next moment anyone can be."""


class JourneyDateTask(_TriggerTask):
    """Contacts enter journeys with a date trigger (birthdays, anniversaries)."""

    name = "journey_dates"
    kind = schedules.DATE

    def _due(
        self,
        runtime: Runtime,
        session: Session,
        journey: Published,
        window: schedules.Window,
        zones: list[str | None],
    ) -> schedules.Due:
        return schedules.date_entrants(session, journey, window, zones)


class JourneyScheduleTask(_TriggerTask):
    """Everyone matching a scheduled journey's conditions enters at each occurrence."""

    name = "journey_schedules"
    kind = schedules.SCHEDULE

    def _due(
        self,
        runtime: Runtime,
        session: Session,
        journey: Published,
        window: schedules.Window,
        zones: list[str | None],
    ) -> schedules.Due:
        return schedules.schedule_entrants(session, runtime.filters, journey, window, zones)
