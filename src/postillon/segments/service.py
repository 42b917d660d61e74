"""Segments: create, change, preview, refresh, list members, export."""

from __future__ import annotations

import re
import uuid
from collections.abc import Collection, Iterator
from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from postillon.clock import Clock
from postillon.errors import Conflict, FieldProblem, InvalidInput, NotFound
from postillon.filters.parsing import parse_filter
from postillon.filters.service import FilterService
from postillon.filters.sql import select_members
from postillon.kit.ids import new_id
from postillon.kit.pagination import Page, decode_cursor, encode_cursor
from postillon.models import Segment
from postillon.segments import exports, membership, repository
from postillon.segments.schemas import (
    ContactBrief,
    MemberOut,
    MembershipOut,
    PreviewOut,
    RefreshOut,
    SegmentIn,
    SegmentOut,
    SegmentPatch,
)

_KEY = re.compile(r"^[A-Za-z0-9_-]{1,100}$")


class SegmentService:
    def __init__(self, filters: FilterService, clock: Clock) -> None:
        self.filters = filters
        self.clock = clock

    # --- definitions ---

    def list_segments(self, session: Session) -> list[SegmentOut]:
        return [_out(s) for s in repository.all_segments(session)]

    def get(self, session: Session, key: str) -> SegmentOut:
        return _out(self._segment(session, key))

    def create(self, session: Session, data: SegmentIn, *, refresh: bool = True) -> SegmentOut:
        if not _KEY.match(data.key):
            raise InvalidInput.at("key", "use letters, digits, - and _ (at most 100)")
        if repository.by_key(session, data.key) is not None:
            message = f"a segment {data.key!r} exists already"
            raise Conflict(f"key: {message}", [FieldProblem("key", message)])
        self._check_filter(session, data.key, data.filter)
        now = self.clock.now()
        segment = Segment(
            id=new_id(),
            key=data.key,
            name=data.name.strip() or data.key,
            description=data.description,
            filter=data.filter,
            member_count=0,
            created_at=now,
            updated_at=now,
        )
        repository.add(session, segment)
        if refresh:
            self._refresh(session, segment)
        return _out(segment)

    def update(self, session: Session, key: str, data: SegmentPatch) -> SegmentOut:
        segment = self._segment(session, key, lock=True)
        if data.name is not None:
            segment.name = data.name.strip() or segment.key
        if "description" in data.model_fields_set:
            segment.description = data.description
        if data.filter is not None:
            self._check_filter(session, key, data.filter)
            segment.filter = data.filter
        segment.updated_at = self.clock.now()
        session.flush()
        if data.filter is not None:
            self._refresh(session, segment)
        return _out(segment)

    def delete(self, session: Session, key: str) -> None:
        segment = self._segment(session, key, lock=True)
        users = [
            other.key
            for other in repository.all_segments(session)
            if other.key != key and key in membership.segment_references(parse_filter(other.filter))
        ]
        if users:
            raise Conflict(
                f"segment {key!r} is used by {', '.join(sorted(users))}; change them first"
            )
        repository.remove(session, segment)

    def _check_filter(self, session: Session, key: str, document: dict[str, Any]) -> None:
        node = self.filters.parse(session, document)
        uses = membership.segment_references(node)
        if key in uses:
            raise InvalidInput.at("filter", "a segment cannot use itself")
        others = [s for s in repository.all_segments(session) if s.key != key]
        probe = Segment(key=key, filter=document)
        membership.in_dependency_order([*others, probe])  # raises Conflict on a circle

    def _segment(self, session: Session, key: str, *, lock: bool = False) -> Segment:
        segment = repository.by_key(session, key, lock=lock)
        if segment is None:
            raise NotFound(f"no segment {key!r}")
        return segment

    # --- preview and membership ---

    def preview(self, session: Session, document: dict[str, Any], sample_size: int) -> PreviewOut:
        """How many contacts a filter matches now, and a few of them, before saving it."""
        catalog = self.filters.catalog(session)
        node = self.filters.parse(session, document, catalog=catalog)
        query = select_members(node, catalog, session.get_bind().dialect.name)
        count = self.filters.count(session, node, catalog=catalog)
        sample = repository.sample_contacts(session, query, sample_size) if sample_size else []
        return PreviewOut(count=count, sample=[_brief(c) for c in sample])

    def refresh(self, session: Session, key: str) -> RefreshOut:
        segment = self._segment(session, key, lock=True)
        changes = self._refresh(session, segment)
        return RefreshOut(
            segment=key,
            entered=len(changes.entered),
            exited=len(changes.exited),
            member_count=segment.member_count,
        )

    def _refresh(self, session: Session, segment: Segment) -> membership.Changes:
        catalog = self.filters.catalog(session)
        node = self.filters.parse(session, segment.filter, catalog=catalog)
        compiled = membership.CompiledSegment(segment, node)
        return membership.refresh_everyone(session, compiled, catalog, self.clock.now())

    def refresh_due(self, session: Session, every: timedelta) -> str | None:
        """Fully refresh one segment not refreshed for `every` (conditions relative to
        the time change answers as it passes); its key, or None if none is due."""
        segment = repository.claim_due_segment(session, refreshed_before=self.clock.now() - every)
        if segment is None:
            return None
        self._refresh(session, segment)
        return segment.key

    def refresh_contacts(
        self, session: Session, contact_ids: Collection[uuid.UUID]
    ) -> dict[str, membership.Changes]:
        """Re-evaluate every segment for `contact_ids` (contacts that changed)."""
        if not contact_ids:
            return {}
        segments = repository.all_segments(session)
        if not segments:
            return {}
        catalog = self.filters.catalog(session)
        ordered = membership.in_dependency_order(segments)
        return membership.refresh_contacts(session, ordered, contact_ids, catalog, self.clock.now())

    def members(
        self, session: Session, key: str, *, cursor: str | None, limit: int
    ) -> Page[MemberOut]:
        segment = self._segment(session, key)
        after = None
        if cursor:
            try:
                after = uuid.UUID(str(decode_cursor(cursor)[0]))
            except (IndexError, ValueError):
                raise InvalidInput.at("cursor", "not a cursor returned by this API") from None
        rows = repository.member_page(session, segment.id, after=after, limit=limit + 1)
        items = [MemberOut(**_brief(c).model_dump(), entered_at=at) for c, at in rows[:limit]]
        next_cursor = encode_cursor(str(items[-1].id)) if len(rows) > limit else None
        return Page(items, next_cursor)

    def memberships_of(self, session: Session, contact_id: uuid.UUID) -> list[MembershipOut]:
        rows = repository.history_of_contact(session, contact_id, limit=500)
        return [
            MembershipOut(segment=k, segment_name=n, entered_at=e, exited_at=x)
            for k, n, e, x in rows
        ]

    # --- exports ---

    def export_csv(self, session: Session, key: str) -> Iterator[str]:
        segment = self._segment(session, key)
        return exports.members_csv(session, segment.id)

    def audience_csv(self, session: Session, key: str, platform: str) -> Iterator[str]:
        segment = self._segment(session, key)
        return exports.audience_csv(session, segment.id, platform)


def _out(segment: Segment) -> SegmentOut:
    return SegmentOut.model_validate(segment, from_attributes=True)


def _brief(contact: Any) -> ContactBrief:
    return ContactBrief.model_validate(contact, from_attributes=True)
