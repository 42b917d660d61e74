"""Worker task: refresh every contact's computed traits, once per
`traits_refresh_interval` across all workers."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from postillon.traits import repository
from postillon.worker import schedule

if TYPE_CHECKING:
    from postillon.runtime import Runtime

logger = logging.getLogger("postillon.traits")

# After a failure, the next attempt comes this much later (or at the next period).
_RETRY_AFTER = timedelta(minutes=5)


class TraitsRefreshTask:
    name = "traits_refresh"

    def run_due(self, runtime: Runtime, now: datetime) -> int:
        every = runtime.settings.traits_refresh_interval
        with runtime.database.transaction(read_only=True) as session:
            if not schedule.is_due(session, self.name, now):
                return 0
        try:
            with runtime.database.transaction() as session:
                # Another worker refreshing (or an on-demand refresh) holds the lock.
                if not repository.serialize_refreshes(session, wait=False):
                    return 0
                if not schedule.claim(session, self.name, now=now, every=every):
                    return 0
                changed = runtime.traits.refresh(session)
        except Exception:
            with runtime.database.transaction() as session:
                schedule.postpone(session, self.name, until=now + min(every, _RETRY_AFTER))
            raise
        logger.info("traits refreshed: %d contact(s) changed", len(changed))
        return 1
