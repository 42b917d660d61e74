"""Checks on text that every input path shares."""

from __future__ import annotations

from typing import Any

NUL = "\x00"
NUL_MESSAGE = "contains a NUL character, which cannot be stored"


def nul_location(value: Any, where: str = "") -> str | None:
    """The path of the first key or string inside `value` holding a NUL character
    (PostgreSQL can store NUL neither in text nor in JSON), or None."""
    if isinstance(value, str):
        return (where or "body") if NUL in value else None
    if isinstance(value, dict):
        for key, inner in value.items():
            path = f"{where}.{key}" if where else str(key)
            if isinstance(key, str) and NUL in key:
                return where or "body"
            found = nul_location(inner, path)
            if found is not None:
                return found
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            found = nul_location(inner, f"{where}[{index}]")
            if found is not None:
                return found
    return None
