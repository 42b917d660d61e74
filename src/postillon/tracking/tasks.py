"""Worker task: forget anonymous visitors whose retention window has passed."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from postillon.runtime import Runtime


class AnonymousPurgeTask:
    name = "anonymous_purge"

    def __init__(self, *, batch: int = 10_000) -> None:
        self.batch = batch

    def run_due(self, runtime: Runtime, now: datetime) -> int:
        with runtime.database.transaction() as session:
            return runtime.tracking.purge_anonymous(session, now, limit=self.batch)
