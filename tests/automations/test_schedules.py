"""Date and schedule triggers: who enters a journey when, at local times, exactly once,
across restarts and downtimes, on both databases.

The worker's tasks hand the entrants to `JourneyEngine.enter`, built on another branch:
these tests drive the tasks' `collect` (the mark, the window, who is due, the next due
time), and the tests that go through `enter` are marked to fail until it exists."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from postillon.automations import schedules
from postillon.automations.definitions import Published
from postillon.automations.schedule_tasks import JourneyDateTask, JourneyScheduleTask
from postillon.clock import VirtualClock
from postillon.models import Automation, JourneyRun
from postillon.runtime import Runtime
from tests.automations.time_support import make_contact, publish, utc

BIRTHDAY = """
kind: journey
key: birthday
name: Birthday
trigger: {date: {attribute: birthday, at: "09:00"}}
timezone: Europe/Berlin
steps:
  - {id: greet, send: birthday-mail}
"""

TIPS = """
kind: journey
key: tips
name: Monthly tips
trigger: {schedule: {frequency: monthly, nth: 1, weekday: monday, at: "09:00"}}
conditions: {tag: tips}
timezone: Europe/Berlin
steps:
  - {id: tip, send: tip-mail}
"""

MORNING = """
kind: journey
key: morning
name: Good morning
trigger: {schedule: {frequency: daily, at: "09:00", local: true}}
conditions: {tag: mornings}
timezone: Europe/Berlin
steps:
  - {id: hello, send: morning-mail}
"""

Entry = tuple[uuid.UUID, str, datetime]


def follow(
    runtime: Runtime,
    clock: VirtualClock,
    task: JourneyDateTask | JourneyScheduleTask,
    journey: Published,
    until: datetime,
) -> Iterator[Entry]:
    """Run the task's `collect` for the journey each time its mark is due (as a worker
    polling the clock would), until `until`; yield who enters when."""
    name = schedules.mark_name(task.kind, journey.id)
    while True:
        now = clock.now()
        with runtime.database.transaction() as session:
            due = task.collect(runtime, session, journey, now)
            next_due = schedules.due_marks(session, task.kind)[name]
        assert due is not None, f"the mark was due at {now}"
        yield from ((e.contact_id, e.entry_key, now) for e in due.entrants)
        assert next_due > now
        if next_due > until:
            return
        clock.set(next_due)


def collect_at(
    runtime: Runtime,
    clock: VirtualClock,
    task: JourneyDateTask | JourneyScheduleTask,
    journey: Published,
    moment: datetime,
) -> list[tuple[uuid.UUID, str]]:
    now = clock.set(moment)
    with runtime.database.transaction() as session:
        due = task.collect(runtime, session, journey, now)
    return [] if due is None else [(e.contact_id, e.entry_key) for e in due.entrants]


def test_birthdays_at_nine_local_time_every_year(runtime: Runtime, clock: VirtualClock) -> None:
    """The seed scenario: each contact enters at 09:00 in their zone on their birthday,
    every year, exactly once, as the clock runs over two years."""
    start = clock.now()
    with runtime.database.transaction() as session:
        journey = publish(session, runtime, BIRTHDAY)

        def contact(zone: str | None, birthday: object) -> uuid.UUID:
            return make_contact(session, runtime, timezone=zone, attributes={"birthday": birthday})

        tokyo = contact("Asia/Tokyo", "1990-03-15")
        new_york = contact("America/New_York", "1992-02-29")
        berlin = contact(None, "1985-07-01T10:00:00Z")  # the journey's zone; a date-time text
        for zone, birthday in [
            ("Asia/Tokyo", "not a date"), ("Asia/Tokyo", 19900315), ("Asia/Tokyo", "2030-03-15"),
            ("Asia/Tokyo", "1990-02-30"), (None, None),
        ]:  # fmt: skip
            contact(zone, birthday)

    entries = list(
        follow(runtime, clock, JourneyDateTask(tick=timedelta(days=1)), journey, utc(2028, 3, 1))
    )
    assert clock.now() - start > timedelta(days=780)
    assert entries == [
        (new_york, "date:2026-02-28", utc(2026, 2, 28, 14)),  # 09:00 EST
        (tokyo, "date:2026-03-15", utc(2026, 3, 15, 0)),  # 09:00 JST
        (berlin, "date:2026-07-01", utc(2026, 7, 1, 7)),  # 09:00 CEST
        (new_york, "date:2027-02-28", utc(2027, 2, 28, 14)),
        (tokyo, "date:2027-03-15", utc(2027, 3, 15, 0)),
        (berlin, "date:2027-07-01", utc(2027, 7, 1, 7)),
        (new_york, "date:2028-02-29", utc(2028, 2, 29, 14)),  # a leap year
    ]


def born(session: Session, runtime: Runtime, birthday: str) -> uuid.UUID:
    return make_contact(
        session, runtime, timezone="Europe/Berlin", attributes={"birthday": birthday}
    )


@pytest.fixture
def birthdays(runtime: Runtime) -> tuple[Published, uuid.UUID, uuid.UUID]:
    with runtime.database.transaction() as session:
        journey = publish(session, runtime, BIRTHDAY)  # at 2026-01-05 09:00 UTC
        ada = born(session, runtime, "1990-01-10")
        bob = born(session, runtime, "1991-01-12")
    return journey, ada, bob


def test_a_worker_that_was_down_catches_up_within_the_grace(
    runtime: Runtime,
    clock: VirtualClock,
    birthdays: tuple[Published, uuid.UUID, uuid.UUID],
    caplog: pytest.LogCaptureFixture,
) -> None:
    journey, ada, _ = birthdays
    task = JourneyDateTask()
    assert collect_at(runtime, clock, task, journey, utc(2026, 1, 9, 12)) == []
    # Down from then until 22 hours after Ada's moment (10 January, 08:00 UTC): she
    # enters late, with the key of her birthday.
    assert collect_at(runtime, clock, task, journey, utc(2026, 1, 11, 6)) == [
        (ada, "date:2026-01-10")
    ]
    # A restarted worker (nothing kept in memory) does not enter her again.
    assert collect_at(runtime, clock, JourneyDateTask(), journey, utc(2026, 1, 11, 6, 5)) == []
    # Down for longer than the grace (1 day) over Bob's birthday: he is left out, and
    # the log says so.
    with caplog.at_level(logging.WARNING, logger="postillon.automations"):
        assert collect_at(runtime, clock, task, journey, utc(2026, 1, 13, 9)) == []
    assert "were missed" in caplog.text and "birthday" in caplog.text


def test_the_mark_is_not_due_before_its_time(
    runtime: Runtime, clock: VirtualClock, birthdays: tuple[Published, uuid.UUID, uuid.UUID]
) -> None:
    journey, ada, _ = birthdays
    task = JourneyDateTask()
    collect_at(runtime, clock, task, journey, utc(2026, 1, 10, 7, 58))
    with runtime.database.transaction() as session:
        # Due at Ada's moment (08:00 UTC), before the next tick (08:00 too) … and at 07:59
        # it is not due: `collect` takes nothing.
        assert schedules.due_marks(session, "date") == {
            schedules.mark_name("date", journey.id): utc(2026, 1, 10, 8)
        }
        clock.set(utc(2026, 1, 10, 7, 59))
        assert task.collect(runtime, session, journey, clock.now()) is None
    assert collect_at(runtime, clock, task, journey, utc(2026, 1, 10, 8)) == [
        (ada, "date:2026-01-10")
    ]


def test_a_journey_published_after_the_moment_waits_for_the_next_one(
    runtime: Runtime, clock: VirtualClock
) -> None:
    clock.set(utc(2026, 1, 10, 10))  # after 09:00 in Berlin
    with runtime.database.transaction() as session:
        journey = publish(session, runtime, BIRTHDAY)
        ada = born(session, runtime, "1990-01-10")
    task = JourneyDateTask()
    assert collect_at(runtime, clock, task, journey, utc(2026, 1, 10, 10, 5)) == []
    assert collect_at(runtime, clock, task, journey, utc(2027, 1, 10, 8)) == [
        (ada, "date:2027-01-10")
    ]


def test_contacts_due_while_a_journey_is_paused_do_not_enter_on_resume(
    runtime: Runtime, clock: VirtualClock, birthdays: tuple[Published, uuid.UUID, uuid.UUID]
) -> None:
    journey, _, bob = birthdays
    task = JourneyDateTask()
    with runtime.database.transaction() as session:
        session.execute(update(Automation).values(status="paused"))
        paused = runtime.definitions.load(session).current[journey.id]
    assert paused.status == "paused"
    assert collect_at(runtime, clock, task, paused, utc(2026, 1, 10, 12)) == []
    with runtime.database.transaction() as session:
        session.execute(update(Automation).values(status="active"))
        active = runtime.definitions.load(session).current[journey.id]
    assert collect_at(runtime, clock, task, active, utc(2026, 1, 10, 12, 5)) == []
    assert collect_at(runtime, clock, task, active, utc(2026, 1, 12, 8)) == [
        (bob, "date:2026-01-12")
    ]


def test_a_monthly_schedule_enters_the_journeys_audience_at_each_occurrence(
    runtime: Runtime, clock: VirtualClock
) -> None:
    with runtime.database.transaction() as session:
        journey = publish(session, runtime, TIPS)  # Monday 5 January, 09:00 UTC: 10:00 in Berlin
        ada = make_contact(session, runtime, tags=("tips",))
        bob = make_contact(session, runtime, timezone="Asia/Tokyo", tags=("tips", "vip"))
        make_contact(session, runtime, tags=("vip",))
    task = JourneyScheduleTask(tick=timedelta(days=1))
    entries = list(follow(runtime, clock, task, journey, utc(2026, 4, 30)))
    # In the journey's zone for everyone (not `local`): 09:00 in Berlin.
    expected = [
        (contact_id, f"schedule:{day}T09:00", moment)
        for day, moment in [
            ("2026-02-02", utc(2026, 2, 2, 8)),
            ("2026-03-02", utc(2026, 3, 2, 8)),
            ("2026-04-06", utc(2026, 4, 6, 7)),  # summer time
        ]
        for contact_id in sorted([ada, bob])
    ]
    assert entries == expected
    # A restarted worker at the same moment enters nobody again …
    assert collect_at(runtime, clock, JourneyScheduleTask(), journey, utc(2026, 4, 30, 0, 5)) == []
    # … and one that was down over the next occurrence catches it up, once.
    late = collect_at(runtime, clock, task, journey, utc(2026, 5, 4, 12))
    assert late == [(c, "schedule:2026-05-04T09:00") for c in sorted([ada, bob])]
    assert collect_at(runtime, clock, task, journey, utc(2026, 5, 4, 12, 5)) == []


def test_a_local_schedule_reaches_each_zone_at_its_own_time(
    runtime: Runtime, clock: VirtualClock
) -> None:
    with runtime.database.transaction() as session:
        journey = publish(session, runtime, MORNING)  # 5 January, 09:00 UTC
        tokyo = make_contact(session, runtime, timezone="Asia/Tokyo", tags=("mornings",))
        new_york = make_contact(session, runtime, timezone="America/New_York", tags=("mornings",))
        berlin = make_contact(session, runtime, tags=("mornings",))  # the journey's zone
        make_contact(session, runtime, timezone="Asia/Tokyo")
    task = JourneyScheduleTask(tick=timedelta(days=1))
    entries = list(follow(runtime, clock, task, journey, utc(2026, 1, 7, 12)))
    assert entries == [
        (new_york, "schedule:2026-01-05T09:00", utc(2026, 1, 5, 14)),
        (tokyo, "schedule:2026-01-06T09:00", utc(2026, 1, 6, 0)),
        (berlin, "schedule:2026-01-06T09:00", utc(2026, 1, 6, 8)),
        (new_york, "schedule:2026-01-06T09:00", utc(2026, 1, 6, 14)),
        (tokyo, "schedule:2026-01-07T09:00", utc(2026, 1, 7, 0)),
        (berlin, "schedule:2026-01-07T09:00", utc(2026, 1, 7, 8)),
    ]


def test_the_task_keeps_marks_without_anyone_due(runtime: Runtime, clock: VirtualClock) -> None:
    with runtime.database.transaction() as session:
        journey = publish(session, runtime, BIRTHDAY)
        make_contact(session, runtime, timezone="Asia/Tokyo", attributes={"birthday": "1990-06-01"})
    task = JourneyDateTask()
    now = clock.advance(timedelta(minutes=2))  # 09:02 UTC
    assert task.run_due(runtime, now) == 0
    with runtime.database.transaction() as session:
        marks = schedules.due_marks(session, "date")
    # The next tick (09:05) comes before the next 09:00 anywhere.
    assert marks == {schedules.mark_name("date", journey.id): utc(2026, 1, 5, 9, 5)}
    assert task.run_due(runtime, clock.advance(timedelta(minutes=1))) == 0  # not due


def test_ticks_fall_on_the_clocks_five_minutes() -> None:
    tick = timedelta(minutes=5)
    assert schedules.next_tick(utc(2026, 1, 5, 8, 57, 13), tick) == utc(2026, 1, 5, 9, 0)
    assert schedules.next_tick(utc(2026, 1, 5, 9, 0), tick) == utc(2026, 1, 5, 9, 5)


def test_the_date_task_enters_the_birthday_journey(
    runtime: Runtime, clock: VirtualClock, birthdays: tuple[Published, uuid.UUID, uuid.UUID]
) -> None:
    journey, ada, _ = birthdays
    assert JourneyDateTask().run_due(runtime, clock.set(utc(2026, 1, 10, 8))) == 1
    with runtime.database.transaction(read_only=True) as session:
        runs = session.scalars(select(JourneyRun).where(JourneyRun.journey_id == journey.id)).all()
    assert [(r.contact_id, r.entry_key, r.source, r.entered_at) for r in runs] == [
        (ada, "date:2026-01-10", "date", utc(2026, 1, 10, 8))
    ]
    # Again at the next tick: the same key starts no second run.
    JourneyDateTask().run_due(runtime, clock.set(utc(2026, 1, 10, 8, 5)))
    with runtime.database.transaction(read_only=True) as session:
        assert len(session.scalars(select(JourneyRun)).all()) == 1


def test_the_schedule_task_enters_the_audience(runtime: Runtime, clock: VirtualClock) -> None:
    with runtime.database.transaction() as session:
        journey = publish(session, runtime, TIPS)
        ada = make_contact(session, runtime, tags=("tips",))
    task = JourneyScheduleTask()
    assert task.run_due(runtime, clock.set(utc(2026, 2, 2, 8))) == 1
    with runtime.database.transaction(read_only=True) as session:
        runs = session.scalars(select(JourneyRun).where(JourneyRun.journey_id == journey.id)).all()
    assert [(r.contact_id, r.entry_key, r.source) for r in runs] == [
        (ada, "schedule:2026-02-02T09:00", "schedule")
    ]
