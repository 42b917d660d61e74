"""Moving a broadcast along, one step per call and per transaction: start it, materialise
the next chunk of recipients into `messages`, pick the A/B winner, mark it sent.

Every step is in the caller's transaction with the broadcast row locked, and the row
records where the next step starts (`phase`, `cursor_contact_id`, `phase_done`): a worker
killed at any point leaves either the whole step or none of it, and the next worker goes
on from there. Messages are keyed `broadcast:<id>:<contact>`, so no step can ever make a
second message for a contact, even if two workers raced.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from postillon.broadcasts import planning, repository
from postillon.kit.ids import new_id
from postillon.messages import repository as messages_repository
from postillon.messages import stats
from postillon.messages.service import MessageState
from postillon.models import Broadcast, BroadcastVariant, EmailTemplate

logger = logging.getLogger("postillon.broadcasts")


class BroadcastState(StrEnum):
    draft = "draft"
    scheduled = "scheduled"
    testing = "testing"
    sending = "sending"
    sent = "sent"
    cancelled = "cancelled"


def advance(session: Session, broadcast: Broadcast, now: datetime, *, chunk_size: int) -> bool:
    """Do the broadcast's next step at `now`; False when it has nothing to do yet (the
    test still runs, messages are still going out)."""
    if broadcast.state == BroadcastState.scheduled:
        if broadcast.start_at is None or broadcast.start_at > now:
            return False
        _start(broadcast, now)
        return True
    if broadcast.state not in (BroadcastState.testing, BroadcastState.sending):
        return False
    if not broadcast.phase_done:
        _materialise_chunk(session, broadcast, now, chunk_size)
        return True
    if broadcast.state == BroadcastState.testing:
        if broadcast.test_ends_at is not None and broadcast.test_ends_at > now:
            return False
        _pick_winner(session, broadcast, now)
        return True
    if repository.has_pending(session, broadcast.id):
        return False
    broadcast.state = BroadcastState.sent
    broadcast.finished_at = now
    broadcast.final_counts = repository.counts_by_state(session, broadcast.id)
    broadcast.updated_at = now
    logger.info("broadcast %s sent: %s", broadcast.key, broadcast.final_counts)
    return True


def _start(broadcast: Broadcast, now: datetime) -> None:
    broadcast.started_at = now
    broadcast.phase = "test" if broadcast.test_share_percent else "main"
    broadcast.state = (
        BroadcastState.testing if broadcast.phase == "test" else BroadcastState.sending
    )
    _begin_phase(broadcast, now)


def _begin_phase(broadcast: Broadcast, now: datetime) -> None:
    broadcast.cursor_contact_id = None
    broadcast.phase_done = False
    broadcast.phase_started_at = now
    broadcast.updated_at = now


def _materialise_chunk(session: Session, broadcast: Broadcast, now: datetime, size: int) -> None:
    segment_id = None
    if broadcast.audience_kind == "segment":
        assert broadcast.audience_key is not None
        segment_id = repository.segment_id_by_key(session, broadcast.audience_key)
        if segment_id is None:
            # Deleted since: nobody more can be found; what was made goes out.
            broadcast.last_error = f"segment {broadcast.audience_key!r} no longer exists"
            _end_phase(broadcast, now)
            return
    recipients = repository.audience_chunk(
        session,
        kind=broadcast.audience_kind,
        segment_id=segment_id,
        topic=broadcast.audience_key,
        after=broadcast.cursor_contact_id,
        limit=size,
    )
    if not recipients:
        _end_phase(broadcast, now)
        return
    # Those with a message of this broadcast already (the test share in the main phase, or
    # a chunk done again) take no throttle slot and are not counted twice.
    taken = repository.keys_taken(session, [_key(broadcast, c) for c, _, _ in recipients])
    fresh = [r for r in recipients if _key(broadcast, r[0]) not in taken]
    variants = repository.variants_of(session, [broadcast.id])[broadcast.id]
    rows = _message_rows(broadcast, variants, fresh, now)
    messages_repository.insert_messages(session, rows)
    broadcast.cursor_contact_id = recipients[-1][0]
    broadcast.recipient_count += len(rows)
    latest = max((row["due_at"] for row in rows), default=None)
    if latest is not None and (broadcast.last_due_at is None or latest > broadcast.last_due_at):
        broadcast.last_due_at = latest
    broadcast.updated_at = now


def _message_rows(
    broadcast: Broadcast,
    variants: list[tuple[BroadcastVariant, EmailTemplate]],
    recipients: Sequence[tuple[uuid.UUID, str | None, str | None]],
    now: datetime,
) -> list[dict[str, Any]]:
    by_name = {variant.name: template for variant, template in variants}
    names = [variant.name for variant, _ in variants]
    testing = broadcast.phase == "test"
    # The main phase sends the winner (or the only variant) to everyone not sent yet: the
    # test share has its messages already, and their keys keep them from a second one.
    main_variant = broadcast.winner_variant or names[0]
    spreader = planning.Spreader(broadcast.rate_per_minute, dict(broadcast.throttle_slots or {}))
    default_zone = planning.zone(broadcast.timezone, ZoneInfo("UTC"))
    local_time = (
        planning.parse_local_time(broadcast.local_send_time) if broadcast.local_send_time else None
    )
    phase_start = broadcast.phase_started_at or now
    # Sent to a topic's subscribers, it is mail of that topic: its unsubscribe link and
    # the check before sending are about that topic, whatever the template's own.
    topic = broadcast.audience_key if broadcast.audience_kind == "topic" else None
    rows: list[dict[str, Any]] = []
    for contact_id, email, timezone in recipients:
        if testing:
            assert broadcast.test_share_percent is not None
            variant = planning.test_variant(
                broadcast.id, contact_id, names, broadcast.test_share_percent
            )
            if variant is None:
                continue
        else:
            variant = main_variant
        start = phase_start
        if local_time is not None:
            start = max(
                phase_start,
                planning.local_moment(local_time, planning.zone(timezone, default_zone)),
            )
        template = by_name[variant]
        rows.append(
            {
                "id": new_id(),
                "contact_id": contact_id,
                "channel": "email",
                "kind": template.kind,
                "topic": topic or template.topic,
                "template_id": template.id,
                "template_version": template.version,
                "broadcast_id": broadcast.id,
                "variant": variant,
                "source": "broadcast",
                "dedupe_key": _key(broadcast, contact_id),
                "to_address": email,
                "context": {},
                "state": MessageState.queued,
                "attempts": 0,
                "due_at": spreader.due(start),
                "queued_at": now,
            }
        )
    broadcast.throttle_slots = spreader.slots
    return rows


def _key(broadcast: Broadcast, contact_id: uuid.UUID) -> str:
    return f"broadcast:{broadcast.id}:{contact_id}"


def _end_phase(broadcast: Broadcast, now: datetime) -> None:
    broadcast.phase_done = True
    broadcast.updated_at = now
    if broadcast.phase == "test":
        assert broadcast.test_duration_seconds is not None
        last_due = max(broadcast.last_due_at or now, now)
        broadcast.test_ends_at = last_due + timedelta(seconds=broadcast.test_duration_seconds)


def _pick_winner(session: Session, broadcast: Broadcast, now: datetime) -> None:
    """The variant with the best rate of unique opens (or clicks) per sent message wins;
    ties go to the first variant. The figures are kept with the broadcast."""
    variants = repository.variants_of(session, [broadcast.id])[broadcast.id]
    found = stats.figures_by(session, where={"broadcast_id": broadcast.id}, group_by=["variant"])
    results: dict[str, Any] = {}
    best: tuple[str, float] | None = None
    for variant, _ in variants:
        figures = found.get((variant.name,), stats.Figures())
        decisive = (
            figures.unique_clicks if broadcast.winner_metric == "clicks" else figures.unique_opens
        )
        rate = decisive / figures.sent if figures.sent else 0.0
        results[variant.name] = {
            "sent": figures.sent,
            "unique_opens": figures.unique_opens,
            "unique_clicks": figures.unique_clicks,
            "rate": round(rate, 6),
        }
        if best is None or rate > best[1]:
            best = (variant.name, rate)
    assert best is not None
    broadcast.winner_variant = best[0]
    broadcast.test_results = {"metric": broadcast.winner_metric, "variants": results}
    broadcast.phase = "main"
    broadcast.state = BroadcastState.sending
    _begin_phase(broadcast, now)
    logger.info("broadcast %s: variant %s won %s", broadcast.key, best[0], results)
