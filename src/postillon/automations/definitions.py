"""What is published: the trees of active and paused rules and journeys, by id, by key
and by the events that concern them, parsed once per version and cached per process.

`DefinitionStore.load` costs one small query while nothing was published (it compares
the (id, version, status) list with what it holds); a version, once parsed, is never
parsed again, since published versions are immutable. Runs of older versions ask for
them with `Definitions.version`.
"""

from __future__ import annotations

import threading
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from postillon.automations import model as am
from postillon.automations import repository
from postillon.automations.documents import parse_automation


class Status:
    draft = "draft"
    active = "active"
    paused = "paused"
    archived = "archived"


@dataclass(frozen=True)
class Published:
    id: uuid.UUID
    key: str
    version: int
    status: str
    tree: am.Automation

    @property
    def journey(self) -> am.Journey:
        assert isinstance(self.tree, am.Journey), f"{self.key} is not a journey"
        return self.tree

    @property
    def rule(self) -> am.Rule:
        assert isinstance(self.tree, am.Rule), f"{self.key} is not a rule"
        return self.tree


@dataclass
class Definitions:
    """The published automations at one moment (current versions of those not archived)."""

    current: dict[uuid.UUID, Published]
    _versions: dict[tuple[uuid.UUID, int], am.Automation]
    _store: DefinitionStore
    by_key: dict[str, Published] = field(init=False)
    _rules_by_event: dict[str, list[Published]] = field(init=False)
    _journeys_by_event: dict[str, list[Published]] = field(init=False)

    def __post_init__(self) -> None:
        self.by_key = {p.key: p for p in self.current.values()}
        rules: dict[str, list[Published]] = defaultdict(list)
        journeys: dict[str, list[Published]] = defaultdict(list)
        for published in self.current.values():
            tree = published.tree
            if isinstance(tree, am.Rule):
                rules[tree.trigger.event].append(published)
            elif isinstance(tree.trigger, am.EventTrigger):
                journeys[tree.trigger.event].append(published)
        self._rules_by_event = dict(rules)
        self._journeys_by_event = dict(journeys)

    def rules_for(self, event: str) -> list[Published]:
        """Active rules whose trigger is this event (paused ones are left out)."""
        return [p for p in self._rules_by_event.get(event, ()) if p.status == Status.active]

    def journeys_for(self, event: str) -> list[Published]:
        """Active journeys that this event can start."""
        return [p for p in self._journeys_by_event.get(event, ()) if p.status == Status.active]

    def journeys(self) -> list[Published]:
        return [p for p in self.current.values() if isinstance(p.tree, am.Journey)]

    def rules(self) -> list[Published]:
        return [p for p in self.current.values() if isinstance(p.tree, am.Rule)]

    def version(self, session: Session, automation_id: uuid.UUID, version: int) -> am.Automation:
        """The tree of any published version (runs stay on the version they entered)."""
        tree = self._versions.get((automation_id, version))
        if tree is None:
            tree = self._store.version(session, automation_id, version)
            self._versions[(automation_id, version)] = tree
        return tree


class DefinitionStore:
    """A process-wide cache of parsed versions; `load` gives the current `Definitions`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._trees: dict[tuple[uuid.UUID, int], am.Automation] = {}
        self._last: tuple[tuple[Any, ...], Definitions] | None = None

    def load(self, session: Session) -> Definitions:
        rows = repository.published_signature(session, [Status.active, Status.paused])
        signature = tuple((r.id, r.published_version, r.status) for r in rows)
        with self._lock:
            if self._last is not None and self._last[0] == signature:
                return self._last[1]
            missing = [
                (r.id, r.published_version)
                for r in rows
                if (r.id, r.published_version) not in self._trees
            ]
        if missing:
            self._parse(session, missing)
        with self._lock:
            current = {
                r.id: Published(
                    r.id,
                    r.key,
                    r.published_version,
                    r.status,
                    self._trees[(r.id, r.published_version)],
                )
                for r in rows
            }
            definitions = Definitions(current, self._trees, self)
            self._last = (signature, definitions)
            return definitions

    def version(self, session: Session, automation_id: uuid.UUID, version: int) -> am.Automation:
        with self._lock:
            tree = self._trees.get((automation_id, version))
        if tree is None:
            self._parse(session, [(automation_id, version)])
            with self._lock:
                tree = self._trees[(automation_id, version)]
        return tree

    def forget(self) -> None:
        """Drop the cached signature (tests that rewrite rows by hand)."""
        with self._lock:
            self._last = None

    def _parse(self, session: Session, keys: list[tuple[uuid.UUID, int]]) -> None:
        documents = repository.version_documents(session, keys)
        parsed = {key: parse_automation(document) for key, document in documents.items()}
        missing = set(keys) - set(parsed)
        if missing:
            raise LookupError(f"no published version {sorted(missing)}")
        with self._lock:
            self._trees.update(parsed)
