"""Rules and journeys as the marketer keeps them: save drafts (checked, with every
problem's line and path), publish versions, pause, resume, archive, list; explain.

A document is checked three times over: the parser (`documents.py`: shapes, types, step
graph and loops), the filter language with references (stages, score models, segments
that filters name exist), and `checks.py` (templates, journeys, date attributes, stages,
score models and segments that the rest of the document names). Publishing checks the
draft again, since what it names may have gone in the meantime.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from postillon.automations import explain as explaining
from postillon.automations import history, repository
from postillon.automations import model as am
from postillon.automations.checks import Known, json_ready, names_in, reference_problems
from postillon.automations.definitions import Status
from postillon.automations.documents import parse_automation
from postillon.automations.schemas import (
    ArchiveOut,
    AutomationOut,
    AutomationPage,
    AutomationSummary,
    ExplainOut,
    HistoryPage,
    PublishOut,
    ValidOut,
    VersionOut,
)
from postillon.errors import Conflict, FieldProblem, InvalidInput, NotFound, PayloadTooLarge
from postillon.filters.documents import load_yaml, with_lines
from postillon.kit.ids import new_id
from postillon.kit.pagination import decode_cursor, encode_cursor
from postillon.models import Automation, AutomationVersion

if TYPE_CHECKING:
    from postillon.automations.definitions import DefinitionStore
    from postillon.automations.journeys.engine import JourneyEngine
    from postillon.clock import Clock
    from postillon.filters.service import FilterService
    from postillon.settings import Settings

MAX_SOURCE_CHARACTERS = 1_000_000
ARCHIVED_REASON = "journey archived"
_LINE = re.compile(r" line (\d+)")


@dataclass(frozen=True)
class Checked:
    """A document that passed every check: as plain JSON, as written, and as a tree."""

    document: dict[str, Any]
    source: str
    tree: am.Automation

    @property
    def kind(self) -> str:
        return "journey" if isinstance(self.tree, am.Journey) else "rule"


class AutomationService:
    def __init__(
        self,
        settings: Settings,
        clock: Clock,
        filters: FilterService,
        definitions: DefinitionStore,
        journeys: JourneyEngine | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.filters = filters
        self.definitions = definitions
        # Archiving a journey with runs in it ends them through the engine.
        self.journeys = journeys

    # --- documents ---

    def check(
        self,
        session: Session,
        text_or_doc: str | Mapping[str, Any],
        *,
        source_name: str = "document",
        source_text: str | None = None,
        key: str | None = None,
        also_journeys: Collection[str] = (),
    ) -> Checked:
        """A document (YAML/JSON text, or parsed JSON with the text it came from, if
        any) checked against what exists; InvalidInput names every problem, with its
        line when there is text. `key` is the key the document must have (filled in
        when it has none); `also_journeys` are journeys saved together with it."""
        if isinstance(text_or_doc, str):
            source_text = text_or_doc
            if len(source_text) > MAX_SOURCE_CHARACTERS:
                raise PayloadTooLarge(
                    f"{source_name}: a document has at most {MAX_SOURCE_CHARACTERS:,} characters"
                )
            try:
                raw = load_yaml(source_text, source=source_name)
            except RecursionError:
                raise InvalidInput.at(source_name, "nests too deeply") from None
        else:
            raw = text_or_doc
        document, problems = json_ready(raw)
        if not problems and isinstance(document, dict) and key is not None:
            if "key" not in document:
                document = {"key": key, **document}
            elif document["key"] != key:
                problems.append(FieldProblem("key", f"must be {key!r}, the key in the address"))
        tree: am.Automation | None = None
        if not problems:
            tree, problems = self._parse(session, document, also_journeys)
        if problems or tree is None or not isinstance(document, dict):
            raise _located(problems, source_text, source_name)
        if source_text is None:
            source_text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
        return Checked(document, source_text, tree)

    def _parse(
        self, session: Session, document: Any, also_journeys: Collection[str]
    ) -> tuple[am.Automation | None, list[FieldProblem]]:
        catalog = self.filters.catalog(session)
        problems: list[FieldProblem] = []
        tree: am.Automation | None = None
        try:
            tree = parse_automation(
                document,
                parse_filter=lambda doc, at: self.filters.parse(
                    session, doc, where=at, catalog=catalog
                ),
            )
        except InvalidInput as error:
            problems += error.problems
        known = Known(
            templates=repository.all_template_keys(session),
            automations=repository.kinds_and_statuses(session),
            attribute_types=repository.attribute_types(session, names_in(document).attributes),
            stages=catalog.stages,
            score_models=(*catalog.score_models, "main"),
            segments=tuple(catalog.segments),
            also_journeys=also_journeys,
        )
        problems += reference_problems(document, known)
        return (tree if not problems else None), problems

    def validate(
        self,
        session: Session,
        text_or_doc: str | Mapping[str, Any],
        *,
        source_name: str = "document",
        source_text: str | None = None,
        also_journeys: Collection[str] = (),
    ) -> ValidOut:
        """Check a document as `save` would, without saving it."""
        checked = self.check(
            session,
            text_or_doc,
            source_name=source_name,
            source_text=source_text,
            also_journeys=also_journeys,
        )
        existing = repository.automation_by_key(session, checked.tree.key)
        if existing is not None:
            _same_kind(existing, checked)
        return ValidOut(valid=True, kind=checked.kind, key=checked.tree.key)

    def save(
        self,
        session: Session,
        text_or_doc: str | Mapping[str, Any],
        *,
        source_name: str = "document",
        source_text: str | None = None,
        key: str | None = None,
        also_journeys: Collection[str] = (),
    ) -> tuple[AutomationOut, bool]:
        """Check a document and keep it as its automation's draft (a new key makes a
        `draft` automation). Returns the automation and whether it was created; 409 if
        the key belongs to an automation of the other kind."""
        checked = self.check(
            session,
            text_or_doc,
            source_name=source_name,
            source_text=source_text,
            key=key,
            also_journeys=also_journeys,
        )
        now = self.clock.now()
        automation = repository.automation_by_key(session, checked.tree.key, for_update=True)
        created = automation is None
        if automation is None:
            automation = Automation(
                id=new_id(),
                key=checked.tree.key,
                kind=checked.kind,
                name=checked.tree.name,
                status=Status.draft,
                draft_source=checked.source,
                draft_document=checked.document,
                created_at=now,
                updated_at=now,
            )
            repository.add_automation(session, automation)
        else:
            _same_kind(automation, checked)
            automation.name = checked.tree.name
            automation.draft_source = checked.source
            automation.draft_document = checked.document
            automation.updated_at = now
            session.flush()
        return self._out(session, automation), created

    # --- versions and statuses ---

    def publish(self, session: Session, key: str, *, migrate: bool = False) -> PublishOut:
        """Publish the draft as a new immutable version (none if it is published
        already) and make the automation active. `migrate`: active and waiting runs of
        older versions go on in the new one where their current step exists in it."""
        automation = self._automation(session, key, for_update=True)
        checked = self.check(
            session,
            automation.draft_document,
            source_text=automation.draft_source,
            source_name=key,
        )
        now = self.clock.now()
        last = repository.last_version(session, automation.id)
        new_version = last is None or last.document != checked.document
        if last is None or new_version:
            version = AutomationVersion(
                automation_id=automation.id,
                version=(last.version if last else 0) + 1,
                source=checked.source,
                document=checked.document,
                published_at=now,
                migrated_runs=0,
            )
            repository.add_version(session, version)
        else:
            version = last
        moved = 0
        if migrate and isinstance(checked.tree, am.Journey):
            moved = self._migrate(session, automation, version.version, checked.tree, now)
            version.migrated_runs += moved
        was = automation.status
        automation.status = Status.active
        automation.published_version = version.version
        automation.paused_at = None
        automation.updated_at = now
        session.flush()
        words = [
            f"{automation.kind} {key}: version {version.version} published"
            if new_version
            else f"{automation.kind} {key}: version {version.version} is published already; "
            "the draft has not changed, so no new version"
        ]
        if was in (Status.paused, Status.archived):
            words.append(f"it was {was} and is active again")
        if migrate:
            words.append(f"{moved} run(s) moved to version {version.version}")
        return PublishOut(
            key=key,
            kind=automation.kind,
            version=version.version,
            new_version=new_version,
            status=automation.status,
            migrated_runs=moved,
            message="; ".join(words),
        )

    def _migrate(
        self,
        session: Session,
        automation: Automation,
        version: int,
        tree: am.Journey,
        now: datetime,
    ) -> int:
        rows = repository.migrate_runs(
            session, automation.id, to_version=version, step_ids=[s.id for s in tree.steps]
        )
        history.record(
            session,
            [
                history.Entry(
                    contact_id=r.contact_id,
                    automation_id=automation.id,
                    version=version,
                    outcome=history.Outcome.updated,
                    reason=f"moved to version {version}",
                    at=now,
                    run_id=r.id,
                    step_id=r.step_id,
                    details={"from_version": r.version, "to_version": version},
                )
                for r in rows
            ],
        )
        return len(rows)

    def pause(self, session: Session, key: str) -> AutomationOut:
        """A paused journey's runs hold where they are; a paused rule does not fire."""
        automation = self._automation(session, key, for_update=True)
        self._require_published(automation, "paused")
        if automation.status == Status.active:
            automation.status = Status.paused
            automation.paused_at = automation.updated_at = self.clock.now()
            session.flush()
        return self._out(session, automation)

    def resume(self, session: Session, key: str) -> AutomationOut:
        """Active again: held runs go on (the send gate keeps the caps)."""
        automation = self._automation(session, key, for_update=True)
        self._require_published(automation, "resumed")
        if automation.status == Status.paused:
            automation.status = Status.active
            automation.paused_at = None
            automation.updated_at = self.clock.now()
            session.flush()
        return self._out(session, automation)

    def archive(self, session: Session, key: str, *, force: bool = False) -> ArchiveOut:
        """Retire an automation. A journey with runs that have not ended is refused
        (409) unless `force`: then they end as `exited`, "journey archived"."""
        automation = self._automation(session, key, for_update=True)
        if automation.status == Status.archived:
            return ArchiveOut(
                key=key, status="archived", ended_runs=0, message=f"{key} is archived already"
            )
        now = self.clock.now()
        ended = 0
        if automation.kind == "journey":
            still_in = repository.open_runs_count(session, automation.id)
            if still_in and not force:
                raise Conflict(
                    f"{still_in} run(s) are still in journey {key!r}; archive with force "
                    "to end them as exited"
                )
            if still_in:
                ended = self._end_runs(session, automation, now)
        automation.status = Status.archived
        automation.paused_at = None
        automation.updated_at = now
        session.flush()
        message = f"{automation.kind} {key} archived"
        if ended:
            message += f"; {ended} run(s) ended as exited"
        return ArchiveOut(key=key, status="archived", ended_runs=ended, message=message)

    def _end_runs(self, session: Session, automation: Automation, now: datetime) -> int:
        published = self.definitions.load(session).current.get(automation.id)
        if self.journeys is not None and published is not None:
            # Through the engine: a contact freed from an exclusive journey starts its
            # next queued one.
            contacts = repository.open_run_contacts(session, automation.id)
            return self.journeys.remove(
                session, published, contacts, now=now, reason=ARCHIVED_REASON
            )
        rows = repository.end_open_runs(session, automation.id, now=now, reason=ARCHIVED_REASON)
        history.record(
            session,
            [
                history.Entry(
                    contact_id=r.contact_id,
                    automation_id=automation.id,
                    version=r.version,
                    outcome=history.Outcome.exited,
                    reason=ARCHIVED_REASON,
                    at=now,
                    run_id=r.id,
                    step_id=r.step_id,
                )
                for r in rows
            ],
        )
        return len(rows)

    def _require_published(self, automation: Automation, verb: str) -> None:
        if automation.status == Status.draft or automation.published_version is None:
            raise Conflict(f"{automation.key} is not published yet; it cannot be {verb}")
        if automation.status == Status.archived:
            raise Conflict(f"{automation.key} is archived; publish it to use it again")

    # --- reading ---

    def get(self, session: Session, key: str) -> AutomationOut:
        return self._out(session, self._automation(session, key))

    def list_automations(
        self,
        session: Session,
        *,
        kind: str | None = None,
        status: str | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> AutomationPage:
        """Automations in key order, optionally of one kind and status."""
        after = None
        if cursor is not None:
            values = decode_cursor(cursor)
            if len(values) != 1 or not isinstance(values[0], str):
                raise InvalidInput.at("cursor", "not a cursor returned by this API")
            after = values[0]
        rows = repository.automations_page(
            session, kind=kind, status=status, after_key=after, limit=limit + 1
        )
        page = rows[:limit]
        counts = repository.run_counts(session, [a.id for a in page if a.kind == "journey"])
        items = [
            AutomationSummary(
                key=a.key,
                kind=a.kind,
                name=a.name,
                status=a.status,
                published_version=a.published_version,
                updated_at=a.updated_at,
                active_runs=(
                    sum(n for s, n in counts.get(a.id, {}).items() if s in _OPEN)
                    if a.kind == "journey"
                    else None
                ),
            )
            for a in page
        ]
        next_cursor = encode_cursor(page[-1].key) if len(rows) > limit else None
        return AutomationPage(items=items, next_cursor=next_cursor)

    def versions(self, session: Session, key: str) -> list[VersionOut]:
        """Every published version, newest first."""
        automation = self._automation(session, key)
        return [
            VersionOut.model_validate(v, from_attributes=True)
            for v in repository.versions_of(session, automation.id)
        ]

    def _automation(self, session: Session, key: str, *, for_update: bool = False) -> Automation:
        automation = repository.automation_by_key(session, key, for_update=for_update)
        if automation is None:
            raise NotFound(f"no rule or journey has the key {key!r}")
        return automation

    def _out(self, session: Session, automation: Automation) -> AutomationOut:
        last = repository.last_version(session, automation.id)
        runs = None
        if automation.kind == "journey":
            runs = repository.run_counts(session, [automation.id]).get(automation.id, {})
        return AutomationOut(
            id=automation.id,
            key=automation.key,
            kind=automation.kind,
            name=automation.name,
            status=automation.status,
            published_version=automation.published_version,
            unpublished_changes=last is None or last.document != automation.draft_document,
            draft=automation.draft_document,
            draft_source=automation.draft_source,
            runs=runs,
            created_at=automation.created_at,
            updated_at=automation.updated_at,
            paused_at=automation.paused_at,
        )

    # --- explain ---

    def explain(self, session: Session, contact_id: uuid.UUID, *, limit: int = 100) -> ExplainOut:
        """A contact's journey runs (the newest `limit`), each with its history, the
        journey decisions that started no run, and rule firings, all in order."""
        explaining.require_contact(session, contact_id)
        return explaining.explain(session, contact_id, limit=limit)

    def history(
        self,
        session: Session,
        contact_id: uuid.UUID,
        *,
        cursor: str | None = None,
        limit: int = 50,
        automation: str | None = None,
    ) -> HistoryPage:
        """A contact's history entries of every rule and journey (or one), newest first."""
        explaining.require_contact(session, contact_id)
        automation_id = self._automation(session, automation).id if automation else None
        return explaining.history_page(
            session, contact_id, automation_id=automation_id, cursor=cursor, limit=limit
        )

    def contact_id_for(self, session: Session, id_or_email: str) -> uuid.UUID:
        """A contact named by its id or email address (404 if there is none)."""
        return explaining.contact_id_for(session, id_or_email)


_OPEN = frozenset(repository.OPEN_RUN_STATES)


def _same_kind(automation: Automation, checked: Checked) -> None:
    if automation.kind != checked.kind:
        raise Conflict(
            f"{automation.key!r} is the key of a {automation.kind}; "
            f"a {checked.kind} needs another key"
        )


def _located(problems: Sequence[FieldProblem], text: str | None, source_name: str) -> InvalidInput:
    """The problems located by line in `text` (in line order), else by path."""
    error = InvalidInput.of(problems or [FieldProblem("document", "is empty")])
    if text is None:
        return error
    try:
        located = with_lines(error, text, source=source_name).problems
    except RecursionError:  # text too deep to map to lines (refused for that anyway)
        return error

    def line(problem: FieldProblem) -> int:
        match = _LINE.search(problem.location)
        return int(match[1]) if match else 0

    return InvalidInput.of(sorted(located, key=line))
