"""HTTP routes for GDPR export and erasure."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Depends, status

from postillon.web.dependencies import ReadSession, RuntimeDep, WriteSession, require_admin

router = APIRouter(prefix="/api", tags=["privacy"], dependencies=[Depends(require_admin)])


@router.get("/contacts/{contact_id}/export")
def export_contact(
    contact_id: uuid.UUID, runtime: RuntimeDep, session: ReadSession
) -> dict[str, Any]:
    """Everything stored about the contact (GDPR art. 15 and 20)."""
    return runtime.privacy.export(session, contact_id)


@router.post("/contacts/{contact_id}/erase", status_code=status.HTTP_204_NO_CONTENT)
def erase_contact(contact_id: uuid.UUID, runtime: RuntimeDep, session: WriteSession) -> None:
    """Erase the contact and its events for good (GDPR art. 17); its address is kept only
    as a keyed hash so that it is not imported again by accident."""
    runtime.privacy.erase(session, contact_id)
