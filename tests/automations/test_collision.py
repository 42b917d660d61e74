"""Collision control: frequency caps per local day and week, quiet hours, on both
databases, with the decisions' reasons."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import text
from sqlalchemy.orm import Session

from postillon.automations import model as am
from postillon.automations.collision import SendCandidate, SendGate
from postillon.clock import VirtualClock
from postillon.runtime import Runtime
from postillon.settings import Settings
from tests.automations.time_support import make_contact, make_message, make_template, utc

# Wednesday 14 January 2026, 13:00 in Berlin, 07:00 in New York.
NOW = datetime(2026, 1, 14, 12, 0, tzinfo=UTC)
NIGHT_HOLD = am.QuietHours(time(21, 0), time(8, 0), am.OnQuietHours.hold)
NIGHT_SKIP = am.QuietHours(time(21, 0), time(8, 0), am.OnQuietHours.skip)


@pytest.fixture
def now(clock: VirtualClock) -> datetime:
    return clock.set(NOW)


def set_caps(session: Session, runtime: Runtime, channel: str = "email", **caps: int) -> None:
    runtime.frequency_caps.set(
        session, channel, per_day=caps.get("per_day"), per_week=caps.get("per_week")
    )


def test_without_caps_or_quiet_hours_everything_is_allowed(
    runtime: Runtime, session: Session, now: datetime
) -> None:
    ada = make_contact(session, runtime, timezone="Europe/Berlin")
    template = make_template(session, runtime)
    for _ in range(5):
        make_message(session, template, ada, due_at=now - timedelta(hours=1))
    decisions = runtime.send_gate.decide(
        session, [SendCandidate("a", ada), SendCandidate("b", ada, marketing=False)], now=now
    )
    assert all(d.allowed for d in decisions.values()) and set(decisions) == {"a", "b"}


def test_a_daily_cap_counts_the_contacts_local_day(
    runtime: Runtime, session: Session, now: datetime
) -> None:
    set_caps(session, runtime, per_day=2)
    template = make_template(session, runtime)

    def contact(zone: str, *messages: dict[str, Any]) -> uuid.UUID:
        contact_id = make_contact(session, runtime, timezone=zone)
        for message in messages:
            make_message(session, template, contact_id, **message)
        return contact_id

    # 01:30 and 00:30 today in Berlin; 19:30 and 18:30 yesterday in New York.
    early: list[dict[str, Any]] = [
        {"due_at": utc(2026, 1, 14, 0, 30)},
        {"due_at": utc(2026, 1, 13, 23, 30)},
    ]
    berlin = contact("Europe/Berlin", *early)
    new_york = contact("America/New_York", *early)
    # One that reached the contact today, and others that do not count: never sent,
    # transactional, another channel, before local midnight.
    uncounted = contact(
        "Europe/Berlin",
        {"due_at": utc(2026, 1, 14, 8)},
        {"due_at": utc(2026, 1, 14, 9), "state": "suppressed"},
        {"due_at": utc(2026, 1, 14, 9), "state": "cancelled"},
        {"due_at": utc(2026, 1, 14, 9), "state": "failed"},
        {"due_at": utc(2026, 1, 14, 9), "kind": "transactional"},
        {"due_at": utc(2026, 1, 14, 9), "channel": "sms"},
        {"due_at": utc(2026, 1, 13, 22, 59)},
    )
    # A broadcast due this evening reaches the contact today: it counts now.
    tonight = contact(
        "Europe/Berlin",
        {"due_at": utc(2026, 1, 14, 8)},
        {"due_at": utc(2026, 1, 14, 19), "state": "queued", "source": "broadcast"},
    )
    # One due tomorrow does not count today.
    tomorrow = contact(
        "Europe/Berlin",
        {"due_at": utc(2026, 1, 14, 8)},
        {"due_at": utc(2026, 1, 14, 23, 30), "state": "queued"},
    )
    # Queued days ago, due (or sent, late, after retries) today: today is what counts.
    late = contact(
        "Europe/Berlin",
        {"due_at": utc(2026, 1, 14, 8), "queued_at": utc(2025, 12, 20)},
        {
            "due_at": utc(2026, 1, 13, 10),
            "sent_at": utc(2026, 1, 14, 10),
            "queued_at": utc(2026, 1, 13, 10),
        },
    )
    # The outcome of a hand-over that died is unknown: it may have arrived, so it counts.
    unknown = contact(
        "Europe/Berlin",
        {"due_at": utc(2026, 1, 14, 8)},
        {"due_at": utc(2026, 1, 14, 9), "state": "unknown"},
    )
    contacts = {
        "berlin": berlin, "new_york": new_york, "uncounted": uncounted, "tonight": tonight,
        "tomorrow": tomorrow, "late": late, "unknown": unknown,
    }  # fmt: skip
    decisions = runtime.send_gate.decide(
        session, [SendCandidate(key, contact_id) for key, contact_id in contacts.items()], now=now
    )
    allowed = {key for key, decision in decisions.items() if decision.allowed}
    assert allowed == {"new_york", "uncounted", "tomorrow"}
    held = decisions["berlin"]
    assert (held.rule, held.retry_at) == ("cap_day", utc(2026, 1, 14, 23))
    assert held.reason == "2 marketing emails today (cap 2 per day)"
    assert held.details == {
        "rule": "cap_day", "channel": "email", "today": 2, "this_week": 2, "per_day": 2,
        "per_week": None, "timezone": "Europe/Berlin",
    }  # fmt: skip
    assert decisions["tonight"].reason == held.reason
    assert decisions["late"].rule == decisions["unknown"].rule == "cap_day"


def test_a_weekly_cap_counts_from_local_monday(
    runtime: Runtime, session: Session, now: datetime
) -> None:
    set_caps(session, runtime, per_day=2, per_week=3)
    template = make_template(session, runtime)
    # Monday 12 January 03:00 UTC: Monday in Berlin, still Sunday night in New York.
    monday = utc(2026, 1, 12, 3)
    times = [monday, utc(2026, 1, 13, 10), utc(2026, 1, 14, 8), utc(2026, 1, 11, 22, 30)]
    berlin = make_contact(session, runtime, timezone="Europe/Berlin")
    new_york = make_contact(session, runtime, timezone="America/New_York")
    for contact_id in (berlin, new_york):
        for moment in times:
            make_message(session, template, contact_id, due_at=moment)
    decisions = runtime.send_gate.decide(
        session, [SendCandidate("berlin", berlin), SendCandidate("new_york", new_york)], now=now
    )
    held = decisions["berlin"]
    assert (held.allowed, held.rule) == (False, "cap_week")
    # Next Monday 00:00 in Berlin.
    assert held.retry_at == utc(2026, 1, 18, 23)
    assert held.reason == "3 marketing emails this week (cap 3 per week)"
    assert (held.details["today"], held.details["this_week"]) == (1, 3)
    # In New York two of them fell in the week before.
    assert decisions["new_york"].allowed


def test_sends_allowed_earlier_in_a_batch_count(
    runtime: Runtime, session: Session, now: datetime
) -> None:
    set_caps(session, runtime, per_day=1)
    ada = make_contact(session, runtime, timezone="Europe/Berlin")
    bob = make_contact(session, runtime)
    candidates = [
        SendCandidate("ada-1", ada),
        SendCandidate("ada-2", ada),
        SendCandidate("ada-receipt", ada, marketing=False),
        SendCandidate("ada-sms", ada, channel="sms"),
        SendCandidate("bob-1", bob),
        SendCandidate("bob-2", bob),
    ]
    decisions = runtime.send_gate.decide(session, candidates, now=now)
    assert {k for k, d in decisions.items() if d.allowed} == {
        "ada-1", "ada-receipt", "ada-sms", "bob-1",
    }  # fmt: skip
    assert decisions["ada-2"].reason == "1 marketing email today (cap 1 per day)"
    # Bob has no zone: the default (UTC) day.
    assert decisions["bob-2"].retry_at == utc(2026, 1, 15)
    assert decisions["bob-2"].details["timezone"] == "UTC"


def test_quiet_hours_hold_or_skip_in_the_contacts_zone(
    runtime: Runtime, session: Session, clock: VirtualClock
) -> None:
    now = clock.set(utc(2026, 1, 14, 20, 30))  # 21:30 in Berlin, 15:30 in New York
    berlin = make_contact(session, runtime, timezone="Europe/Berlin")
    new_york = make_contact(session, runtime, timezone="America/New_York")
    nowhere = make_contact(session, runtime)
    candidates = [
        SendCandidate("hold", berlin, quiet_hours=NIGHT_HOLD),
        SendCandidate("skip", berlin, quiet_hours=NIGHT_SKIP),
        SendCandidate("new_york", new_york, quiet_hours=NIGHT_HOLD),
        # Without a zone of their own: the journey's, else the default (UTC, 20:30).
        SendCandidate("journey_zone", nowhere, quiet_hours=NIGHT_HOLD, timezone="Europe/Berlin"),
        SendCandidate("default_zone", nowhere, quiet_hours=NIGHT_HOLD),
        SendCandidate("transactional", berlin, marketing=False, quiet_hours=NIGHT_HOLD),
    ]
    decisions = runtime.send_gate.decide(session, candidates, now=now)
    hold = decisions["hold"]
    assert (hold.allowed, hold.rule, hold.retry_at) == (False, "quiet_hours", utc(2026, 1, 15, 7))
    assert hold.reason == "quiet hours 21:00\u201308:00 Europe/Berlin"
    assert hold.details["until"] == "2026-01-15T07:00:00+00:00"
    skip = decisions["skip"]
    assert (skip.allowed, skip.rule, skip.retry_at) == (False, "quiet_hours", None)
    assert decisions["journey_zone"].retry_at == utc(2026, 1, 15, 7)
    assert {k for k, d in decisions.items() if d.allowed} == {
        "new_york", "default_zone", "transactional",
    }  # fmt: skip
    tokyo = SendGate(clock, default_timezone="Asia/Tokyo")  # 05:30 there
    late = tokyo.decide(session, [SendCandidate("x", nowhere, quiet_hours=NIGHT_HOLD)], now=now)
    assert late["x"].retry_at == utc(2026, 1, 14, 23)


def test_when_a_cap_and_quiet_hours_both_hold_the_later_moment_wins(
    runtime: Runtime, session: Session, clock: VirtualClock
) -> None:
    set_caps(session, runtime, per_day=1)
    template = make_template(session, runtime)
    ada = make_contact(session, runtime, timezone="Europe/Berlin")
    make_message(session, template, ada, due_at=utc(2026, 1, 14, 8))
    # 15:00 in Berlin: the cap holds until midnight, which is in the quiet hours: 08:00.
    afternoon = clock.set(utc(2026, 1, 14, 14))
    decision = runtime.send_gate.decide(
        session, [SendCandidate("x", ada, quiet_hours=NIGHT_HOLD)], now=afternoon
    )["x"]
    assert (decision.rule, decision.retry_at) == ("cap_day", utc(2026, 1, 15, 7))
    assert decision.reason == (
        "1 marketing email today (cap 1 per day), then quiet hours 21:00\u201308:00 Europe/Berlin"
    )
    # 22:00: in the quiet hours (until 08:00) and over the cap (until midnight).
    night = clock.set(utc(2026, 1, 14, 21))
    candidates = [
        SendCandidate("hold", ada, quiet_hours=NIGHT_HOLD),
        SendCandidate("skip", ada, quiet_hours=NIGHT_SKIP),
    ]
    decisions = runtime.send_gate.decide(session, candidates, now=night)
    hold = decisions["hold"]
    assert (hold.rule, hold.retry_at) == ("quiet_hours", utc(2026, 1, 15, 7))
    assert hold.reason == (
        "quiet hours 21:00\u201308:00 Europe/Berlin; 1 marketing email today (cap 1 per day)"
    )
    assert hold.details["cap_day"]["today"] == 1
    assert (decisions["skip"].rule, decisions["skip"].retry_at) == ("quiet_hours", None)


def test_the_default_zone_decides_the_day_of_contacts_without_one(
    runtime: Runtime, session: Session, clock: VirtualClock, now: datetime
) -> None:
    set_caps(session, runtime, per_day=1)
    template = make_template(session, runtime)
    ada = make_contact(session, runtime)
    # 22:00 yesterday in New York, 03:00 today in UTC.
    make_message(session, template, ada, due_at=utc(2026, 1, 14, 3))
    new_york = SendGate(clock, default_timezone="America/New_York")
    assert new_york.decide(session, [SendCandidate("x", ada)], now=now)["x"].allowed
    assert not runtime.send_gate.decide(session, [SendCandidate("x", ada)], now=now)["x"].allowed


def test_two_deciders_for_the_same_contact_take_turns(
    runtime: Runtime, clock: VirtualClock
) -> None:
    """Two workers deciding for one contact under a cap of one: the second waits for the
    first to commit its message, then sees it. (PostgreSQL: the advisory lock; SQLite
    has one writer at a time anyway.)"""
    now = clock.set(NOW)
    with runtime.database.transaction() as session:
        set_caps(session, runtime, per_day=1)
        template = make_template(session, runtime)
        ada = make_contact(session, runtime, timezone="Europe/Berlin")
    postgres = runtime.database.engine.dialect.name == "postgresql"
    first_decided = threading.Event()
    second_waits = threading.Event()
    results: dict[str, bool] = {}

    def first() -> None:
        with runtime.database.transaction() as session:
            results["first"] = runtime.send_gate.decide(
                session, [SendCandidate("x", ada)], now=now
            )["x"].allowed
            make_message(session, template, ada, due_at=now, state="queued")
            first_decided.set()
            assert second_waits.wait(timeout=30)

    def second() -> None:
        assert first_decided.wait(timeout=30)
        if not postgres:
            second_waits.set()  # BEGIN IMMEDIATE waits for the first writer
        with runtime.database.transaction() as session:
            results["second"] = runtime.send_gate.decide(
                session, [SendCandidate("x", ada)], now=now
            )["x"].allowed

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    if postgres:
        _until_an_advisory_lock_is_awaited(runtime)
        second_waits.set()
    for thread in threads:
        thread.join(timeout=60)
    assert results == {"first": True, "second": False}


def _until_an_advisory_lock_is_awaited(runtime: Runtime) -> None:
    import time as wall_clock

    deadline = wall_clock.monotonic() + 30
    query = text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
    while wall_clock.monotonic() < deadline:
        with runtime.database.transaction(read_only=True) as session:
            if session.scalar(query):
                return
        wall_clock.sleep(0.01)
    raise AssertionError("the second decider never waited for the first")


def test_the_default_zone_must_be_a_zone() -> None:
    with pytest.raises(ValidationError, match="unknown time zone 'Mars/Olympus'"):
        Settings(default_timezone="Mars/Olympus")
    assert Settings(default_timezone="Europe/Berlin").default_timezone == "Europe/Berlin"
