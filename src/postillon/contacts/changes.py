"""What one input asks to change on a contact, checked and normalised, but not yet applied."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from postillon.contacts import fields
from postillon.contacts.fields import AttributeType, FieldError
from postillon.contacts.schemas import ConsentIn, ContactIn
from postillon.errors import FieldProblem

# Columns of `contacts` that an input may set, with their normaliser.
_NORMALISERS: dict[str, Callable[[object], Any]] = {
    "external_id": lambda v: fields.normalise_text(v, max_length=255),
    "email": fields.normalise_email,
    "phone": fields.normalise_phone,
    "first_name": fields.normalise_text,
    "last_name": fields.normalise_text,
    "score": fields.normalise_score,
    "timezone": fields.normalise_timezone,
    "locale": fields.normalise_locale,
}


def _at(name: str) -> str:
    return name


@dataclass
class ContactChanges:
    """Checked input for one contact. `problems` non-empty means it must not be applied."""

    values: dict[str, Any] = field(default_factory=dict)
    owner_email: str | None = None
    owner_given: bool = False
    attributes: dict[str, Any] = field(default_factory=dict)
    declared_types: dict[str, AttributeType] = field(default_factory=dict)
    attributes_from_text: bool = False
    tags: list[str] = field(default_factory=list)
    # Tags to take off (after `tags` are added: a tag in both ends up removed).
    removed_tags: list[str] = field(default_factory=list)
    consent: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    # Consent that applies only where the contact has no decision on that channel yet:
    # a list import must never re-subscribe someone who unsubscribed.
    default_consent: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    contact_id: uuid.UUID | None = None
    problems: list[FieldProblem] = field(default_factory=list)
    where: Callable[[str], str] = _at

    def problem(self, name: str, message: str) -> None:
        self.problems.append(FieldProblem(self.where(name), message))

    def set_value(self, name: str, raw: object) -> None:
        """Normalise and keep a column value; `None` or blank text clears the column."""
        if raw is None or (isinstance(raw, str) and not raw.strip() and name != "score"):
            self.values[name] = None
            return
        try:
            self.values[name] = _NORMALISERS[name](raw)
        except FieldError as exc:
            self.problem(name, str(exc))

    def set_lifecycle_stage(self, raw: str | None) -> None:
        """Blank is no stage; `upsert.apply_changes` checks the stage against the pipeline."""
        self.values["lifecycle_stage"] = raw.strip().lower() if raw and raw.strip() else None

    def set_owner(self, raw: str | None) -> None:
        self.owner_given = True
        if raw is None or not raw.strip():
            self.owner_email = None
            return
        try:
            self.owner_email = fields.normalise_email(raw)
        except FieldError as exc:
            self.problem("owner", str(exc))

    def set_attribute(self, name: str, raw: object) -> None:
        try:
            fields.check_attribute_name(name)
        except FieldError as exc:
            self.problem(f"attributes.{name}", str(exc))
            return
        self.attributes[name] = raw

    def add_tag(self, raw: object) -> None:
        try:
            tag = fields.normalise_tag(raw)
        except FieldError as exc:
            self.problem("tags", str(exc))
            return
        if tag not in self.tags:
            self.tags.append(tag)

    def remove_tag(self, raw: object) -> None:
        try:
            tag = fields.normalise_tag(raw)
        except FieldError as exc:
            self.problem("tags", str(exc))
            return
        if tag not in self.removed_tags:
            self.removed_tags.append(tag)

    def set_consent(self, channel: str, status: str, source: str | None) -> None:
        self.consent[channel] = (status, source)


def changes_from_input(
    data: ContactIn,
    *,
    where: Callable[[str], str] = _at,
    contact_id: uuid.UUID | None = None,
) -> ContactChanges:
    """Check an API input; only the fields it names are changed."""
    changes = ContactChanges(where=where, contact_id=contact_id)
    given = data.model_fields_set
    for name in _NORMALISERS:
        if name in given:
            changes.set_value(name, getattr(data, name))
    if "lifecycle_stage" in given:
        changes.set_lifecycle_stage(data.lifecycle_stage)
    if "owner" in given:
        changes.set_owner(data.owner)
    for name, value in data.attributes.items():
        changes.set_attribute(name, value)
    for tag in data.tags:
        changes.add_tag(tag)
    for channel, consent in data.consent.items():
        if isinstance(consent, ConsentIn):
            changes.set_consent(channel.value, consent.status.value, consent.source)
        else:
            changes.set_consent(channel.value, consent.value, "api")
    return changes
