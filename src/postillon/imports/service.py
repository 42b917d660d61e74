"""Importing contacts from CSV: upsert by email, in chunks, reporting bad rows.

An import is a job, not a request step: it owns its transactions, one per chunk, so a file
of any size runs in constant memory and what is done stays done. Rows are matched by
external_id, then email, so importing the same file again changes nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from postillon.automations import hooks
from postillon.clock import Clock
from postillon.contacts.changes import ContactChanges
from postillon.contacts.fields import (
    ConsentStatus,
    FieldError,
    normalise_tag,
)
from postillon.contacts.service import ContactService
from postillon.contacts.upsert import Action, Mode, Outcome
from postillon.errors import InvalidInput, NotFound
from postillon.imports import repository
from postillon.imports.mapping import map_columns
from postillon.imports.parsing import PARALLEL_FROM_ROWS, RowParser, parsed_spans
from postillon.imports.reader import CsvSource
from postillon.kit.db import Database
from postillon.kit.ids import new_id
from postillon.models import ContactImport

STORED_PROBLEMS = 1000
_SPAN_ATTEMPTS = 3


@dataclass(frozen=True)
class ImportOptions:
    mapping: dict[str, str] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    email_consent: ConsentStatus | None = None
    phone_region: str | None = None
    # A dry run checks and counts every span of rows against the database as it stands
    # and stores nothing: a contact that a later span repeats counts there as it would
    # against the stored contacts, since the earlier span's rows were not kept.
    dry_run: bool = False
    run_automations: bool = False

    def as_json(self) -> dict[str, Any]:
        return {
            "mapping": self.mapping,
            "tags": list(self.tags),
            "email_consent": self.email_consent.value if self.email_consent else None,
            "phone_region": self.phone_region,
            "dry_run": self.dry_run,
            "run_automations": self.run_automations,
        }


@dataclass(frozen=True)
class RowProblem:
    line: int
    column: str
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"line": self.line, "column": self.column, "reason": self.reason}


@dataclass
class ImportReport:
    import_id: uuid.UUID
    filename: str
    dry_run: bool
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: int = 0
    problems: list[RowProblem] = field(default_factory=list)

    def add(self, other: ImportReport) -> None:
        self.rows += other.rows
        self.created += other.created
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.failed += other.failed

    def count(self, outcome: Outcome) -> None:
        self.rows += 1
        if outcome.action is Action.created:
            self.created += 1
        elif outcome.action is Action.updated:
            self.updated += 1
        elif outcome.action is Action.unchanged:
            self.unchanged += 1
        else:
            self.failed += 1


Progress = Callable[[int, int], None]  # (bytes read, rows done)


class ImportService:
    def __init__(self, contacts: ContactService, clock: Clock, *, chunk_rows: int) -> None:
        self.contacts = contacts
        self.clock = clock
        self.chunk_rows = chunk_rows

    def run(
        self,
        database: Database,
        stream: BinaryIO,
        *,
        filename: str,
        options: ImportOptions,
        on_problem: Callable[[RowProblem], None] | None = None,
        progress: Progress | None = None,
    ) -> ImportReport:
        """Import a CSV stream. A file that is damaged anywhere, or whose header cannot be
        mapped, fails before any write; bad rows are reported while good rows go in."""
        source = CsvSource(stream, name=filename)
        columns = map_columns(source.headers, options.mapping)
        extra_tags = _check_tags(options.tags)
        layout = source.check(rows_per_span=self.chunk_rows)
        parser = RowParser(
            delimiter=source.delimiter,
            columns=tuple(columns),
            tags=tuple(extra_tags),
            email_consent=options.email_consent,
            phone_region=options.phone_region,
        )
        report = ImportReport(import_id=new_id(), filename=filename, dry_run=options.dry_run)
        started_at = self.clock.now()

        def note(problem: RowProblem) -> None:
            if len(report.problems) < STORED_PROBLEMS:
                report.problems.append(problem)
            if on_problem is not None:
                on_problem(problem)

        with database.transaction() as session:
            repository.start(
                session,
                ContactImport(
                    id=report.import_id,
                    filename=filename,
                    status="running",
                    dry_run=options.dry_run,
                    options=options.as_json(),
                    started_at=started_at,
                ),
            )
        failure: Exception | None = None
        try:
            parallel = layout.rows >= PARALLEL_FROM_ROWS
            for span, parsed in parsed_spans(parser, source, layout.spans, parallel=parallel):
                self._import_span(database, report, parsed.lines, parsed.changes, note)
                if progress is not None:
                    progress(span.end, report.rows)
        except Exception as exc:  # recorded as failed, then raised again
            failure = exc
        if failure is not None:
            reason = failure.message if isinstance(failure, InvalidInput) else "internal error"
            note(RowProblem(line=0, column="file", reason=reason))
            self._finish(database, report, status="failed")
            raise failure
        self._finish(database, report, status="finished")
        if options.run_automations and not options.dry_run:
            with database.transaction() as session:
                self.run_automations(session, report.import_id)
        return report

    def run_automations(self, session: Session, import_id: uuid.UUID) -> int:
        """Run the automations that react to "contact created" for the contacts an import
        created; returns how many contacts were handed to them."""
        if repository.get(session, import_id) is None:
            raise NotFound(f"no import with id {import_id}")
        created = repository.touched_contacts(session, import_id, action=Action.created.value)
        hooks.contacts_created(session, created, now=self.clock.now(), source="import")
        return len(created)

    def get(self, session: Session, import_id: uuid.UUID) -> ContactImport:
        found = repository.get(session, import_id)
        if found is None:
            raise NotFound(f"no import with id {import_id}")
        return found

    def recent(self, session: Session, *, limit: int) -> list[ContactImport]:
        return repository.recent(session, limit)

    def _import_span(
        self,
        database: Database,
        report: ImportReport,
        lines: Sequence[int],
        items: Sequence[ContactChanges],
        note: Callable[[RowProblem], None],
    ) -> None:
        """One span in its own transaction, committed, or rolled back in a dry run: a dry
        run of a large file must not hold the database's only write lock (SQLite) for
        minutes while the tracking API and the worker wait. Checks run before writes, so
        a unique key can only collide with a concurrent writer; the span is then checked
        and written again, and matches what that writer stored."""
        parse_problems = [list(item.problems) for item in items]
        for attempt in range(1, _SPAN_ATTEMPTS + 1):
            try:
                # Closing the session rolls back what was not committed.
                with database.session() as session:
                    counted = ImportReport(report.import_id, report.filename, report.dry_run)
                    found: list[RowProblem] = []
                    self._apply_span(session, counted, lines, items, found.append)
                    if not report.dry_run:
                        session.commit()
            except IntegrityError:
                if attempt == _SPAN_ATTEMPTS:
                    raise
                for item, problems in zip(items, parse_problems, strict=True):
                    item.problems[:] = problems
                continue
            report.add(counted)
            for problem in found:
                note(problem)
            return

    def _apply_span(
        self,
        session: Session,
        report: ImportReport,
        lines: Sequence[int],
        items: Sequence[ContactChanges],
        note: Callable[[RowProblem], None],
    ) -> None:
        # No contact-change events: a large import would flood the timelines and the
        # queue. With `run_automations`, the created contacts get `contact_created` after.
        outcomes = self.contacts.apply(
            session,
            items,
            mode=Mode.upsert,
            source="import",
            all_or_nothing=False,
            record_changes=False,
        )
        touches: dict[uuid.UUID, dict[str, Any]] = {}
        for line, outcome in zip(lines, outcomes, strict=True):
            report.count(outcome)
            if outcome.error is not None:
                for problem in outcome.error.problems or ():
                    note(RowProblem(line, problem.location, problem.message))
                if not outcome.error.problems:
                    note(RowProblem(line, "row", outcome.error.message))
            elif outcome.action in (Action.created, Action.updated):
                assert outcome.contact_id is not None
                touches.setdefault(
                    outcome.contact_id,
                    {
                        "import_id": report.import_id,
                        "contact_id": outcome.contact_id,
                        "action": outcome.action.value,
                    },
                )
        repository.record_touches(session, list(touches.values()))

    def _finish(self, database: Database, report: ImportReport, *, status: str) -> None:
        with database.transaction() as session:
            repository.finish(
                session,
                report.import_id,
                status=status,
                rows_total=report.rows,
                created_count=report.created,
                updated_count=report.updated,
                unchanged_count=report.unchanged,
                error_count=report.failed,
                errors=[p.as_dict() for p in report.problems],
                finished_at=self.clock.now(),
            )


def _check_tags(tags: Sequence[str]) -> list[str]:
    clean = []
    for tag in tags:
        try:
            clean.append(normalise_tag(tag))
        except FieldError as exc:
            raise InvalidInput.at("tags", str(exc)) from None
    return clean
