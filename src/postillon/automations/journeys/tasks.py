"""Worker task: execute due journey steps, a batch of runs per transaction."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from postillon.runtime import Runtime


class JourneyStepTask:
    name = "journey_steps"

    def __init__(self, *, batch_size: int = 1000, batches_per_round: int = 20) -> None:
        self.batch_size = batch_size
        # Batches per call, so a backlog does not hold up the worker's other tasks.
        self.batches_per_round = batches_per_round

    def run_due(self, runtime: Runtime, now: datetime) -> int:
        done = 0
        for _ in range(self.batches_per_round):
            with runtime.database.transaction() as session:
                definitions = runtime.definitions.load(session)
                steps = runtime.journeys.run_due(
                    session, definitions, now=now, limit=self.batch_size
                )
            done += steps
            if not steps:
                break
        return done
