"""Every query of the automations feature outside the journey runs (`journeys/repository.py`)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from postillon.kit.repository import insert_rows
from postillon.models import Automation, AutomationHistory, AutomationVersion


def published_signature(session: Session, statuses: Sequence[str]) -> list[Any]:
    """(id, key, published_version, status) of every published automation in `statuses`."""
    return list(
        session.execute(
            select(Automation.id, Automation.key, Automation.published_version, Automation.status)
            .where(Automation.published_version.is_not(None), Automation.status.in_(statuses))
            .order_by(Automation.key)
        ).all()
    )


def version_documents(
    session: Session, keys: Sequence[tuple[uuid.UUID, int]]
) -> dict[tuple[uuid.UUID, int], dict[str, Any]]:
    rows = session.execute(
        select(
            AutomationVersion.automation_id, AutomationVersion.version, AutomationVersion.document
        ).where(tuple_(AutomationVersion.automation_id, AutomationVersion.version).in_(keys))
    ).all()
    return {(r.automation_id, r.version): r.document for r in rows}


def insert_history(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """One executemany straight to the driver (`kit.repository.insert_rows`): a batch of
    journey steps writes thousands of entries."""
    insert_rows(session, AutomationHistory, rows)
