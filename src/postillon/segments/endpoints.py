"""HTTP routes for segments. Thin: parse, call the service, shape the answer."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Depends, Query, status
from fastapi.responses import StreamingResponse

from postillon.segments.schemas import (
    MemberPage,
    MembershipOut,
    PreviewIn,
    PreviewOut,
    RefreshOut,
    SegmentIn,
    SegmentOut,
    SegmentPatch,
)
from postillon.web.dependencies import ReadSession, RuntimeDep, WriteSession, require_admin

router = APIRouter(prefix="/api", tags=["segments"], dependencies=[Depends(require_admin)])


@router.get("/segments")
def list_segments(runtime: RuntimeDep, session: ReadSession) -> list[SegmentOut]:
    return runtime.segments.list_segments(session)


@router.post("/segments", status_code=status.HTTP_201_CREATED)
def create_segment(data: SegmentIn, runtime: RuntimeDep, session: WriteSession) -> SegmentOut:
    """Save a segment and compute its members; 422 names the bad node of the filter."""
    return runtime.segments.create(session, data)


@router.post("/segments/preview")
def preview_segment(data: PreviewIn, runtime: RuntimeDep, session: ReadSession) -> PreviewOut:
    """How many contacts a filter matches now, with a sample, without saving anything."""
    return runtime.segments.preview(session, data.filter, data.sample_size)


@router.get("/segments/{key}")
def get_segment(key: str, runtime: RuntimeDep, session: ReadSession) -> SegmentOut:
    return runtime.segments.get(session, key)


@router.patch("/segments/{key}")
def update_segment(
    key: str, data: SegmentPatch, runtime: RuntimeDep, session: WriteSession
) -> SegmentOut:
    """Rename or re-describe; a new filter recomputes the members at once."""
    return runtime.segments.update(session, key, data)


@router.delete("/segments/{key}", status_code=status.HTTP_204_NO_CONTENT)
def delete_segment(key: str, runtime: RuntimeDep, session: WriteSession) -> None:
    """Delete a segment and its membership history; 409 while another segment uses it."""
    runtime.segments.delete(session, key)


@router.post("/segments/{key}/refresh")
def refresh_segment(key: str, runtime: RuntimeDep, session: WriteSession) -> RefreshOut:
    """Recompute the members now (the worker does it on a schedule and as contacts change)."""
    return runtime.segments.refresh(session, key)


@router.get("/segments/{key}/members")
def segment_members(
    key: str,
    runtime: RuntimeDep,
    session: ReadSession,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> MemberPage:
    page = runtime.segments.members(session, key, cursor=cursor, limit=limit)
    return MemberPage(items=page.items, next_cursor=page.next_cursor)


@router.get("/segments/{key}/export.csv", response_class=StreamingResponse)
def export_segment(key: str, runtime: RuntimeDep, session: ReadSession) -> StreamingResponse:
    """The members as CSV (id, email, external_id, names, phone, entered_at)."""
    runtime.segments.get(session, key)  # 404 before the stream starts

    def rows() -> Iterator[str]:
        with runtime.database.transaction(read_only=True) as streaming:
            yield from runtime.segments.export_csv(streaming, key)

    return _csv(rows(), f"segment-{key}.csv")


@router.get("/segments/{key}/audience.csv", response_class=StreamingResponse)
def export_audience(
    key: str,
    runtime: RuntimeDep,
    session: ReadSession,
    platform: Annotated[
        str, Query(description="google (phones as +E.164) or meta (digits)")
    ] = "google",
) -> StreamingResponse:
    """A custom audience for ad platforms: SHA-256 of the normalised email and phone."""
    runtime.segments.audience_csv(session, key, platform)  # 404 / 422 before streaming

    def rows() -> Iterator[str]:
        with runtime.database.transaction(read_only=True) as streaming:
            yield from runtime.segments.audience_csv(streaming, key, platform)

    return _csv(rows(), f"audience-{key}-{platform}.csv")


@router.get("/contacts/{contact_id}/segments")
def contact_segments(
    contact_id: uuid.UUID, runtime: RuntimeDep, session: ReadSession
) -> list[MembershipOut]:
    """The contact's segment memberships, current (no exited_at) and past, newest first."""
    runtime.contacts.require(session, contact_id)
    return runtime.segments.memberships_of(session, contact_id)


def _csv(rows: Iterator[str], filename: str) -> StreamingResponse:
    return StreamingResponse(
        rows,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
