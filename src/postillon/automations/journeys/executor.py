"""Executing due steps: claim a batch of runs, then execute their steps as sets.

1. Claim up to `limit` runs that are due — `active` with `due_at <= now`, or `waiting`
   whose timeout passed — of active journeys (a paused journey's runs hold), oldest due
   first, `FOR UPDATE SKIP LOCKED` on PostgreSQL so workers share them.
2. End the runs that reached their goal or an exit criterion (events on the timeline,
   and the filters, for the batch's contacts at once).
3. Timed-out waits go on (or resume, if an event of their window is stored).
4. Passes: the due runs are grouped by (journey, version, step) and each group's step
   executed with a fixed number of queries; a run that is due again at once (after a
   branch, an update, a send …) goes on in the next pass, until every run of the batch
   waits or has ended.
5. One write of the runs, one insert of the history; moves, then queued runs start.

Each group's step runs inside a savepoint: if it fails, its runs are put back as they
were and retried after a growing delay (1 minute, doubling, at most an hour), with a
`failed` history entry saying why; the rest of the batch is committed.
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from postillon.automations.definitions import Definitions, Published
from postillon.automations.journeys import events, repository, steps
from postillon.automations.journeys.batch import Batch
from postillon.automations.journeys.runs import Run, RunState

if TYPE_CHECKING:
    from postillon.automations.journeys.engine import JourneyEngine

logger = logging.getLogger("postillon.journeys")

# A journey has at most 200 steps and no loop without a wait, so a run passes through
# at most that many in one go; the bound only guards against the unforeseen.
MAX_PASSES = 250


def run_due(
    engine: JourneyEngine,
    session: Session,
    definitions: Definitions,
    *,
    now: datetime,
    limit: int,
) -> int:
    """Execute the due steps of up to `limit` runs; returns the steps executed (and the
    runs ended by goals, exits and timeouts)."""
    claimed = repository.claim_due(session, now, limit)
    if not claimed:
        return 0
    batch = Batch(engine, session, definitions, now, claimed)
    runs = [run for run in claimed if batch.published(run) is not None]
    events.check_criteria(batch, runs)
    events.time_out(batch, [r for r in runs if r.state == RunState.waiting])
    for _ in range(MAX_PASSES):
        due = [
            run
            for run in runs
            if run.state == RunState.active
            and not batch.detached(run)
            and run.due_at is not None
            and run.due_at <= now
        ]
        if not due:
            break
        groups: dict[tuple[uuid.UUID, int, str | None], list[Run]] = defaultdict(list)
        for run in due:
            groups[(run.journey_id, run.version, run.step_id)].append(run)
        for (_, _, step_id), group in groups.items():
            published = batch.published(group[0])
            assert published is not None
            _execute(batch, published, step_id, [r for r in group if not batch.detached(r)])
    batch.finish()
    return batch.work


def _execute(batch: Batch, published: Published, step_id: str | None, group: Sequence[Run]) -> None:
    """One group's step inside a savepoint: a step that fails (a broken action, a
    template gone wrong) is rolled back and retried later for its runs alone, instead of
    failing the batch again and again and holding up every journey behind it."""
    saved = batch.checkpoint(group)
    try:
        with batch.session.begin_nested():
            steps.execute(batch, published, step_id, group)
    except Exception as error:
        logger.exception(
            "journey %s step %s failed for %d run(s)", published.key, step_id, len(group)
        )
        batch.failed(saved, step_id, error)
