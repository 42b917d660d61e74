"""How the columns of a CSV file map onto contacts.

Known headers map to contact fields (`E-Mail`, `First name`, `Vorname` …); `tags` is a
comma-separated list; every other column becomes a custom attribute named after its
header, typed by a `:type` suffix (`age:number`), by an explicit mapping, or by the
attribute's existing definition (text otherwise). `skip` ignores a column, and so are
columns without a header.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from postillon.contacts.fields import AttributeType, FieldError, check_attribute_name
from postillon.errors import FieldProblem, InvalidInput

FIELD_TARGETS = (
    "email", "external_id", "first_name", "last_name", "phone", "tags", "score",
    "lifecycle_stage", "owner", "timezone", "locale",
)  # fmt: skip
SKIP = "skip"

_ALIASES = {
    "email": "email", "e_mail": "email", "email_address": "email", "e_mail_address": "email",
    "mail": "email", "emailaddress": "email",
    "external_id": "external_id", "user_id": "external_id", "userid": "external_id",
    "customer_id": "external_id", "crm_id": "external_id",
    "first_name": "first_name", "firstname": "first_name", "given_name": "first_name",
    "forename": "first_name", "vorname": "first_name",
    "last_name": "last_name", "lastname": "last_name", "surname": "last_name",
    "family_name": "last_name", "nachname": "last_name",
    "phone": "phone", "phone_number": "phone", "mobile": "phone", "mobile_phone": "phone",
    "telephone": "phone", "telefon": "phone", "cell": "phone",
    "tags": "tags", "tag": "tags", "score": "score", "points": "score",
    "lifecycle_stage": "lifecycle_stage", "stage": "lifecycle_stage", "owner": "owner",
    "timezone": "timezone", "time_zone": "timezone", "locale": "locale", "language": "locale",
}  # fmt: skip


@dataclass(frozen=True)
class ColumnTarget:
    """Where one column goes: a contact field, an attribute (with an optional type), or nowhere."""

    header: str
    field: str | None = None
    attribute: str | None = None
    attribute_type: AttributeType | None = None

    @property
    def skipped(self) -> bool:
        return self.field is None and self.attribute is None


def slug(header: str) -> str:
    """`E-Mail Address` → `e_mail_address`."""
    return re.sub(r"[^a-z0-9]+", "_", header.strip().lower()).strip("_")


def parse_target(header: str, spec: str) -> ColumnTarget:
    """A mapping written as `email`, `skip`, `birthday:date` or `attribute:birthday:date`."""
    spec = spec.strip()
    if spec == SKIP:
        return ColumnTarget(header)
    if spec in FIELD_TARGETS:
        return ColumnTarget(header, field=spec)
    name, _, kind = spec.removeprefix("attribute:").partition(":")
    try:
        check_attribute_name(name)
    except FieldError as exc:
        raise FieldError(f"{spec!r} is neither a contact field nor an attribute: {exc}") from None
    if kind:
        try:
            return ColumnTarget(header, attribute=name, attribute_type=AttributeType(kind))
        except ValueError:
            types = ", ".join(t.value for t in AttributeType)
            raise FieldError(f"unknown attribute type {kind!r}; types are {types}") from None
    return ColumnTarget(header, attribute=name)


def map_columns(headers: Sequence[str], overrides: Mapping[str, str]) -> list[ColumnTarget]:
    """The target of each column, from explicit `overrides` or the header itself."""
    problems: list[FieldProblem] = []
    targets: list[ColumnTarget] = []
    unknown = set(overrides) - set(headers)
    for header in sorted(unknown):
        problems.append(FieldProblem(f"mapping.{header}", "the file has no such column"))
    for index, header in enumerate(headers):
        location = f"column {index + 1} ({header!r})"
        if not header.strip():
            targets.append(ColumnTarget(header))  # spreadsheets leave unnamed columns: skip
            continue
        try:
            if header in overrides:
                targets.append(parse_target(header, overrides[header]))
            else:
                targets.append(_target_from_header(header))
        except FieldError as exc:
            problems.append(FieldProblem(location, str(exc)))
    seen: dict[str, str] = {}
    for target in targets:
        key = target.field or (f"attribute {target.attribute}" if target.attribute else None)
        if key is None:
            continue
        if key in seen:
            problems.append(
                FieldProblem(f"column {target.header!r}", f"maps to {key}, as {seen[key]!r} does")
            )
        seen[key] = target.header
    if problems:
        raise InvalidInput.of(problems)
    if "email" not in seen and "external_id" not in seen:
        raise InvalidInput.at(
            "header",
            "no column maps to email or external_id, so rows cannot be matched to contacts; "
            f"columns are {', '.join(repr(h) for h in headers)}",
        )
    return targets


def _target_from_header(header: str) -> ColumnTarget:
    name, colon, kind = header.rpartition(":")
    if colon and kind.strip().lower() in {t.value for t in AttributeType}:
        return parse_target(header, f"attribute:{slug(name)}:{kind.strip().lower()}")
    key = slug(header)
    if key in _ALIASES:
        return ColumnTarget(header, field=_ALIASES[key])
    if key and key[0].isdigit():
        key = f"_{key}"
    return parse_target(header, f"attribute:{key}")
