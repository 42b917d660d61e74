"""Opaque cursors for keyset pagination."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Generic, TypeVar

from postillon.errors import InvalidInput

T = TypeVar("T")


def encode_cursor(*values: str | int) -> str:
    raw = json.dumps(list(values), separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, *, field: str = "cursor") -> list[str | int]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput.at(field, "not a cursor returned by this API") from exc
    if not isinstance(values, list) or not all(isinstance(v, str | int) for v in values):
        raise InvalidInput.at(field, "not a cursor returned by this API")
    return values


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None
