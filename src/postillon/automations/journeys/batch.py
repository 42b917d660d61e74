"""A batch of runs being decided about in one transaction: what steps, waits, goals and
exits change in memory, and the one write of it all at the end.

Steps change runs through `go` (on to a step, or completed after the last), `end` (a
final state with its reason) and `note` (a history entry); the batch remembers which
runs it touched and writes exactly those back (one executemany), then the history (one
insert), then moves into other journeys, then starts the queued runs of contacts whose
exclusive journey ended.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from postillon.automations import history as hist
from postillon.automations import model as am
from postillon.automations.definitions import Definitions, Published
from postillon.automations.journeys import repository
from postillon.automations.journeys.entry import Entrant, catalog_at, promote_queued
from postillon.automations.journeys.runs import LIVE, Run, RunState
from postillon.filters import model as fm
from postillon.filters.sql import Catalog

if TYPE_CHECKING:
    from postillon.automations.journeys.engine import JourneyEngine

_FIRST_RETRY = timedelta(minutes=1)
_LAST_RETRY = timedelta(hours=1)

_END_OUTCOMES = {
    RunState.completed: hist.Outcome.completed,
    RunState.converted: hist.Outcome.converted,
    RunState.exited: hist.Outcome.exited,
    RunState.moved: hist.Outcome.moved,
    RunState.control: hist.Outcome.variant,
}


@dataclass
class _Checkpoint:
    # Each run with its fields as they were (a run's context is replaced, never changed
    # in place, so a shallow copy keeps it).
    runs: list[tuple[Run, dict[str, Any]]]
    history: int
    ended: int
    moves: int
    work: int
    touched: set[uuid.UUID]
    detached: set[uuid.UUID]


class Batch:
    def __init__(
        self,
        engine: JourneyEngine,
        session: Session,
        definitions: Definitions,
        now: datetime,
        runs: Sequence[Run],
    ) -> None:
        self.engine = engine
        self.session = session
        self.definitions = definitions
        self.now = now
        self.runs = list(runs)
        self.history: list[hist.Entry] = []
        # Runs handled by a step, a wait, a goal or an exit (what `run_due` reports).
        self.work = 0
        self.ended: list[Run] = []
        # Runs moved to another journey: (run, the journey it goes to).
        self.moves: list[tuple[Run, Published]] = []
        self._touched: set[uuid.UUID] = set()
        # Runs a nested call (an update step's action) ended in the database meanwhile.
        self._detached: set[uuid.UUID] = set()
        self._published: dict[tuple[uuid.UUID, int], Published | None] = {}
        self._catalog: Catalog | None = None
        self._templates: dict[str, repository.TemplateRef | None] = {}

    # --- what runs follow ---

    def published(self, run: Run) -> Published | None:
        """The run's journey at the run's version (None if it is archived or gone)."""
        key = (run.journey_id, run.version)
        if key not in self._published:
            current = self.definitions.current.get(run.journey_id)
            if current is None or not isinstance(current.tree, am.Journey):
                found = None
            elif current.version == run.version:
                found = current
            else:
                tree = self.definitions.version(self.session, run.journey_id, run.version)
                found = Published(current.id, current.key, run.version, current.status, tree)
            self._published[key] = found
        return self._published[key]

    def catalog(self) -> Catalog:
        if self._catalog is None:
            self._catalog = catalog_at(self.engine.filters, self.session, self.now)
        return self._catalog

    def template(self, key: str) -> repository.TemplateRef | None:
        if key not in self._templates:
            self._templates[key] = repository.templates_by_key(self.session, [key]).get(key)
        return self._templates[key]

    def evaluate(
        self, nodes: Sequence[fm.Filter], contact_ids: Collection[uuid.UUID]
    ) -> list[set[uuid.UUID]]:
        """Who matches each filter among these contacts (a branch's cases, a journey's
        goal and exits): one SQL statement for all the filters."""
        return self.engine.filters.evaluate_each(
            self.session, nodes, contact_ids, catalog=self.catalog()
        )

    # --- changing runs ---

    def note(
        self,
        run: Run,
        outcome: hist.Outcome,
        reason: str,
        *,
        step_id: str | None = None,
        details: dict[str, Any] | None = None,
        event_id: int | None = None,
    ) -> None:
        self._touched.add(run.id)
        self.history.append(
            hist.Entry(
                run.contact_id, run.journey_id, run.version, outcome, reason, self.now,
                run_id=run.id, step_id=step_id or run.step_id, details=details or {},
                event_id=event_id,
            )
        )  # fmt: skip

    def go(self, run: Run, journey: am.Journey, step_id: str, target: str | None) -> None:
        """Step `step_id` is passed: on to `target` (None: the next step in the list), due
        now; after the last step the run is completed."""
        run.steps_done += 1
        if "failures" in run.context:
            run.context = {k: v for k, v in run.context.items() if k != "failures"}
        following = target if target is not None else journey.following(step_id)
        run.state, run.wait_event = RunState.active, None
        run.step_id = step_id
        if following is None:
            self.end(run, RunState.completed, f"completed after step {step_id}")
            return
        run.step_id, run.due_at = following, self.now
        self._touched.add(run.id)

    def end(
        self,
        run: Run,
        state: RunState,
        reason: str,
        *,
        outcome: hist.Outcome | None = None,
        details: dict[str, Any] | None = None,
        event_id: int | None = None,
    ) -> None:
        run.state, run.ended_at, run.end_reason = state, self.now, reason
        run.due_at, run.wait_event = None, None
        self.ended.append(run)
        self.note(run, outcome or _END_OUTCOMES[state], reason, details=details, event_id=event_id)

    # --- a step that fails ---

    def checkpoint(self, runs: Sequence[Run]) -> _Checkpoint:
        """What a group's step may change in memory, to be put back if it fails."""
        return _Checkpoint(
            runs=[(run, run.__dict__.copy()) for run in runs],
            history=len(self.history),
            ended=len(self.ended),
            moves=len(self.moves),
            work=self.work,
            touched=set(self._touched),
            detached=set(self._detached),
        )

    def failed(self, saved: _Checkpoint, step_id: str | None, error: Exception) -> None:
        """The step failed for the group (its database changes were rolled back to a
        savepoint): the runs are as before it, due again after a growing delay, and the
        history says why. The other groups of the batch go on."""
        del self.history[saved.history :]
        del self.ended[saved.ended :]
        del self.moves[saved.moves :]
        self.work = saved.work + len(saved.runs)
        self._touched, self._detached = saved.touched, saved.detached
        for run, before in saved.runs:
            run.__dict__.update(before)
            failures = int(run.context.get("failures") or 0) + 1
            delay = min(_FIRST_RETRY * 2 ** (failures - 1), _LAST_RETRY)
            run.set_context("failures", failures)
            run.due_at = self.now + delay
            self.note(
                run, hist.Outcome.failed,
                f"step {step_id} failed ({type(error).__name__}: {error}); again at "
                f"{run.due_at.isoformat()}", details={"failures": failures},
            )  # fmt: skip

    # --- nested changes ---

    def reconcile(self) -> None:
        """Actions may end runs of this batch in the database (a journey removal, an
        exclusive take-over): those are left as the action wrote them."""
        live = [r for r in self.runs if r.live and r.id not in self._detached]
        for run_id, state in repository.states_of(self.session, [r.id for r in live]).items():
            if state not in LIVE:
                self._detached.add(run_id)

    def detached(self, run: Run) -> bool:
        return run.id in self._detached

    # --- the end of the batch ---

    def finish(self) -> list[Run]:
        """Write the touched runs and the history, make the moves, start queued runs of
        contacts whose exclusive journey ended. Returns the written runs."""
        written = [r for r in self.runs if r.id in self._touched and r.id not in self._detached]
        repository.update_runs(self.session, written)
        hist.record(self.session, self.history)
        self.history = []
        self._move()
        freed = [
            r.contact_id
            for r in self.ended
            if r.priority is not None and r.id not in self._detached
        ]
        if freed:
            promote_queued(self.session, self.engine.filters, self.definitions, freed, now=self.now)
        return written

    def _move(self) -> None:
        by_target: dict[uuid.UUID, list[tuple[Run, Published]]] = defaultdict(list)
        for run, target in self.moves:
            by_target[target.id].append((run, target))
        for moves in by_target.values():
            target = moves[0][1]
            entrants = []
            for run, _ in moves:
                source = self.published(run)
                entrants.append(
                    Entrant(
                        contact_id=run.contact_id,
                        entry_key=f"move:{run.id}",
                        source=f"move:{source.key if source else run.journey_id}",
                        event=run.event,
                    )
                )
            self.engine.enter(self.session, self.definitions, target, entrants, now=self.now)
