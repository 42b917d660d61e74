"""Date and schedule triggers: who enters a journey when, at local times.

A journey with a date trigger ("birthday at 09:00") or a schedule ("first Monday of the
month at 09:00") has a *mark*, a `worker_schedules` row named `journey-date:<id>` or
`journey-schedule:<id>`: `last_run_at` is the moment up to which its trigger moments were
handled, `due_at` when the worker looks next (at the next trigger moment known, and at
most `tick` later). Each time, in one transaction with the mark locked:

1. `claim` takes the mark and gives the window of moments to handle, (last handled, now];
   a mark never handled starts when the journey's current version was published. A
   window longer than the grace (`POSTILLON_JOURNEY_TRIGGER_GRACE`, 1 day: the worker was
   down) starts at now minus the grace: entries of the missed day(s) are still made, late, and
   older ones are left out (and logged) rather than sent days late.
2. `date_entrants` / `schedule_entrants` say who enters for the moments in the window:
   contacts with their entry keys (`date:<local day>`, `schedule:<local occurrence>`).
3. The task enters them (`JourneyEngine.enter`, whose unique entry key per journey makes
   a repeated entry no second run) and moves the mark on (`advance`).

Whether the task crashes before or after the commit, no moment is handled twice (the
mark moves in the entries' transaction) and none is skipped (it did not move otherwise).

Local times: a contact's moment for a day or occurrence is that wall-clock time in the
contact's `timezone`, else the journey's `timezone` (date triggers and `local`
schedules); other schedules use the journey's zone for everyone. Contacts are grouped by
zone: one scan of the contacts per journey and window finds the zones whose moment fell
in the window, and only their contacts are read.
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from postillon.automations import localtime, occurrences
from postillon.automations import model as am
from postillon.automations import schedules_repository as repository
from postillon.automations.definitions import Published
from postillon.automations.journeys.engine import Entrant
from postillon.filters import model as fm
from postillon.filters.service import FilterService

logger = logging.getLogger("postillon.automations")

DATE = "date"
SCHEDULE = "schedule"
_EPOCH = datetime(2000, 1, 3, tzinfo=UTC)  # a Monday at midnight: ticks align to it


@dataclass(frozen=True)
class Window:
    """Trigger moments after `since`, up to and including `until`."""

    since: datetime
    until: datetime

    def __contains__(self, moment: datetime) -> bool:
        return self.since < moment <= self.until


@dataclass(frozen=True)
class Due:
    """What a journey's trigger asks for in a window."""

    entrants: list[Entrant]
    # The next moment after the window at which anyone could be due (None: unknown).
    next_moment: datetime | None


def mark_name(kind: str, journey_id: uuid.UUID) -> str:
    return f"journey-{kind}:{journey_id}"


def trigger_kind(journey: Published) -> str | None:
    trigger = journey.journey.trigger
    if isinstance(trigger, am.DateTrigger):
        return DATE
    if isinstance(trigger, am.ScheduleTrigger):
        return SCHEDULE
    return None


def due_marks(session: Session, kind: str) -> dict[str, datetime]:
    """name → due_at of the marks of this kind (a read, before any write transaction)."""
    return repository.marks(session, f"journey-{kind}:")


def claim(
    session: Session, kind: str, journey: Published, *, now: datetime, grace: timedelta
) -> Window | None:
    """Take the journey's mark if due: the window of trigger moments to handle now."""
    name = mark_name(kind, journey.id)
    claimed, handled_until = repository.lock_mark(session, name, now=now)
    if not claimed:
        return None
    if handled_until is None:
        handled_until = repository.published_at(session, journey.id, journey.version) or now
    since = max(handled_until, now - grace)
    if since > handled_until:
        logger.warning(
            "journey %s: %s trigger moments from %s to %s were missed (more than %s ago)",
            journey.key, kind, handled_until.isoformat(), since.isoformat(), grace,
        )  # fmt: skip
    return Window(min(since, now), now)


def advance(
    session: Session,
    kind: str,
    journey_id: uuid.UUID,
    *,
    handled_until: datetime,
    next_due: datetime,
) -> None:
    repository.advance_mark(
        session, mark_name(kind, journey_id), handled_until=handled_until, next_due=next_due
    )


def postpone(session: Session, kind: str, journey_id: uuid.UUID, *, until: datetime) -> None:
    repository.postpone_mark(session, mark_name(kind, journey_id), until=until)


def next_tick(now: datetime, every: timedelta) -> datetime:
    """The first multiple of `every` (counted from a Monday midnight UTC) after `now`:
    ticks of 5 minutes fall on :00, :05 …, where local times of day of every zone fall."""
    elapsed = now - _EPOCH
    return _EPOCH + (elapsed // every + 1) * every


def contact_zones(session: Session) -> list[str | None]:
    """The zones contacts have, None included (contacts without one, now or later)."""
    return sorted({None, *repository.contact_zones(session)}, key=lambda z: z or "")


# --- date triggers ---


def date_entrants(
    session: Session, journey: Published, window: Window, zones: Sequence[str | None]
) -> Due:
    """The contacts whose date attribute makes them enter at a moment in `window`, each
    with the entry key `date:<local day>` (the day they enter on, in their zone)."""
    trigger = journey.journey.trigger
    assert isinstance(trigger, am.DateTrigger)
    groups = _zone_groups(journey, zones)
    due_days: dict[ZoneInfo, list[date]] = {}
    next_moment: datetime | None = None
    for zone in groups:
        for day in _days_around(window, zone):
            moment = localtime.first_moment(datetime.combine(day, trigger.at), zone)
            if moment in window:
                due_days.setdefault(zone, []).append(day)
            elif moment > window.until and (next_moment is None or moment < next_moment):
                next_moment = moment
    if not due_days:
        return Due([], next_moment)
    month_days: set[str] = set()
    for days in due_days.values():
        for day in days:
            month_days |= occurrences.month_days(trigger, day)
    rows = _dated_contacts(session, trigger, groups, due_days, month_days)
    default = _journey_zone(journey)
    entrants: list[Entrant] = []
    for contact_id, zone_name, stored_text in rows:
        stored = _date_of(stored_text)
        if stored is None:
            continue
        for day in due_days.get(localtime.zone_of(zone_name, default), ()):
            if occurrences.enters_on(trigger, stored, day):
                entrants.append(Entrant(contact_id, f"date:{day.isoformat()}", DATE))
    return Due(entrants, next_moment)


def _dated_contacts(
    session: Session,
    trigger: am.DateTrigger,
    groups: dict[ZoneInfo, set[str | None]],
    zones: Collection[ZoneInfo],
    month_days: set[str],
) -> list[tuple[uuid.UUID, str | None, str]]:
    """(contact, zone name, stored date) of the contacts living in `zones` whose date
    falls on one of `month_days`."""
    names = {name for zone in zones for name in groups[zone]}
    return repository.dated_contacts(
        session,
        trigger.attribute,
        month_days=month_days,
        zones={name for name in names if name is not None},
        without_zone=None in names,
    )


def next_date_moment(
    session: Session,
    journey: Published,
    after: datetime,
    zones: Sequence[str | None],
    *,
    within: timedelta,
) -> datetime | None:
    """The first moment after `after`, and within `within` of it, at which some contact's
    date makes them enter (None: nobody does). Reads every contact with a date that
    could: meant for the simulation, whose few contacts' birthdays let its clock jump
    from one to the next, not for a worker (which looks every tick anyway)."""
    trigger = journey.journey.trigger
    assert isinstance(trigger, am.DateTrigger)
    window = Window(after, after + within)
    groups = _zone_groups(journey, zones)
    # zone → its (local day, moment) in the window, in order.
    days: dict[ZoneInfo, list[tuple[date, datetime]]] = {}
    month_days: set[str] = set()
    for zone in groups:
        for day in _days_around(window, zone):
            moment = localtime.first_moment(datetime.combine(day, trigger.at), zone)
            if moment in window:
                days.setdefault(zone, []).append((day, moment))
                month_days |= occurrences.month_days(trigger, day)
    rows = _dated_contacts(session, trigger, groups, days, month_days)
    default = _journey_zone(journey)
    first: datetime | None = None
    for _contact_id, zone_name, stored_text in rows:
        stored = _date_of(stored_text)
        if stored is None:
            continue
        for day, moment in days.get(localtime.zone_of(zone_name, default), ()):
            if first is not None and moment >= first:
                break
            if occurrences.enters_on(trigger, stored, day):
                first = moment
                break
    return first


# --- schedules ---


def schedule_entrants(
    session: Session,
    filters: FilterService,
    journey: Published,
    window: Window,
    zones: Sequence[str | None],
) -> Due:
    """Everyone matching the journey's conditions, at each occurrence in `window` (in the
    journey's zone; with `local`, for the contacts of each zone whose local time reached
    it), with the entry key `schedule:<occurrence, local wall-clock time>`."""
    tree = journey.journey
    trigger = tree.trigger
    assert isinstance(trigger, am.ScheduleTrigger)
    groups = _zone_groups(journey, zones if trigger.local else ())
    # occurrence → the zone names whose moment of it is in the window (None: everyone).
    due: dict[datetime, set[str | None] | None] = {}
    next_moments: list[datetime] = []
    for zone, names in groups.items():
        days = _days_around(window, zone)
        for wall_time in occurrences.occurrences(trigger, days[0], days[-1]):
            if localtime.first_moment(wall_time, zone) not in window:
                continue
            if not trigger.local:
                due[wall_time] = None
                continue
            found = due.setdefault(wall_time, set())
            assert found is not None
            found.update(names)
        after = occurrences.next_occurrence(trigger, localtime.wall(window.until, zone))
        next_moments.append(localtime.first_moment(after, zone))
    entrants: list[Entrant] = []
    for wall_time, zone_names in sorted(due.items(), key=lambda item: item[0]):
        who = tree.conditions
        assert who is not None  # documents refuse a schedule without conditions
        if zone_names is not None:
            who = fm.All((who, _in_zones(zone_names)))
        key = f"schedule:{wall_time.isoformat(timespec='minutes')}"
        members = filters.members(session, who)
        entrants.extend(Entrant(contact_id, key, SCHEDULE) for contact_id in sorted(members))
    later = [moment for moment in next_moments if moment > window.until]
    return Due(entrants, min(later, default=None))


def _in_zones(names: set[str | None]) -> fm.Filter:
    """Contacts whose zone is one of `names` (None: contacts without a zone)."""
    named = tuple(sorted(name for name in names if name is not None))
    tests: list[fm.Filter] = []
    if named:
        tests.append(fm.FieldCondition("timezone", fm.Kind.text, fm.Test(fm.Op.in_, named)))
    if None in names:
        tests.append(fm.FieldCondition("timezone", fm.Kind.text, fm.Test(fm.Op.empty)))
    return tests[0] if len(tests) == 1 else fm.AnyOf(tuple(tests))


# --- shared ---


def _journey_zone(journey: Published) -> ZoneInfo:
    return localtime.zone_named(journey.journey.timezone) or ZoneInfo("UTC")


def _zone_groups(
    journey: Published, zones: Sequence[str | None]
) -> dict[ZoneInfo, set[str | None]]:
    """The zones in play → the contacts' zone names that mean each (None and names that
    are no zone mean the journey's). Without zones: the journey's alone."""
    default = _journey_zone(journey)
    groups: dict[ZoneInfo, set[str | None]] = defaultdict(set)
    groups[default].add(None)
    for name in zones:
        groups[localtime.zone_of(name, default)].add(name)
    return dict(groups)


def _days_around(window: Window, zone: ZoneInfo) -> list[date]:
    """The local days of the window in `zone`, with a day either side (a local time of
    day can fall on the next or previous day's date around a clock change)."""
    first = localtime.wall(window.since, zone).date() - timedelta(days=1)
    last = localtime.wall(window.until, zone).date() + timedelta(days=1)
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def _date_of(text: str) -> date | None:
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        return None
