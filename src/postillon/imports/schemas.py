"""The shapes of imports on the API."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel


class RowProblemOut(BaseModel):
    line: int
    column: str
    reason: str


class ImportOut(BaseModel):
    id: uuid.UUID
    filename: str
    status: str
    dry_run: bool
    rows: int
    created: int
    updated: int
    unchanged: int
    failed: int
    problems: list[RowProblemOut]
    started_at: datetime
    finished_at: datetime | None


class AutomationRunOut(BaseModel):
    import_id: uuid.UUID
    contacts: int
