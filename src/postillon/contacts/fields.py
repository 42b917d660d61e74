"""Validation and normalisation of contact fields. Pure functions: no database, no HTTP.

Each normaliser returns the clean value or raises FieldError with a message for the user;
callers attach the location (`email`, `contacts[3].phone`, `line 12, column phone`).
"""

from __future__ import annotations

import math
import re
from datetime import date, datetime
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from postillon.kit.text import NUL, NUL_MESSAGE


class FieldError(ValueError):
    """A single value is not acceptable; the message says why."""


class Channel(StrEnum):
    email = "email"
    sms = "sms"
    push = "push"


class ConsentStatus(StrEnum):
    subscribed = "subscribed"
    # Asked to subscribe from a double opt-in source; subscribed once the link is followed.
    pending = "pending"
    unsubscribed = "unsubscribed"
    bounced = "bounced"
    complained = "complained"


class AttributeType(StrEnum):
    string = "string"
    number = "number"
    boolean = "boolean"
    date = "date"
    list = "list"


CONTACT_FIELDS = frozenset(
    {
        "id", "external_id", "email", "phone", "first_name", "last_name", "attributes", "tags",
        "consent", "score", "lifecycle_stage", "owner", "timezone", "locale", "created_at",
        "updated_at",
    }
)  # fmt: skip

_ATTRIBUTE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")
_LOCALE = re.compile(r"^[a-zA-Z]{2,3}([-_][a-zA-Z]{4})?([-_]([a-zA-Z]{2}|[0-9]{3}))?$")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# Addresses of this plain shape are the vast majority; for them email-validator's verdict
# and normal form are known in advance (see tests/contacts/test_fields.py, which checks
# this against email-validator on generated addresses), so the import skips its ~30 µs.
_PLAIN_EMAIL = re.compile(
    r"^[a-z0-9_+-]+(?:\.[a-z0-9_+-]+)*@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,24}$"
)
_SPECIAL_USE_TLDS = frozenset({"arpa", "invalid", "local", "localhost", "onion", "test"})
_MAX_TEXT = 200
_MAX_LIST_ITEMS = 100
_TRUE = frozenset({"true", "yes", "y", "1", "on"})
_FALSE = frozenset({"false", "no", "n", "0", "off"})


def normalise_email(value: object) -> str:
    """A syntactically valid address, lower-cased (the unique key of a contact)."""
    if not isinstance(value, str):
        raise FieldError("must be a string")
    candidate = value.strip().lower()
    if not candidate:
        raise FieldError("must not be empty")
    if (
        len(candidate) <= 254
        and _PLAIN_EMAIL.match(candidate)
        and len(candidate.partition("@")[0]) <= 64
        and candidate.rpartition(".")[2] not in _SPECIAL_USE_TLDS
        and "--" not in candidate.partition("@")[2]  # IDNA reserves `ab--`; let the library judge
    ):
        return candidate
    try:
        result = validate_email(candidate, check_deliverability=False)
    except EmailNotValidError as exc:
        raise FieldError(f"not a valid email address: {exc}") from None
    return str(result.normalized).lower()


def normalise_phone(value: object, *, default_region: str | None = None) -> str:
    """E.164 form (`+4915112345678`). Numbers without a country code need a default region."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise FieldError("must be a string")
    try:
        number = phonenumbers.parse(value, default_region)
    except phonenumbers.NumberParseException as exc:
        hint = "" if value.strip().startswith("+") else "; use the +<country code> form"
        raise FieldError(f"not a phone number ({exc._msg.rstrip('.')}){hint}") from None
    if not phonenumbers.is_valid_number(number):
        raise FieldError("not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalise_text(value: object, *, max_length: int = _MAX_TEXT) -> str | None:
    """Trimmed text; empty becomes None."""
    if not isinstance(value, str):
        raise FieldError("must be a string")
    text = value.strip()
    if NUL in text:
        raise FieldError(NUL_MESSAGE)
    if len(text) > max_length:
        raise FieldError(f"is longer than {max_length} characters")
    return text or None


def normalise_timezone(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise FieldError("must be an IANA time zone name such as Europe/Berlin")
    name = value.strip()
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise FieldError(
            f"unknown time zone {name!r}; use an IANA name such as Europe/Berlin"
        ) from None
    if name not in _timezones():
        raise FieldError(f"unknown time zone {name!r}; use an IANA name such as Europe/Berlin")
    return name


_TIMEZONES: frozenset[str] | None = None


def _timezones() -> frozenset[str]:
    global _TIMEZONES
    if _TIMEZONES is None:
        _TIMEZONES = frozenset(available_timezones()) | {"UTC"}
    return _TIMEZONES


def normalise_locale(value: object) -> str:
    """A BCP 47 language tag such as `de` or `de-DE`, in canonical case."""
    if not isinstance(value, str) or not _LOCALE.match(value.strip()):
        raise FieldError("must be a language tag such as en, de-DE or pt-BR")
    parts = re.split(r"[-_]", value.strip())
    canonical = [parts[0].lower()]
    for part in parts[1:]:
        canonical.append(part.title() if len(part) == 4 else part.upper())
    return "-".join(canonical)


def normalise_tag(value: object) -> str:
    if not isinstance(value, str):
        raise FieldError("a tag must be a string")
    tag = value.strip()
    if not tag:
        raise FieldError("a tag must not be empty")
    if NUL in tag:
        raise FieldError(NUL_MESSAGE)
    if len(tag) > 100:
        raise FieldError("a tag is at most 100 characters")
    return tag


def normalise_score(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, str) and re.fullmatch(r"[+-]?\d{1,12}", value.strip()):
            return int(value)
        raise FieldError("must be a whole number")
    if abs(value) > 10**12:
        raise FieldError("is out of range")
    return value


def check_attribute_name(name: str) -> str:
    if not _ATTRIBUTE_NAME.match(name):
        raise FieldError(
            "attribute names start with a letter or _ and hold letters, digits and _ (at most 100)"
        )
    if name in CONTACT_FIELDS:
        raise FieldError(f"{name!r} is a contact field, not a custom attribute")
    return name


def infer_attribute_type(value: object) -> AttributeType:
    """The type a first-seen JSON value gives an attribute."""
    if isinstance(value, bool):
        return AttributeType.boolean
    if isinstance(value, int | float):
        return AttributeType.number
    if isinstance(value, list):
        return AttributeType.list
    if isinstance(value, str) and _ISO_DATE.match(value.strip()):
        try:
            date.fromisoformat(value.strip())
            return AttributeType.date
        except ValueError:
            pass
    return AttributeType.string


def coerce_attribute(value: object, kind: AttributeType, *, from_text: bool = False) -> Any:
    """The value as stored for an attribute of `kind`. `from_text` allows CSV spellings."""
    if kind is AttributeType.string:
        if isinstance(value, str):
            if len(value) > 10_000:
                raise FieldError("is longer than 10000 characters")
            if NUL in value:
                raise FieldError(NUL_MESSAGE)
            return value
        raise FieldError(f"expected a string, got {_describe(value)}")
    if kind is AttributeType.number:
        return _coerce_number(value, from_text)
    if kind is AttributeType.boolean:
        if isinstance(value, bool):
            return value
        if from_text and isinstance(value, str):
            word = value.strip().lower()
            if word in _TRUE:
                return True
            if word in _FALSE:
                return False
        raise FieldError(f"expected true or false, got {_describe(value)}")
    if kind is AttributeType.date:
        return _coerce_date(value)
    return _coerce_list(value, from_text)


def _coerce_number(value: object, from_text: bool) -> int | float:
    if isinstance(value, bool):
        raise FieldError("expected a number, got a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise FieldError("expected a finite number")
        return value
    if from_text and isinstance(value, str):
        text = value.strip()
        try:
            return int(text)
        except ValueError:
            pass
        try:
            number = float(text)
        except ValueError:
            raise FieldError(f"expected a number, got {text!r}") from None
        if math.isfinite(number):
            return number
    raise FieldError(f"expected a number, got {_describe(value)}")


def _coerce_date(value: object) -> str:
    if isinstance(value, str):
        text = value.strip()
        try:
            if _ISO_DATE.match(text):
                return date.fromisoformat(text).isoformat()
            return datetime.fromisoformat(text).date().isoformat()
        except ValueError:
            pass
    raise FieldError(f"expected a date as YYYY-MM-DD, got {_describe(value)}")


def _coerce_list(value: object, from_text: bool) -> list[Any]:
    if from_text and isinstance(value, str):
        value = [item.strip() for item in value.split(",") if item.strip()]
    if not isinstance(value, list):
        raise FieldError(f"expected a list, got {_describe(value)}")
    if len(value) > _MAX_LIST_ITEMS:
        raise FieldError(f"a list holds at most {_MAX_LIST_ITEMS} items")
    for item in value:
        if isinstance(item, dict | list) or item is None:
            raise FieldError("list items must be strings, numbers or booleans")
    return value


def _describe(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, str):
        return repr(value if len(value) <= 40 else value[:37] + "...")
    return type(value).__name__ if not isinstance(value, dict) else "an object"
