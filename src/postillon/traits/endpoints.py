"""HTTP routes for computed traits. Thin: parse, call the service, shape the answer."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Depends

from postillon.traits.schemas import RefreshIn, RefreshOut, TraitsOut
from postillon.web.dependencies import ReadSession, RuntimeDep, WriteSession, require_admin

router = APIRouter(prefix="/api", tags=["traits"], dependencies=[Depends(require_admin)])


@router.get("/contacts/{contact_id}/traits")
def contact_traits(contact_id: uuid.UUID, runtime: RuntimeDep, session: ReadSession) -> TraitsOut:
    """The contact's computed traits (purchases, RFM, engagement) as of the last refresh."""
    return runtime.traits.traits_of(session, contact_id)


@router.post("/traits/refresh")
def refresh_traits(
    runtime: RuntimeDep, session: WriteSession, data: RefreshIn | None = None
) -> RefreshOut:
    """Recompute traits now, for everyone or for the contacts given (the worker does it
    for everyone every `POSTILLON_TRAITS_REFRESH_INTERVAL`)."""
    contact_ids = data.contact_ids if data is not None else None
    return RefreshOut(changed=len(runtime.traits.refresh(session, contact_ids)))
