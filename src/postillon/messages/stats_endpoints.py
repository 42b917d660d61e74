"""HTTP routes for message statistics (a broadcast's are with the broadcasts)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends

from postillon.messages import stats
from postillon.messages.stats import TemplateStats
from postillon.web.dependencies import ReadSession, require_admin

router = APIRouter(prefix="/api", tags=["statistics"], dependencies=[Depends(require_admin)])


@router.get("/templates/{key}/stats")
def template_stats(
    key: str,
    session: ReadSession,
    since: datetime | None = None,
    until: datetime | None = None,
) -> TemplateStats:
    """Every message of the template sent in [since, until): sent, delivered, bounces,
    unique opens and clicks, machine opens, unsubscribes, complaints and the rates."""
    return stats.template_stats(session, key, since=since, until=until)
