"""Contacts whose segment memberships must be brought up to date.

Events reach the segments through the event queue. Every other change a filter can see
(an API update, an import, tags, consent, a score, a stage, computed traits) is announced
here by the feature that made it, in its own transaction: `queue_contacts` records the
contact ids, and the worker re-evaluates the segments for them in batches.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from datetime import datetime

from sqlalchemy.orm import Session

from postillon.kit.ids import sorted_ids
from postillon.kit.repository import insert_rows
from postillon.models import ContactRefresh


def queue_contacts(session: Session, contact_ids: Collection[uuid.UUID], *, now: datetime) -> None:
    """Ask for the segment memberships of `contact_ids` to be re-evaluated."""
    if not contact_ids:
        return
    insert_rows(
        session,
        ContactRefresh,
        [{"contact_id": id_, "queued_at": now} for id_ in sorted_ids(set(contact_ids))],
        ignore_conflicts=True,
    )
