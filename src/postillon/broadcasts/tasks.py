"""Worker task: move every active broadcast one step along (start, materialise a chunk,
pick the A/B winner, finish), each step in its own transaction."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from postillon.runtime import Runtime


class BroadcastTask:
    name = "broadcasts"

    def run_due(self, runtime: Runtime, now: datetime) -> int:
        with runtime.database.transaction(read_only=True) as session:
            due = runtime.broadcasts.due_ids(session)
        done = 0
        for broadcast_id in due:
            # A step per broadcast and round, so one large broadcast does not hold up
            # the others (or the worker's other tasks).
            with runtime.database.transaction() as session:
                done += runtime.broadcasts.advance(session, broadcast_id)
        return done
