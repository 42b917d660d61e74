"""Files and views the import tests share."""

from __future__ import annotations

from typing import Any

from postillon.contacts.service import ContactFilter
from postillon.runtime import Runtime

# The first bytes of an .xlsx workbook: what arrives when someone uploads Excel, not CSV.
XLSX_START = (
    b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00b\xee\x9dh^\x01\x00\x00\x90\x04\x00\x00"
    b"\x13\x00\x08\x02[Content_Types].xml \xa2\x04\x02(\xa0\x00\x02\x00\x00\x00\x00\x00\x00"
)


def csv_file(*lines: str, encoding: str = "utf-8", newline: str = "\n") -> bytes:
    return (newline.join(lines) + newline).encode(encoding)


def stored_contacts(runtime: Runtime, *, key: str = "id") -> dict[str, dict[str, Any]]:
    """Every contact as the API shows it, by `key` (id or email)."""
    found: dict[str, dict[str, Any]] = {}
    cursor = None
    with runtime.database.transaction(read_only=True) as session:
        while True:
            page = runtime.contacts.list_contacts(
                session, ContactFilter(), cursor=cursor, limit=500
            )
            found.update({str(getattr(c, key)): c.model_dump(mode="json") for c in page.items})
            cursor = page.next_cursor
            if cursor is None:
                return found
