"""The worker loop. Each round it asks every registered task to do what is due, then waits
on the clock, so tests drive it by advancing a VirtualClock instead of sleeping.

Tasks find their work in the database (rows with a due time and a state) and claim it in
batches, so any number of workers, in `postillon serve` or `postillon worker` processes on
any machines, share the load. Later features register their tasks in `worker.tasks`.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

from postillon.runtime import Runtime
from postillon.worker.tasks import WorkerTask, default_tasks

logger = logging.getLogger("postillon.worker")


class Worker:
    def __init__(
        self, runtime: Runtime, *, name: str, tasks: list[WorkerTask] | None = None
    ) -> None:
        self.runtime = runtime
        self.name = name
        self.tasks = default_tasks() if tasks is None else tasks
        self._stopping = asyncio.Event()
        self.rounds = 0

    def stop(self) -> None:
        self._stopping.set()

    async def run_round(self, now: datetime) -> int:
        """Give every task one turn at `now`; returns how many units of work were done."""
        done = 0
        for task in self.tasks:
            try:
                done += await asyncio.to_thread(task.run_due, self.runtime, now)
            except Exception:
                # One failing task must not stop the others; its work stays due.
                logger.exception("worker %s: task %s failed", self.name, task.name)
        self.rounds += 1
        return done

    async def run_forever(self) -> None:
        logger.info("worker %s started with %d task(s)", self.name, len(self.tasks))
        poll = timedelta(seconds=self.runtime.settings.worker_poll_seconds)
        while not self._stopping.is_set():
            started = self.runtime.clock.now()
            done = await self.run_round(started)
            if done:
                continue  # more may be waiting: go again at once
            # Counted from the round's start: time that passed during the round counts.
            sleeper = asyncio.ensure_future(self.runtime.clock.sleep_until(started + poll))
            stopper = asyncio.ensure_future(self._stopping.wait())
            await asyncio.wait({sleeper, stopper}, return_when=asyncio.FIRST_COMPLETED)
            for pending in (sleeper, stopper):
                pending.cancel()
        logger.info("worker %s stopped after %d round(s)", self.name, self.rounds)
