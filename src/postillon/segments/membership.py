"""Keeping segment membership current, in sets.

A full refresh runs the segment's compiled filter once for everyone and applies the
difference (leavers, then newcomers) inside the database. An incremental refresh takes a
batch of contacts that changed and, segment by segment, runs the correlated form of the
filter for just them (each statement built once and kept). Segments that use other segments
(`in_segment`) are refreshed after those, so one pass settles everything. Every entry and
exit is kept (`segment_memberships` rows with `exited_at` are the history) and recorded on
the contact's timeline as `segment_entered` / `segment_exited`, the events automations
trigger on.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Hashable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from postillon.errors import Conflict
from postillon.events.service import InternalEvent, record_internal
from postillon.filters import model as m
from postillon.filters.parsing import parse_filter
from postillon.filters.sql import Catalog, ListedQuery, listed_query, select_members
from postillon.models import Segment
from postillon.segments import repository

SEGMENT_ENTERED = "segment_entered"
SEGMENT_EXITED = "segment_exited"


@dataclass(frozen=True)
class Changes:
    entered: list[uuid.UUID]
    exited: list[uuid.UUID]


@dataclass(frozen=True)
class CompiledSegment:
    segment: Segment
    filter: m.Filter


def segment_references(node: m.Filter) -> set[str]:
    """The keys of the segments a filter uses."""
    return set(_walk_references(node))


def _walk_references(node: m.Filter) -> Iterator[str]:
    if isinstance(node, m.All | m.AnyOf):
        for item in node.items:
            yield from _walk_references(item)
    elif isinstance(node, m.Not):
        yield from _walk_references(node.item)
    elif isinstance(node, m.SegmentCondition):
        yield node.segment


def in_dependency_order(segments: Sequence[Segment]) -> list[CompiledSegment]:
    """Segments with their parsed filters, each after the segments it uses."""
    compiled = {s.key: CompiledSegment(s, parse_filter(s.filter)) for s in segments}
    ordered: list[CompiledSegment] = []
    state: dict[str, str] = {}

    def visit(key: str, path: tuple[str, ...]) -> None:
        if state.get(key) == "done" or key not in compiled:
            return
        if state.get(key) == "visiting":
            raise Conflict(f"segments use each other in a circle: {' → '.join((*path, key))}")
        state[key] = "visiting"
        for used in sorted(segment_references(compiled[key].filter)):
            visit(used, (*path, key))
        state[key] = "done"
        ordered.append(compiled[key])

    for key in sorted(compiled):
        visit(key, ())
    return ordered


def refresh_everyone(
    session: Session, compiled: CompiledSegment, catalog: Catalog, now: datetime
) -> Changes:
    """Bring one segment's membership up to date for every contact."""
    segment = compiled.segment
    dialect = session.get_bind().dialect.name
    repository.allow_large_set_operations(session)
    matching = select_members(compiled.filter, catalog, dialect)
    refreshed = repository.refresh_all(session, segment.id, matching, now)
    segment.member_count = refreshed.member_count
    segment.refreshed_at = now
    _record(session, segment, refreshed.entered, refreshed.exited, now)
    return Changes(refreshed.entered, refreshed.exited)


def refresh_contacts(
    session: Session,
    ordered: Sequence[CompiledSegment],
    contact_ids: Collection[uuid.UUID],
    catalog: Catalog,
    now: datetime,
) -> dict[str, Changes]:
    """Bring every segment's membership up to date for `contact_ids`: two queries a
    segment, whatever the number of contacts."""
    dialect = session.get_bind().dialect.name
    changes: dict[str, Changes] = {}
    members = repository.current_memberships(session, contact_ids)
    for compiled in ordered:
        segment = compiled.segment
        query = _listed_query(compiled.filter, catalog, dialect)
        matching = set(session.scalars(query.statement, query.parameters(catalog.now, contact_ids)))
        current = members.get(segment.id, set())
        entered, exited = sorted(matching - current), sorted(current - matching)
        if not entered and not exited:
            continue
        repository.leave(session, segment.id, exited, now)
        repository.enter(session, segment.id, entered, now)
        repository.adjust_member_count(session, segment.id, len(entered) - len(exited))
        _record(session, segment, entered, exited, now)
        changes[segment.key] = Changes(entered, exited)
    return changes


# Statements for listed contacts by filter, catalog and dialect: building one costs more
# than running it for a few contacts. The catalog's time is left out of the key, as the
# values that follow it are parameters.
_LISTED_QUERIES: dict[Hashable, ListedQuery] = {}
_LISTED_QUERIES_KEPT = 256


def _listed_query(node: m.Filter, catalog: Catalog, dialect: str) -> ListedQuery:
    key = (
        node,
        dialect,
        catalog.stages,
        tuple(sorted(catalog.score_models.items())),
        tuple(sorted(catalog.segments.items())),
        catalog.purchase_event,
    )
    try:
        found = _LISTED_QUERIES.get(key)
    except TypeError:  # a value in the filter that cannot be hashed: build it each time
        return listed_query(node, catalog, dialect)
    if found is None:
        if len(_LISTED_QUERIES) >= _LISTED_QUERIES_KEPT:
            _LISTED_QUERIES.clear()
        found = _LISTED_QUERIES[key] = listed_query(node, catalog, dialect)
    return found


def _record(
    session: Session,
    segment: Segment,
    entered: Sequence[uuid.UUID],
    exited: Sequence[uuid.UUID],
    now: datetime,
) -> None:
    properties = {"segment": segment.key, "segment_name": segment.name}
    for name, ids in ((SEGMENT_ENTERED, entered), (SEGMENT_EXITED, exited)):
        for start in range(0, len(ids), _EVENTS_PER_WRITE):
            part = ids[start : start + _EVENTS_PER_WRITE]
            record_internal(
                session, [InternalEvent(id_, name, properties) for id_ in part], now=now
            )


_EVENTS_PER_WRITE = 10_000
