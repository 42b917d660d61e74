"""HTTP routes for broadcasts. Thin: parse, call the service, shape the answer."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends, status

from postillon.broadcasts.schemas import (
    BroadcastIn,
    BroadcastOut,
    BroadcastStats,
    BroadcastStatus,
    ScheduleIn,
)
from postillon.web.dependencies import ReadSession, RuntimeDep, WriteSession, require_admin

router = APIRouter(prefix="/api", tags=["broadcasts"], dependencies=[Depends(require_admin)])


@router.get("/broadcasts")
def list_broadcasts(runtime: RuntimeDep, session: ReadSession) -> list[BroadcastOut]:
    return runtime.broadcasts.list_broadcasts(session)


@router.post("/broadcasts", status_code=status.HTTP_201_CREATED)
def create_broadcast(data: BroadcastIn, runtime: RuntimeDep, session: WriteSession) -> BroadcastOut:
    """A draft, or scheduled when `send_at` or `local_send_time` is given."""
    return runtime.broadcasts.create(session, data)


@router.get("/broadcasts/{key}")
def get_broadcast(key: str, runtime: RuntimeDep, session: ReadSession) -> BroadcastStatus:
    """The broadcast with its messages counted by state (`unknown`: in flight at a crash)."""
    return runtime.broadcasts.status(session, key)


@router.post("/broadcasts/{key}/schedule")
def schedule_broadcast(
    key: str, data: ScheduleIn, runtime: RuntimeDep, session: WriteSession
) -> BroadcastOut:
    return runtime.broadcasts.schedule(session, key, data)


@router.post("/broadcasts/{key}/send")
def send_broadcast(key: str, runtime: RuntimeDep, session: WriteSession) -> BroadcastOut:
    """Start now; the worker materialises the recipients and the sender sends."""
    return runtime.broadcasts.send_now(session, key)


@router.post("/broadcasts/{key}/cancel")
def cancel_broadcast(key: str, runtime: RuntimeDep, session: WriteSession) -> BroadcastOut:
    return runtime.broadcasts.cancel(session, key)


@router.get("/broadcasts/{key}/status")
def broadcast_status(key: str, runtime: RuntimeDep, session: ReadSession) -> BroadcastStatus:
    return runtime.broadcasts.status(session, key)


@router.get("/broadcasts/{key}/stats")
def broadcast_stats(
    key: str,
    runtime: RuntimeDep,
    session: ReadSession,
    since: datetime | None = None,
    until: datetime | None = None,
) -> BroadcastStats:
    """Sent, delivered, bounces, unique opens and clicks, rates; in total and by variant."""
    return runtime.broadcasts.stats(session, key, since=since, until=until)
