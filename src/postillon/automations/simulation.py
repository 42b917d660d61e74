"""Simulation: the real engine on a virtual clock, in seconds.

`Simulation` drives a runtime whose clock is a `VirtualClock`: it plays planned events
(what the contact does, when), and between them jumps the clock straight to the next
moment something is due (a journey step, a wait's timeout, a queued message, an event
queue item, a periodic job), running the worker's tasks there until nothing is left to
do. Nothing is faked: events go through `store_events` and the event queue, steps
through the journey engine, sends through the outbox and the send task (into whatever
provider the runtime has: a real SMTP server in the tests, a `RecordingProvider` in
`postillon simulate`), opens and clicks through the email tracking service.

`timeline(contact_id)` then reads what happened from the same tables `explain` reads:
the automation history, the messages and the contact's events.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from postillon.automations import schedules
from postillon.automations import simulation_repository as repository
from postillon.automations.definitions import Published
from postillon.automations.documents import parse_duration
from postillon.automations.schedule_tasks import JourneyDateTask, JourneyScheduleTask
from postillon.clock import VirtualClock, ensure_utc
from postillon.errors import FieldProblem, InvalidInput
from postillon.events.service import store_events
from postillon.kit.ids import new_id
from postillon.messages.tracking import HitKind

if TYPE_CHECKING:
    from postillon.runtime import Runtime
    from postillon.worker.tasks import WorkerTask

# A person's browser, so that simulated opens and clicks count as human.
HUMAN_AGENT = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0 Safari/537.36"
)
_EMAIL_HITS = {"email_opened": HitKind.open, "email_clicked": HitKind.click}
# However quiet it is, the clock stops at least this often, so periodic jobs run.
DEFAULT_WAKE_EVERY = timedelta(days=1)
_MAX_ROUNDS_PER_MOMENT = 200


@dataclass(frozen=True)
class PlannedEvent:
    """Something a contact does at `at`. For `email_opened` / `email_clicked`,
    `message_step` names the journey step (`step` or `journey:step`) whose message was
    opened or clicked; it is recorded through email tracking like a real open.
    `contact_id`: who does it (None: the contact `run_until` is given)."""

    at: datetime
    name: str
    properties: dict[str, Any] = field(default_factory=dict)
    message_step: str | None = None
    url: str | None = None
    contact_id: uuid.UUID | None = None


@dataclass(frozen=True)
class TimelineItem:
    at: datetime
    kind: str  # "event", "journey", "rule", "message"
    text: str
    details: dict[str, Any] = field(default_factory=dict)


def read_events(text: str, *, start: datetime, source: str = "events") -> list[PlannedEvent]:
    """JSON lines: `{"at": "+3d" | "2026-01-08T10:00:00Z", "event": "order_completed",
    "properties": {...}, "message_step": "welcome"}`; problems name their line."""
    planned: list[PlannedEvent] = []
    problems: list[FieldProblem] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        where = f"{source} line {number}"
        try:
            doc = json.loads(line)
        except json.JSONDecodeError as error:
            problems.append(FieldProblem(where, f"not JSON: {error.msg}"))
            continue
        if not isinstance(doc, dict):
            problems.append(FieldProblem(where, "must be a JSON object"))
            continue
        unknown = sorted(set(doc) - {"at", "event", "properties", "message_step", "url"})
        if unknown:
            problems.append(FieldProblem(f"{where}: {unknown[0]}", "is not known here"))
        at = _moment(doc.get("at"), start)
        if at is None:
            problems.append(
                FieldProblem(f"{where}: at", "must be +duration (+3d, +2h30m) or an ISO time")
            )
        name = doc.get("event")
        if not isinstance(name, str) or not name.strip():
            problems.append(FieldProblem(f"{where}: event", "must be an event name"))
        properties = doc.get("properties", {})
        if not isinstance(properties, dict):
            problems.append(FieldProblem(f"{where}: properties", "must be an object"))
        step = doc.get("message_step")
        if step is not None and (not isinstance(step, str) or name not in _EMAIL_HITS):
            problems.append(
                FieldProblem(
                    f"{where}: message_step",
                    "names a step (text) and only goes with email_opened or email_clicked",
                )
            )
        if at is not None and isinstance(name, str) and isinstance(properties, dict):
            url = doc.get("url")
            planned.append(PlannedEvent(at, name.strip(), properties, step, url))
    if problems:
        raise InvalidInput.of(problems)
    return sorted(planned, key=lambda p: p.at)


def _moment(raw: Any, start: datetime) -> datetime | None:
    if not isinstance(raw, str):
        return None
    if raw.startswith("+"):
        delta = parse_duration(raw[1:])
        return start + delta if delta is not None else None
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None
    return ensure_utc(moment) if moment.tzinfo else None


# How far ahead the date triggers look for the next contact to enter (a year and a bit:
# every yearly date falls in it).
DATE_LOOK_AHEAD = timedelta(days=400)


def simulation_tasks() -> list[WorkerTask]:
    """The worker's tasks, with the date and schedule triggers looking further ahead
    than every 5 minutes: the schedule marks are due at the next occurrence (and daily),
    the date marks at the next moment a contact actually enters (`LookAheadDateTask`),
    so nothing is entered later, and the clock stops far less often."""
    from postillon.worker.tasks import default_tasks

    replaced: dict[type[Any], WorkerTask] = {
        JourneyDateTask: LookAheadDateTask(),
        JourneyScheduleTask: JourneyScheduleTask(tick=timedelta(days=1)),
    }
    return [replaced.get(type(task), task) for task in default_tasks()]


class LookAheadDateTask(JourneyDateTask):
    """The date trigger as a worker runs it, but with the journey's mark due at the
    next moment a contact enters (the engine's rules, over the simulation's few contacts,
    a year ahead), not at every zone's next trigger time: the clock jumps from birthday
    to birthday. The mark is looked at again whenever the simulation has changed
    something (`Simulation.settle`), so that a date set on the way counts; and a window
    may span a jump (the grace is the look-ahead)."""

    def __init__(self) -> None:
        super().__init__(tick=DATE_LOOK_AHEAD, grace=DATE_LOOK_AHEAD)

    def _due(
        self,
        runtime: Runtime,
        session: Session,
        journey: Published,
        window: schedules.Window,
        zones: list[str | None],
    ) -> schedules.Due:
        due = super()._due(runtime, session, journey, window, zones)
        after = schedules.next_date_moment(
            session, journey, window.until, zones, within=DATE_LOOK_AHEAD
        )
        return schedules.Due(due.entrants, after)


class Simulation:
    def __init__(
        self,
        runtime: Runtime,
        clock: VirtualClock,
        *,
        tasks: Sequence[WorkerTask] | None = None,
        wake_every: timedelta = DEFAULT_WAKE_EVERY,
    ) -> None:
        self.runtime = runtime
        self.clock = clock
        self.tasks = list(tasks) if tasks is not None else simulation_tasks()
        self.wake_every = wake_every
        self.rounds = 0

    # --- driving the clock ---

    def run_until(
        self,
        moment: datetime,
        *,
        contact_id: uuid.UUID | None = None,
        events: Sequence[PlannedEvent] = (),
    ) -> None:
        """Play `events` (each for its own contact, else for `contact_id`) and everything
        that falls due, up to `moment`."""
        pending = sorted((e for e in events if e.at <= moment), key=lambda e: e.at)
        self.settle()
        while True:
            now = self.clock.now()
            upcoming = [e.at for e in pending[:1]]
            wake = self.next_wake(now)
            candidates = [t for t in (*upcoming, wake, now + self.wake_every) if t is not None]
            target = min(max(t, now) for t in candidates)
            if target > moment:
                self.clock.set(max(moment, now))
                self.settle()
                return
            self.clock.set(target)
            while pending and pending[0].at <= target:
                planned = pending.pop(0)
                who = planned.contact_id or contact_id
                assert who is not None, "events need the contact they are about"
                self.play(who, planned)
            self.settle()

    def settle(self) -> int:
        """Run every task at the current moment until none has work left. After a round
        that did something, the date triggers look again (`LookAheadDateTask`): what was
        done may have given a contact a date, or made a new contact."""
        done_total = 0
        for _ in range(_MAX_ROUNDS_PER_MOMENT):
            now = self.clock.now()
            done = sum(task.run_due(self.runtime, now) for task in self.tasks)
            self.rounds += 1
            done_total += done
            if not done:
                return done_total
            with self.runtime.database.transaction() as session:
                repository.wake_date_marks(session, now)
        raise RuntimeError(
            f"the simulation did not settle at {self.clock.now().isoformat()}: "
            "a task kept finding work"
        )

    def next_wake(self, now: datetime) -> datetime | None:
        with self.runtime.database.transaction() as session:
            return repository.next_due(session, after=now)

    # --- what the contact does ---

    def play(self, contact_id: uuid.UUID, planned: PlannedEvent) -> None:
        now = self.clock.now()
        with self.runtime.database.transaction() as session:
            if planned.message_step is not None:
                self._email_hit(session, contact_id, planned)
                return
            store_events(
                session,
                [
                    {
                        "contact_id": contact_id,
                        "anonymous_id": None,
                        "user_id": None,
                        "message_id": f"simulation-{new_id()}",
                        "type": "track",
                        "name": planned.name,
                        "properties": planned.properties,
                        "context": {},
                        "integrations": None,
                        "source": "simulation",
                        "occurred_at": now,
                        "received_at": now,
                    }
                ],
                now=now,
            )

    def _email_hit(self, session: Session, contact_id: uuid.UUID, planned: PlannedEvent) -> None:
        assert planned.message_step is not None
        journey, _, step = planned.message_step.rpartition(":")
        message_id = repository.message_of_step(session, contact_id, step, journey or None)
        if message_id is None:
            raise InvalidInput.at(
                "message_step",
                f"at {planned.at.isoformat()} no message of step {planned.message_step!r} "
                "had been sent to the contact",
            )
        self.runtime.email_tracking.record(
            session,
            message_id,
            kind=_EMAIL_HITS[planned.name],
            method="GET",
            user_agent=HUMAN_AGENT,
            url=planned.url
            or (self.runtime.settings.public_url if planned.name == "email_clicked" else None),
        )

    # --- what happened ---

    def timeline(self, contact_id: uuid.UUID) -> list[TimelineItem]:
        with self.runtime.database.transaction() as session:
            rows = repository.timeline_rows(session, contact_id)
        items: list[TimelineItem] = []
        for row in rows:
            if row.kind == "history":
                where = f"{row.automation}" + (f" · {row.step}" if row.step else "")
                items.append(
                    TimelineItem(
                        row.at,
                        row.automation_kind,
                        f"{where}: {row.outcome} — {row.text}",
                        row.details or {},
                    )
                )
            elif row.kind == "message":
                items.append(
                    TimelineItem(
                        row.at,
                        "message",
                        f"email {row.state}: {row.text!r} ({row.automation or row.source}"
                        + (f" · {row.step})" if row.step else ")"),
                        row.details or {},
                    )
                )
            else:
                items.append(TimelineItem(row.at, "event", row.text, row.details or {}))
        return sorted(items, key=lambda i: (i.at, _ORDER[i.kind]))


_ORDER = {"event": 0, "rule": 1, "journey": 2, "message": 3}
