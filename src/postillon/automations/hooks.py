"""The points where contact changes reach automations.

Rules and journeys are not built yet (they come with the automation engine); callers
already pass the contacts through here so that engine plugs in without changing them.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.orm import Session


def contacts_created(
    session: Session, contact_ids: Sequence[uuid.UUID], *, now: datetime, source: str
) -> None:
    """Contacts were created (by an import, the API or a form); no automation reacts yet."""
    del session, contact_ids, now, source
