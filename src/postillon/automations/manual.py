"""Rules run by hand: on a segment's current members, on the contacts an import created
or updated, or on listed contacts (`POST /api/automations/{key}/run`, `postillon rules
run`). The rule's conditions, once-per-contact and cooldown apply; its trigger does not.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from postillon.automations import rules_repository as repository
from postillon.automations.definitions import Definitions, Status
from postillon.automations.model import Rule
from postillon.automations.rules import RuleEngine
from postillon.errors import Conflict, FieldProblem, InvalidInput, NotFound
from postillon.kit.repository import chunked

# Contacts handed to the rule engine at once (its steps are set-based per call).
_CHUNK = 1000


@dataclass(frozen=True)
class Audience:
    """Exactly one of: a segment key, an import id, contact ids."""

    segment: str | None = None
    import_id: uuid.UUID | None = None
    contact_ids: tuple[uuid.UUID, ...] = ()


@dataclass(frozen=True)
class ManualRun:
    rule: str
    contacts: int
    fired: int


def run_rule(
    session: Session,
    *,
    definitions: Definitions,
    rules: RuleEngine,
    key: str,
    audience: Audience,
    now: datetime,
) -> ManualRun:
    """Run the published rule `key` for the audience, in the caller's transaction."""
    published = definitions.by_key.get(key)
    if published is None or not isinstance(published.tree, Rule):
        raise NotFound(f"no published rule with the key {key!r}")
    if published.status != Status.active:
        raise Conflict(f"the rule {key!r} is {published.status}: resume it to run it")
    contact_ids = audience_contacts(session, audience)
    fired = sum(
        rules.run_for(session, published, part, now=now) for part in chunked(contact_ids, _CHUNK)
    )
    return ManualRun(rule=key, contacts=len(contact_ids), fired=fired)


def audience_contacts(session: Session, audience: Audience) -> Sequence[uuid.UUID]:
    given = [
        name
        for name, value in (
            ("segment", audience.segment),
            ("import_id", audience.import_id),
            ("contact_ids", audience.contact_ids),
        )
        if value
    ]
    if len(given) != 1:
        raise InvalidInput.at("body", "give exactly one of segment, import_id, contact_ids")
    if audience.segment is not None:
        segment = repository.segment_id(session, audience.segment)
        if segment is None:
            raise InvalidInput.at("segment", f"no segment with the key {audience.segment!r}")
        return repository.segment_members(session, segment)
    if audience.import_id is not None:
        if not repository.import_exists(session, audience.import_id):
            raise InvalidInput.at("import_id", f"no import with the id {audience.import_id}")
        return repository.import_contacts(session, audience.import_id)
    listed = list(dict.fromkeys(audience.contact_ids))
    known = repository.existing_contacts(session, listed)
    problems = [
        FieldProblem(f"contact_ids[{i}]", f"no contact with the id {contact_id}")
        for i, contact_id in enumerate(audience.contact_ids)
        if contact_id not in known
    ]
    if problems:
        raise InvalidInput.of(problems)
    return listed
