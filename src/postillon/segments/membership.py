"""Keeping segment membership current, in sets.

A full refresh runs the segment's compiled filter once for everyone and applies the
difference (leavers, then newcomers) inside the database. An incremental refresh takes a
batch of contacts that changed and runs the correlated form of every segment's filter for
just them, with their current memberships, in one statement built once and kept.
Segments that use other segments (`in_segment`) are refreshed after those, so one pass
settles everything. Every entry and
exit is kept (`segment_memberships` rows with `exited_at` are the history) and recorded on
the contact's timeline as `segment_entered` / `segment_exited`, the events automations
trigger on.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from postillon.errors import Conflict
from postillon.events.service import InternalEvent, record_internal
from postillon.filters import model as m
from postillon.filters.listed import statement_key
from postillon.filters.parsing import parse_filter
from postillon.filters.sql import (
    Catalog,
    ListedQuery,
    is_listed,
    listed_conditions,
    select_members,
)
from postillon.kit.repository import IN_CHUNK
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
    """Bring every segment's membership up to date for `contact_ids`. One query reads
    their current memberships and who matches each segment (segments that use segments
    changed before them wait for a later query); then two writes a changed segment."""
    dialect = session.get_bind().dialect.name
    changes: dict[str, Changes] = {}
    members: dict[uuid.UUID, set[uuid.UUID]] | None = None
    if len(contact_ids) > IN_CHUNK:
        members = repository.current_memberships(session, contact_ids)
    for batch in _batches(ordered, _segments_per_query(dialect, len(contact_ids))):
        query = _listed_query(batch, catalog, dialect, with_current=members is None)
        current, matching = repository.read_listed(
            session, query.statement, query.parameters(catalog.now, contact_ids)
        )
        if members is None:
            members = current
        for compiled in batch:
            segment = compiled.segment
            found, before = matching.get(segment.id, set()), members.get(segment.id, set())
            entered, exited = sorted(found - before), sorted(before - found)
            if not entered and not exited:
                continue
            repository.leave(session, segment.id, exited, now)
            repository.enter(session, segment.id, entered, now)
            repository.adjust_member_count(session, segment.id, len(entered) - len(exited))
            _record(session, segment, entered, exited, now)
            changes[segment.key] = Changes(entered, exited)
    return changes


def _segments_per_query(dialect: str, contacts: int) -> int:
    """SQLite repeats the list of contacts in each segment's part (and allows 32,766
    parameters a statement); PostgreSQL sends it once, as an array."""
    if dialect == "sqlite":
        return max(1, min(_SEGMENTS_PER_QUERY, 30_000 // max(1, contacts) - 1))
    return _SEGMENTS_PER_QUERY


_SEGMENTS_PER_QUERY = 30


def _batches(ordered: Sequence[CompiledSegment], size: int) -> Iterator[list[CompiledSegment]]:
    """`ordered` in runs of at most `size` segments, none using another of its run."""
    batch: list[CompiledSegment] = []
    keys: set[str] = set()
    for compiled in ordered:
        if len(batch) >= size or segment_references(compiled.filter) & keys:
            yield batch
            batch, keys = [], set()
        batch.append(compiled)
        keys.add(compiled.segment.key)
    if batch:
        yield batch


# Statements for listed contacts by segments, filters, catalog and dialect: building
# one costs more than running it for a few contacts. The catalog's time is left out of
# the key, as the values that follow it are parameters.
_LISTED_QUERIES: dict[tuple[str, ...], ListedQuery] = {}
_LISTED_QUERIES_KEPT = 256


def _listed_query(
    batch: Sequence[CompiledSegment], catalog: Catalog, dialect: str, *, with_current: bool
) -> ListedQuery:
    key = (
        *(str(compiled.segment.id) for compiled in batch),
        str(with_current),
        statement_key([compiled.filter for compiled in batch], catalog, dialect),
    )
    found = _LISTED_QUERIES.get(key)
    if found is None:
        if len(_LISTED_QUERIES) >= _LISTED_QUERIES_KEPT:
            _LISTED_QUERIES.clear()
        found = _build_listed_query(batch, catalog, dialect, with_current=with_current)
        _LISTED_QUERIES[key] = found
    return found


def _build_listed_query(
    batch: Sequence[CompiledSegment], catalog: Catalog, dialect: str, *, with_current: bool
) -> ListedQuery:
    conditions, timed = listed_conditions([c.filter for c in batch], catalog, dialect)
    statement = repository.listed_query(
        [(c.segment.id, condition) for c, condition in zip(batch, conditions, strict=True)],
        lambda column: is_listed(column, dialect),
        with_current=with_current,
    )
    return ListedQuery(statement, timed)


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
