"""Worker task: the daily score decay.

Once a day, at `POSTILLON_SCORE_DECAY_TIME` (UTC), and once when a worker starts, each
worker decays the scores that are due, a batch per transaction. Several workers doing it
the same day is harmless: on PostgreSQL they take turns on the scoring lock, and what one
decayed is not due for the next (see `decay.py`).
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from postillon.runtime import Runtime


class ScoreDecayTask:
    name = "score_decay"

    def __init__(self, *, batch: int = 2000) -> None:
        self.batch = batch
        self._done_for: datetime | None = None

    def run_due(self, runtime: Runtime, now: datetime) -> int:
        slot = latest_slot(now, runtime.settings.score_decay_time)
        if self._done_for == slot:
            return 0
        with runtime.database.transaction() as session:
            decayed = runtime.scoring.decay(session, now=now, limit=self.batch)
        if decayed < self.batch:
            self._done_for = slot  # until the next slot; else the next round goes on
        return decayed


def latest_slot(now: datetime, at: time) -> datetime:
    """The latest moment at or before `now` whose UTC time of day is `at`."""
    today = datetime.combine(now.date(), at.replace(tzinfo=now.tzinfo))
    return today if today <= now else today - timedelta(days=1)
