"""Helpers shared by the tracking tests."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import select

from postillon.models import Event
from postillon.runtime import Runtime
from postillon.worker.runner import Worker


def stored_events(runtime: Runtime, **where: Any) -> list[Event]:
    with runtime.database.transaction(read_only=True) as session:
        query = select(Event).where(Event.type != "internal").order_by(Event.id)
        for name, value in where.items():
            query = query.where(getattr(Event, name) == value)
        return list(session.scalars(query))


def run_worker_round(runtime: Runtime) -> int:
    worker = Worker(runtime, name="test")
    return asyncio.run(worker.run_round(runtime.clock.now()))
