"""Templates Postillon itself sends from (the double opt-in confirmation, the owner
notification): created the first time they are needed, transactional, and from then on
ordinary templates a marketer may edit."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from postillon.kit.ids import new_id
from postillon.templates import repository


@dataclass(frozen=True)
class SystemTemplate:
    key: str
    name: str
    subject: str
    body: str
    preheader: str | None = None


def system_template_id(session: Session, template: SystemTemplate, now: datetime) -> uuid.UUID:
    """The template's id, inserting it first if it does not exist (a concurrent writer
    inserting it too is no conflict)."""
    found = repository.template_by_key(session, template.key)
    if found is None:
        repository.add_template_if_absent(
            session,
            {
                "id": new_id(),
                "key": template.key,
                "name": template.name,
                "format": "html",
                "subject": template.subject,
                "preheader": template.preheader,
                "body": template.body,
                "text_body": None,
                "compiled_html": template.body,
                "from_address": None,
                "reply_to": None,
                "kind": "transactional",
                "topic": None,
                "version": 1,
                "created_at": now,
                "updated_at": now,
            },
        )
        found = repository.template_by_key(session, template.key)
        assert found is not None, "inserted or created by a concurrent writer"
    return found.id
