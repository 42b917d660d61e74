"""When messages are due: scheduled starts, the same local time in every zone, throttling."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from postillon.broadcasts import planning
from postillon.broadcasts.schemas import ScheduleIn
from postillon.clock import VirtualClock
from postillon.runtime import Runtime
from tests.broadcasts.support import (
    broadcast,
    create,
    make_contacts,
    make_template,
    messages_of,
    run_broadcasts,
)


def test_a_scheduled_broadcast_starts_at_its_time(
    runtime: Runtime, session: Session, clock: VirtualClock
) -> None:
    make_template(session, runtime, "news")
    make_contacts(session, runtime, 2)
    session.commit()
    at = clock.now() + timedelta(hours=3)
    create(runtime, key="news", template="news", audience={"everyone": True}, send_at=at)
    assert (broadcast(runtime, "news").state, broadcast(runtime, "news").start_at) == (
        "scheduled",
        at,
    )
    assert run_broadcasts(runtime) == 0
    clock.advance(timedelta(hours=3))
    run_broadcasts(runtime)
    started = broadcast(runtime, "news")
    assert (started.state, started.started_at) == ("sending", at)
    assert {m.due_at for m in messages_of(runtime, "news")} == {at}


def test_the_same_local_time_in_every_zone(
    runtime: Runtime, session: Session, clock: VirtualClock
) -> None:
    # Monday 5 January 2026, 09:00 UTC. Tuesday 09:00 local, wherever each contact is.
    make_template(session, runtime, "news")
    tokyo = make_contacts(session, runtime, 2, timezone="Asia/Tokyo")
    berlin = make_contacts(session, runtime, 2, timezone="Europe/Berlin")
    new_york = make_contacts(session, runtime, 1, timezone="America/New_York")
    unzoned = make_contacts(session, runtime, 1)
    bogus = make_contacts(session, runtime, 1, timezone="Mars/Olympus_Mons")
    session.commit()
    create(runtime, key="news", template="news", audience={"everyone": True})
    with runtime.database.transaction() as tx:
        runtime.broadcasts.schedule(
            tx,
            "news",
            ScheduleIn(local_send_time=datetime(2026, 1, 6, 9, 0), timezone="Europe/Lisbon"),
        )
    # It starts when 09:00 comes first anywhere (UTC+14): Monday 19:00 UTC.
    assert broadcast(runtime, "news").start_at == datetime(2026, 1, 5, 19, 0, tzinfo=UTC)
    assert run_broadcasts(runtime) == 0
    clock.set(datetime(2026, 1, 5, 19, 0, tzinfo=UTC))
    run_broadcasts(runtime)

    due = {m.contact_id: m.due_at for m in messages_of(runtime, "news")}
    assert {due[c] for c in tokyo} == {datetime(2026, 1, 6, 0, 0, tzinfo=UTC)}
    assert {due[c] for c in berlin} == {datetime(2026, 1, 6, 8, 0, tzinfo=UTC)}
    assert {due[c] for c in new_york} == {datetime(2026, 1, 6, 14, 0, tzinfo=UTC)}
    # No zone, or one nobody knows: the broadcast's (Lisbon, UTC+0 in winter).
    assert {due[c] for c in [*unzoned, *bogus]} == {datetime(2026, 1, 6, 9, 0, tzinfo=UTC)}


def test_a_local_time_already_past_in_a_zone_sends_at_once(
    runtime: Runtime, session: Session, clock: VirtualClock
) -> None:
    make_template(session, runtime, "news")
    tokyo = make_contacts(session, runtime, 1, timezone="Asia/Tokyo")
    berlin = make_contacts(session, runtime, 1, timezone="Europe/Berlin")
    session.commit()
    # Started late: 09:00 has passed in Tokyo (00:00 UTC), not yet in Berlin (08:00 UTC).
    clock.set(datetime(2026, 1, 6, 3, 0, tzinfo=UTC))
    create(
        runtime,
        key="news",
        template="news",
        audience={"everyone": True},
        local_send_time="2026-01-06T09:00",
    )
    run_broadcasts(runtime)
    due = {m.contact_id: m.due_at for m in messages_of(runtime, "news")}
    assert due[tokyo[0]] == clock.now()
    assert due[berlin[0]] == datetime(2026, 1, 6, 8, 0, tzinfo=UTC)


def test_throttling_spreads_due_times_across_chunks(
    runtime: Runtime, session: Session, clock: VirtualClock
) -> None:
    runtime.broadcasts.chunk_size = 4
    make_template(session, runtime, "news")
    make_contacts(session, runtime, 10)
    session.commit()
    start = clock.now()
    create(runtime, key="news", template="news", audience={"everyone": True}, rate_per_minute=4)
    with runtime.database.transaction() as tx:
        runtime.broadcasts.send_now(tx, "news")
    clock.advance(timedelta(seconds=5))  # later chunks still spread from the start
    run_broadcasts(runtime)
    due = sorted(m.due_at for m in messages_of(runtime, "news"))
    assert due == [start + timedelta(seconds=15 * n) for n in range(10)]


def test_throttling_is_shared_by_zones_whose_times_overlap(
    runtime: Runtime, session: Session, clock: VirtualClock
) -> None:
    make_template(session, runtime, "news")
    make_contacts(session, runtime, 6, timezone="Europe/Berlin")
    make_contacts(session, runtime, 6, timezone="Europe/Lisbon")
    session.commit()
    create(
        runtime,
        key="news",
        template="news",
        audience={"everyone": True},
        local_send_time="2026-01-06T09:00",
        rate_per_minute=2,
    )
    clock.set(datetime(2026, 1, 5, 19, 0, tzinfo=UTC))
    run_broadcasts(runtime)
    per_minute = Counter(
        m.due_at.replace(second=0, microsecond=0) for m in messages_of(runtime, "news")
    )
    assert max(per_minute.values()) == 2
    # Berlin from 08:00 UTC for three minutes, Lisbon from 09:00 UTC.
    berlin_start = datetime(2026, 1, 6, 8, 0, tzinfo=UTC)
    lisbon_start = datetime(2026, 1, 6, 9, 0, tzinfo=UTC)
    assert sorted(per_minute) == [
        *(berlin_start + timedelta(minutes=n) for n in range(3)),
        *(lisbon_start + timedelta(minutes=n) for n in range(3)),
    ]


def test_the_spreader_keeps_every_minute_within_the_rate() -> None:
    start = datetime(2026, 1, 6, 8, 0, 30, tzinfo=UTC)
    spreader = planning.Spreader(3, {})
    due = [spreader.due(start) for _ in range(7)]
    per_minute = Counter(d.replace(second=0) for d in due)
    # Slots every 20 s: 08:00:40 is the only one left in the first minute.
    assert due == [
        datetime(2026, 1, 6, 8, minute, second, tzinfo=UTC)
        for minute, second in [(0, 40), (1, 0), (1, 20), (1, 40), (2, 0), (2, 20), (2, 40)]
    ]
    assert list(per_minute.values()) == [1, 3, 3]
