"""Broadcasts: define, schedule, send, cancel, follow; the worker moves them along."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from postillon.broadcasts import planning, progress, repository
from postillon.broadcasts.progress import BroadcastState
from postillon.broadcasts.schemas import (
    AbTestIn,
    BroadcastIn,
    BroadcastOut,
    BroadcastStats,
    BroadcastStatus,
    ScheduleIn,
    VariantOut,
)
from postillon.clock import Clock, ensure_utc
from postillon.contacts.fields import FieldError, normalise_timezone
from postillon.errors import Conflict, FieldProblem, InvalidInput, NotFound
from postillon.kit.ids import new_id
from postillon.messages import stats
from postillon.messages.stats import Figures
from postillon.models import Broadcast, BroadcastVariant

_KEY = re.compile(r"^[A-Za-z0-9_-]{1,100}$")
# Recipients materialised per step (and transaction).
DEFAULT_CHUNK_SIZE = 2000


class BroadcastService:
    def __init__(self, clock: Clock, *, chunk_size: int = DEFAULT_CHUNK_SIZE) -> None:
        self.clock = clock
        self.chunk_size = chunk_size

    # --- definitions ---

    def create(self, session: Session, data: BroadcastIn) -> BroadcastOut:
        """A draft, or scheduled when the data names a time."""
        problems = self._check(session, data)
        if problems:
            raise InvalidInput.of(problems)
        if repository.by_key(session, data.key) is not None:
            message = f"a broadcast {data.key!r} exists already"
            raise Conflict(f"key: {message}", [FieldProblem("key", message)])
        variants = data.variants or []
        template_keys = [data.template] if data.template else [v.template for v in variants]
        templates = repository.templates_by_key(session, template_keys)
        now = self.clock.now()
        broadcast = Broadcast(
            id=new_id(),
            key=data.key,
            name=data.name.strip() or data.key,
            state=BroadcastState.draft,
            audience_kind=(
                "segment"
                if data.audience.segment
                else "topic"
                if data.audience.topic
                else "everyone"
            ),
            audience_key=data.audience.segment or data.audience.topic,
            timezone=normalise_timezone(data.timezone),
            rate_per_minute=data.rate_per_minute,
            test_share_percent=data.ab_test.share_percent if data.ab_test else None,
            test_duration_seconds=data.ab_test.duration_minutes * 60 if data.ab_test else None,
            winner_metric=data.ab_test.metric if data.ab_test else None,
            phase_done=False,
            recipient_count=0,
            throttle_slots={},
            created_at=now,
            updated_at=now,
        )
        names = [v.name for v in variants] if variants else ["A"]
        rows = [
            BroadcastVariant(
                broadcast_id=broadcast.id,
                name=name,
                position=position,
                template_id=templates[key].id,
            )
            for position, (name, key) in enumerate(zip(names, template_keys, strict=True))
        ]
        repository.add(session, broadcast, rows)
        if data.send_at is not None or data.local_send_time is not None:
            self._set_schedule(
                broadcast,
                ScheduleIn(send_at=data.send_at, local_send_time=data.local_send_time),
                now,
            )
        return self._out(session, broadcast)

    def _check(self, session: Session, data: BroadcastIn) -> list[FieldProblem]:
        problems: list[FieldProblem] = []
        if not _KEY.match(data.key):
            problems.append(FieldProblem("key", "use letters, digits, - and _ (at most 100)"))
        try:
            normalise_timezone(data.timezone)
        except FieldError as error:
            problems.append(FieldProblem("timezone", str(error)))
        variants = data.variants or []
        if data.variants is not None:
            if not variants:
                problems.append(FieldProblem("variants", "give at least one variant"))
            seen: set[str] = set()
            for index, variant in enumerate(variants):
                if variant.name in seen:
                    problems.append(FieldProblem(f"variants[{index}].name", "used twice"))
                seen.add(variant.name)
        if data.ab_test is not None:
            problems.extend(_check_ab_test(data.ab_test, len(variants)))
        elif len(variants) > 1:
            problems.append(FieldProblem("ab_test", "several variants need an A/B test"))
        wanted = (
            [("template", data.template)]
            if data.template
            else [(f"variants[{i}].template", v.template) for i, v in enumerate(variants)]
        )
        templates = repository.templates_by_key(session, [key for _, key in wanted])
        problems.extend(
            FieldProblem(location, f"no template {key!r}")
            for location, key in wanted
            if key not in templates
        )
        if (
            data.audience.segment
            and repository.segment_id_by_key(session, data.audience.segment) is None
        ):
            problems.append(
                FieldProblem("audience.segment", f"no segment {data.audience.segment!r}")
            )
        return problems

    def list_broadcasts(self, session: Session) -> list[BroadcastOut]:
        broadcasts = repository.all_broadcasts(session)
        variants = repository.variants_of(session, [b.id for b in broadcasts])
        return [_out(b, variants[b.id]) for b in broadcasts]

    def get(self, session: Session, key: str) -> BroadcastOut:
        return self._out(session, self._broadcast(session, key))

    # --- sending ---

    def schedule(self, session: Session, key: str, data: ScheduleIn) -> BroadcastOut:
        """Send at a moment, or at a wall-clock time in each recipient's zone."""
        broadcast = self._broadcast(session, key, lock=True)
        if broadcast.state not in (BroadcastState.draft, BroadcastState.scheduled):
            raise Conflict(f"broadcast {key!r} is {broadcast.state}: it cannot be rescheduled")
        if data.timezone is not None:
            try:
                broadcast.timezone = normalise_timezone(data.timezone)
            except FieldError as error:
                raise InvalidInput.at("timezone", str(error)) from None
        self._set_schedule(broadcast, data, self.clock.now())
        return self._out(session, broadcast)

    def _set_schedule(self, broadcast: Broadcast, data: ScheduleIn, now: datetime) -> None:
        if data.local_send_time is not None:
            broadcast.send_at = None
            broadcast.local_send_time = planning.format_local_time(data.local_send_time)
            broadcast.start_at = planning.local_start(data.local_send_time)
        else:
            assert data.send_at is not None
            broadcast.send_at = ensure_utc(data.send_at)
            broadcast.local_send_time = None
            broadcast.start_at = broadcast.send_at
        broadcast.state = BroadcastState.scheduled
        broadcast.updated_at = now

    def send_now(self, session: Session, key: str) -> BroadcastOut:
        """Start it at once (a scheduled broadcast starts early)."""
        broadcast = self._broadcast(session, key, lock=True)
        if broadcast.state not in (BroadcastState.draft, BroadcastState.scheduled):
            raise Conflict(f"broadcast {key!r} is {broadcast.state} already")
        now = self.clock.now()
        self._set_schedule(broadcast, ScheduleIn(send_at=now), now)
        progress.advance(session, broadcast, now, chunk_size=self.chunk_size)
        return self._out(session, broadcast)

    def cancel(self, session: Session, key: str) -> BroadcastOut:
        """No more of its messages go out (those in flight finish)."""
        broadcast = self._broadcast(session, key, lock=True)
        if broadcast.state in (BroadcastState.sent, BroadcastState.cancelled):
            raise Conflict(f"broadcast {key!r} is {broadcast.state} already")
        now = self.clock.now()
        repository.cancel_queued(session, broadcast.id, now)
        broadcast.state = BroadcastState.cancelled
        broadcast.finished_at = now
        broadcast.updated_at = now
        broadcast.final_counts = repository.counts_by_state(session, broadcast.id)
        return self._out(session, broadcast)

    def advance(self, session: Session, broadcast_id: uuid.UUID) -> bool:
        """One step of a broadcast (the worker's turn); False if there was nothing to do
        or another worker holds it."""
        broadcast = repository.claim(session, broadcast_id)
        if broadcast is None:
            return False
        return progress.advance(session, broadcast, self.clock.now(), chunk_size=self.chunk_size)

    def advance_key(self, session: Session, key: str) -> bool:
        """One step of the broadcast called `key` (the CLI drives its own broadcast)."""
        return self.advance(session, self._broadcast(session, key).id)

    def due_ids(self, session: Session) -> list[uuid.UUID]:
        return repository.active_ids(session, self.clock.now())

    # --- following ---

    def status(self, session: Session, key: str) -> BroadcastStatus:
        broadcast = self._broadcast(session, key)
        counts = repository.counts_by_state(session, broadcast.id)
        pending = sum(counts.get(state, 0) for state in repository.PENDING_STATES)
        return BroadcastStatus(
            **self._out(session, broadcast).model_dump(),
            counts=counts,
            done=sum(counts.values()) - pending,
            unknown=counts.get("unknown", 0),
        )

    def stats(
        self, session: Session, key: str, *, since: datetime | None, until: datetime | None
    ) -> BroadcastStats:
        """Figures of the whole broadcast and of each variant (one aggregate query)."""
        broadcast = self._broadcast(session, key)
        by_variant = stats.figures_by(
            session,
            where={"broadcast_id": broadcast.id},
            group_by=["variant"],
            since=since,
            until=until,
        )
        totals = sum(by_variant.values(), Figures())
        return BroadcastStats(
            broadcast=key,
            since=since,
            until=until,
            totals=totals.out(),
            variants={str(group[0]): figures.out() for group, figures in by_variant.items()},
        )

    def _broadcast(self, session: Session, key: str, *, lock: bool = False) -> Broadcast:
        broadcast = repository.by_key(session, key, lock=lock)
        if broadcast is None:
            raise NotFound(f"no broadcast {key!r}")
        return broadcast

    def _out(self, session: Session, broadcast: Broadcast) -> BroadcastOut:
        return _out(broadcast, repository.variants_of(session, [broadcast.id])[broadcast.id])


def _check_ab_test(ab_test: AbTestIn, variant_count: int) -> list[FieldProblem]:
    if variant_count < 2:
        return [FieldProblem("variants", "an A/B test needs at least two variants")]
    if ab_test.share_percent * variant_count >= 100:
        return [
            FieldProblem(
                "ab_test.share_percent",
                f"{variant_count} variants at {ab_test.share_percent} % each leave "
                "nobody for the winner",
            )
        ]
    return []


def _out(broadcast: Broadcast, variants: list[Any]) -> BroadcastOut:
    ab_test = None
    if broadcast.test_share_percent:
        ab_test = AbTestIn(
            share_percent=broadcast.test_share_percent,
            duration_minutes=(broadcast.test_duration_seconds or 60) // 60,
            metric="clicks" if broadcast.winner_metric == "clicks" else "opens",
        )
    audience: dict[str, Any] = {"everyone": True}
    if broadcast.audience_kind in ("segment", "topic"):
        audience = {broadcast.audience_kind: broadcast.audience_key}
    return BroadcastOut(
        id=broadcast.id,
        key=broadcast.key,
        name=broadcast.name,
        state=broadcast.state,
        audience=audience,
        variants=[VariantOut(name=v.name, template=t.key) for v, t in variants],
        ab_test=ab_test,
        send_at=broadcast.send_at,
        local_send_time=broadcast.local_send_time,
        timezone=broadcast.timezone,
        start_at=broadcast.start_at,
        rate_per_minute=broadcast.rate_per_minute,
        test_ends_at=broadcast.test_ends_at,
        winner_variant=broadcast.winner_variant,
        test_results=broadcast.test_results,
        recipient_count=broadcast.recipient_count,
        last_error=broadcast.last_error,
        created_at=broadcast.created_at,
        started_at=broadcast.started_at,
        finished_at=broadcast.finished_at,
    )
