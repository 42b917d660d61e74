"""Segment traits → the changes they ask for on a contact (pure)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import orjson

from postillon.contacts import fields
from postillon.contacts.changes import ContactChanges
from postillon.contacts.fields import FieldError
from postillon.tracking.segment import Message

# Traits that are contact fields, in Segment's camelCase and in snake_case.
_FIELD_TRAITS = {
    "email": "email",
    "phone": "phone",
    "firstName": "first_name",
    "first_name": "first_name",
    "lastName": "last_name",
    "last_name": "last_name",
    "timezone": "timezone",
    "locale": "locale",
}
# Identifiers the message carries itself, or that would be confusing as attributes.
_SKIPPED_TRAITS = frozenset({"id", "userId", "user_id", "anonymousId", "anonymous_id", "name"})
_NOT_A_NAME_CHARACTER = re.compile(r"[^A-Za-z0-9_]+")


def changes_from_message(message: Message, where: str) -> ContactChanges:
    """What an identify (or any message with a userId) asks of its contact.

    Problems are located like the message's fields (`batch[3].traits.email`), so the client
    learns which message and which trait was refused.
    """
    prefix = f"{where}." if where else ""

    def locate(name: str) -> str:
        if name == "external_id":
            return f"{prefix}userId"
        return f"{prefix}traits.{name.removeprefix('attributes.')}"

    changes = ContactChanges(where=locate)
    if message.user_id is not None:
        changes.set_value("external_id", message.user_id)
    if message.type != "identify":
        return changes
    traits = message.traits
    for trait, value in traits.items():
        column = _FIELD_TRAITS.get(trait)
        if column is not None:
            changes.set_value(column, value)
        elif trait not in _SKIPPED_TRAITS:
            for name, attribute in _attributes(trait, value):
                changes.set_attribute(name, attribute)
    _split_full_name(changes, traits.get("name"))
    _defaults_from_context(changes, message.context)
    return changes


def _attributes(trait: str, value: Any) -> list[tuple[str, Any]]:
    """A trait as attributes: names made safe, nested objects flattened one level
    (`address.city` → `address_city`), deeper structures kept as JSON text."""
    name = attribute_name(trait)
    if not name:
        return []
    if isinstance(value, dict):
        return [
            (f"{name}_{attribute_name(key)}"[:100], _scalar(inner))
            for key, inner in value.items()
            if attribute_name(key)
        ]
    return [(name, _scalar(value) if not isinstance(value, list) else _list(value))]


def attribute_name(key: str) -> str:
    name = _NOT_A_NAME_CHARACTER.sub("_", str(key)).strip("_")
    if name and name[0].isdigit():
        name = f"_{name}"
    return name[:100]


def _scalar(value: Any) -> Any:
    if isinstance(value, dict | list):
        return orjson.dumps(value).decode()
    return value


def _list(values: Sequence[Any]) -> list[Any]:
    return [_scalar(v) for v in values]


def _split_full_name(changes: ContactChanges, name: Any) -> None:
    """`name` fills first and last name when the traits do not give them."""
    if not isinstance(name, str) or not name.strip():
        return
    if "first_name" in changes.values or "last_name" in changes.values:
        return
    first, _, last = name.strip().partition(" ")
    changes.set_value("first_name", first)
    if last.strip():
        changes.set_value("last_name", last.strip())


def _defaults_from_context(changes: ContactChanges, context: dict[str, Any]) -> None:
    """The device's time zone and locale, where traits do not set them and they are valid."""
    for column, normalise in (
        ("timezone", fields.normalise_timezone),
        ("locale", fields.normalise_locale),
    ):
        if column in changes.values:
            continue
        value = context.get(column)
        if not isinstance(value, str) or not value:
            continue
        try:
            changes.values[column] = normalise(value)
        except FieldError:
            continue
