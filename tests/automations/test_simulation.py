"""The simulation's date triggers: the clock jumps from one contact's date to the next
(not from one zone's 09:00 to the next), and a date set during the simulation counts."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from postillon.automations import schedules
from postillon.automations.simulation import PlannedEvent
from postillon.clock import VirtualClock
from postillon.runtime import Runtime
from postillon.settings import Settings
from tests.automations.scenario_support import Scenario, received
from tests.automations.time_support import make_contact, publish, utc
from tests.support.smtp import SmtpSink

BIRTHDAY = """\
kind: journey
key: birthday
name: Birthday
trigger: {date: {attribute: birthday, at: "09:00"}}
timezone: Europe/Berlin
steps:
  - {id: greet, send: birthday-mail}
"""


@pytest.fixture
def settings(settings: Settings, sink: SmtpSink) -> Settings:
    return settings.model_copy(update={"smtp_port": sink.port, "smtp_rate_per_second": 1000.0})


def test_the_next_date_moment_is_the_next_contacts_in_their_zone(
    runtime: Runtime, clock: VirtualClock
) -> None:
    with runtime.database.transaction() as session:
        journey = publish(session, runtime, BIRTHDAY)
        make_contact(session, runtime, timezone="Asia/Tokyo", attributes={"birthday": "1990-03-15"})
        make_contact(
            session, runtime, timezone="America/New_York", attributes={"birthday": "1992-02-29"}
        )
        # The journey's zone; a date-time text; dates that make nobody enter.
        make_contact(session, runtime, attributes={"birthday": "1985-07-01T10:00:00Z"})
        for birthday in ("not a date", "2030-01-10", None):
            make_contact(session, runtime, timezone="Asia/Tokyo", attributes={"birthday": birthday})
        zones = schedules.contact_zones(session)

        def after(moment: datetime, within: int = 400) -> datetime | None:
            return schedules.next_date_moment(
                session, journey, moment, zones, within=timedelta(days=within)
            )

        found = [after(clock.now())]
        for _ in range(4):
            moment = found[-1]
            assert moment is not None
            found.append(after(moment))
        assert after(clock.now(), within=50) is None  # the first is 54 days away
    assert found == [
        utc(2026, 2, 28, 14),  # 29 February in a year without it, 09:00 in New York
        utc(2026, 3, 15, 0),  # 09:00 in Tokyo
        utc(2026, 7, 1, 7),  # 09:00 summer time in Berlin
        utc(2027, 2, 28, 14),
        utc(2027, 3, 15, 0),
    ]


def test_the_clock_jumps_from_birthday_to_birthday(
    runtime: Runtime, clock: VirtualClock, sink: SmtpSink
) -> None:
    scenario = Scenario(runtime, clock, wake_every=timedelta(days=90))
    scenario.template("birthday-mail", "Happy birthday!")
    scenario.publish(BIRTHDAY)
    scenario.contact(
        "kei@example.com", timezone="Asia/Tokyo", attributes={"birthday": "2000-02-29"}
    )
    scenario.run_until(utc(2028, 3, 5))

    assert [m.local("Asia/Tokyo").isoformat() for m in received(sink)] == [
        "2026-02-28T09:00:00+09:00",
        "2027-02-28T09:00:00+09:00",
        "2028-02-29T09:00:00+09:00",
    ]
    # Stops at the three birthdays and every 90 days, not at every 09:00 of two zones.
    assert scenario.simulation.rounds < 60


RENEWAL_RULE = """\
kind: rule
key: renewal-date
name: Subscribers renew on 1 March
trigger: {event: subscribed}
actions:
  - set: {renewal_date: "2026-03-01"}
"""

RENEWAL = """\
kind: journey
key: renewal
name: Renewal reminder
trigger: {date: {attribute: renewal_date, recurrence: once, offset_days: -7, at: "10:00"}}
timezone: Europe/Berlin
steps:
  - {id: remind, send: renewal-reminder}
"""


def test_a_date_set_during_the_simulation_starts_the_journey_on_time(
    runtime: Runtime, clock: VirtualClock, sink: SmtpSink
) -> None:
    """The date journey's mark, due nowhere near while nobody has a renewal date, is
    looked at again once the rule has given Ann one."""
    scenario = Scenario(runtime, clock, wake_every=timedelta(days=30))
    scenario.template("renewal-reminder", "Your subscription renews in a week")
    scenario.publish(RENEWAL_RULE, RENEWAL)
    ann = scenario.contact("ann@example.com", timezone="Europe/Berlin")
    subscribed = PlannedEvent(clock.now() + timedelta(days=1), "subscribed", contact_id=ann)
    scenario.run_until(utc(2026, 3, 10), [subscribed])

    [mail] = received(sink)
    assert (mail.subject, mail.local("Europe/Berlin").isoformat()) == (
        "Your subscription renews in a week",
        "2026-02-22T10:00:00+01:00",
    )
