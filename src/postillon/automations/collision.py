"""Collision control for sends: frequency caps per channel across every journey, rule and
broadcast, and quiet hours in the contact's time zone.

`SendGate.decide` takes a batch of candidate sends and answers for each: allowed, or
held until a moment (the cap's next local day or week, the end of the quiet hours), with
the reason in words and the numbers behind it. Transactional sends are always allowed.
Sends allowed earlier in the same batch count towards the caps of later ones, so two
journeys acting on the same contact in one batch cannot both pass a cap of one.
What a journey then does with a held send (wait, skip, exit) is its own policy.

Caps (`frequency_caps`, one row per channel; none: no cap) count the contact's marketing
messages on the channel in its current local day and week (Monday 00:00 to Monday 00:00)
in the contact's `timezone`, else `POSTILLON_DEFAULT_TIMEZONE`; a message counts when it
reaches the recipient (`caps.repository.marketing_counts` says why), broadcasts included
although they are not gated (they have their own throttle). Quiet hours are the journey's
(`QuietHours`), read in the contact's zone, else the candidate's (the journey's), else the
default. When both hold a send, the later moment wins; a cap's moment that falls in
quiet hours which hold moves on to their end.

Concurrency: the batch is counted in one statement, after taking (on PostgreSQL) a
transaction-scoped advisory lock per capped contact, so two workers deciding for the same
contact at once decide one after the other, the second seeing the first's message once it
is committed. The caller must enqueue the allowed messages in the same transaction.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from postillon.automations import localtime
from postillon.automations import model as am
from postillon.automations.caps import repository as caps_repository

if TYPE_CHECKING:
    from postillon.clock import Clock
    from postillon.models import FrequencyCap


@dataclass(frozen=True)
class SendCandidate:
    # The caller's handle for the answer (a run id, a target index).
    key: Hashable
    contact_id: uuid.UUID
    channel: str = "email"
    marketing: bool = True
    quiet_hours: am.QuietHours | None = None
    # The zone of the quiet hours for a contact without one (the journey's `timezone`);
    # None: POSTILLON_DEFAULT_TIMEZONE. Caps always count in the contact's own zone.
    timezone: str | None = None


@dataclass(frozen=True)
class SendDecision:
    allowed: bool
    # When not allowed: the earliest moment the send may be tried again (None: the
    # quiet hours say skip, so there is none).
    retry_at: datetime | None = None
    # "cap_day", "cap_week", "quiet_hours" or "" when allowed.
    rule: str = ""
    reason: str = ""
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class _Hold:
    rule: str
    retry_at: datetime | None
    reason: str
    details: dict[str, Any]


class SendGate:
    def __init__(self, clock: Clock, *, default_timezone: str = "UTC") -> None:
        self.clock = clock
        self.default_zone = localtime.zone_named(default_timezone) or ZoneInfo("UTC")

    def decide(
        self, session: Session, candidates: Sequence[SendCandidate], *, now: datetime
    ) -> dict[Hashable, SendDecision]:
        """One decision per candidate, in a fixed number of queries for the batch."""
        decisions: dict[Hashable, SendDecision] = {
            c.key: SendDecision(allowed=True) for c in candidates if not c.marketing
        }
        gated = [c for c in candidates if c.marketing]
        if not gated:
            return decisions
        caps = caps_repository.caps_for(session, {c.channel for c in gated})
        capped = [c for c in gated if c.channel in caps]
        zoned = {c.contact_id for c in gated if c.channel in caps or c.quiet_hours}
        zones = caps_repository.timezones_of(session, zoned) if zoned else {}
        counts: dict[tuple[uuid.UUID, str], tuple[int, int]] = {}
        if capped:
            caps_repository.serialize_contacts(session, {c.contact_id for c in capped})
            counts = caps_repository.marketing_counts(session, self._bounds(capped, zones, now))
        allowed_now: Counter[tuple[uuid.UUID, str]] = Counter()
        for candidate in gated:
            pair = (candidate.contact_id, candidate.channel)
            holds: list[_Hold] = []
            quiet = None
            if candidate.quiet_hours is not None:
                quiet = self._quiet_hours(candidate, zones.get(candidate.contact_id), now)
                if quiet is not None:
                    holds.append(quiet)
            cap = caps.get(candidate.channel)
            if cap is not None:
                today, this_week = counts.get(pair, (0, 0))
                extra = allowed_now[pair]
                held = self._cap(
                    cap, candidate, zones.get(candidate.contact_id), today + extra,
                    this_week + extra, now,
                )  # fmt: skip
                if held is not None:
                    holds.append(self._after_quiet_hours(held, candidate, zones, quiet))
            decision = _combine(holds)
            if decision.allowed:
                allowed_now[pair] += 1
            decisions[candidate.key] = decision
        return decisions

    def _zone(self, name: str | None) -> ZoneInfo:
        return localtime.zone_of(name, self.default_zone)

    def _bounds(
        self,
        candidates: Sequence[SendCandidate],
        zones: dict[uuid.UUID, str | None],
        now: datetime,
    ) -> list[caps_repository.CountBounds]:
        found: dict[tuple[uuid.UUID, str], caps_repository.CountBounds] = {}
        for candidate in candidates:
            pair = (candidate.contact_id, candidate.channel)
            if pair in found:
                continue
            zone = self._zone(zones.get(candidate.contact_id))
            day_start, day_end = localtime.day_bounds(now, zone)
            week_start, week_end = localtime.week_bounds(now, zone)
            found[pair] = caps_repository.CountBounds(
                candidate.contact_id, candidate.channel, day_start, day_end, week_start, week_end
            )
        return list(found.values())

    def _cap(
        self,
        cap: FrequencyCap,
        candidate: SendCandidate,
        zone_name: str | None,
        today: int,
        this_week: int,
        now: datetime,
    ) -> _Hold | None:
        """The cap the send would exceed (the week's before the day's: it holds longer)."""
        zone = self._zone(zone_name)
        details: dict[str, Any] = {
            "channel": candidate.channel,
            "today": today,
            "this_week": this_week,
            "per_day": cap.per_day,
            "per_week": cap.per_week,
            "timezone": zone.key,
        }
        noun = _noun(candidate.channel, this_week)
        if cap.per_week is not None and this_week >= cap.per_week:
            retry_at = localtime.week_bounds(now, zone)[1]
            reason = f"{this_week} marketing {noun} this week (cap {cap.per_week} per week)"
            return _Hold("cap_week", retry_at, reason, details)
        if cap.per_day is not None and today >= cap.per_day:
            retry_at = localtime.day_bounds(now, zone)[1]
            reason = f"{today} marketing {_noun(candidate.channel, today)} today"
            return _Hold("cap_day", retry_at, f"{reason} (cap {cap.per_day} per day)", details)
        return None

    def _quiet_hours(
        self, candidate: SendCandidate, zone_name: str | None, now: datetime
    ) -> _Hold | None:
        quiet = candidate.quiet_hours
        assert quiet is not None
        zone = self._zone(zone_name or candidate.timezone)
        until = localtime.in_window(now, zone, quiet.start, quiet.end)
        if until is None:
            return None
        window = localtime.describe_window(quiet.start, quiet.end)
        skip = quiet.action is am.OnQuietHours.skip
        details: dict[str, Any] = {
            "start": quiet.start.strftime("%H:%M"),
            "end": quiet.end.strftime("%H:%M"),
            "timezone": zone.key,
            "action": str(quiet.action),
            "until": until.isoformat(),
        }
        return _Hold(
            "quiet_hours", None if skip else until, f"quiet hours {window} {zone.key}", details
        )

    def _after_quiet_hours(
        self,
        held: _Hold,
        candidate: SendCandidate,
        zones: dict[uuid.UUID, str | None],
        quiet: _Hold | None,
    ) -> _Hold:
        """A cap's retry that falls in quiet hours which hold moves on to their end (a
        send held until midnight by a daily cap waits for the morning)."""
        hours = candidate.quiet_hours
        if hours is None or hours.action is not am.OnQuietHours.hold or held.retry_at is None:
            return held
        later = self._quiet_hours(candidate, zones.get(candidate.contact_id), held.retry_at)
        if later is None or later.retry_at is None:
            return held
        if quiet is not None and quiet.retry_at is not None and quiet.retry_at >= later.retry_at:
            return held  # the quiet hours the send is in now end later anyway
        details = {**held.details, "quiet_hours": later.details}
        reason = f"{held.reason}, then {later.reason}"
        return _Hold(held.rule, later.retry_at, reason, details)


def _combine(holds: list[_Hold]) -> SendDecision:
    """Allowed without holds; else the hold with the latest retry (a skip: no retry at
    all) decides, and the reason names every hold, the deciding one first."""
    if not holds:
        return SendDecision(allowed=True)
    never = [h for h in holds if h.retry_at is None]
    deciding = never[0] if never else max(holds, key=lambda h: h.retry_at or datetime.min)
    others = [h for h in holds if h is not deciding]
    details: dict[str, Any] = {"rule": deciding.rule, **deciding.details}
    details.update({h.rule: h.details for h in others})
    return SendDecision(
        allowed=False,
        retry_at=deciding.retry_at,
        rule=deciding.rule,
        reason="; ".join(h.reason for h in [deciding, *others]),
        details=details,
    )


_NOUNS = {
    "email": ("email", "emails"),
    "sms": ("SMS", "SMS"),
    "push": ("push notification", "push notifications"),
}


def _noun(channel: str, count: int) -> str:
    one, many = _NOUNS.get(channel, (f"{channel} message", f"{channel} messages"))
    return one if count == 1 else many
