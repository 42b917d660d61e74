"""Segment members as CSV: for people (contact columns) and for ad platforms' custom
audiences (normalised, SHA-256-hashed emails and phones, nothing else)."""

from __future__ import annotations

import csv
import hashlib
import io
import uuid
from collections.abc import Iterable, Iterator

from sqlalchemy.orm import Session

from postillon.errors import InvalidInput
from postillon.segments import repository

MEMBER_COLUMNS = ("id", "email", "external_id", "first_name", "last_name", "phone")
# Google Customer Match takes phones in E.164 (+4930…); Meta wants the digits alone.
AUDIENCE_PLATFORMS = ("google", "meta")


def _lines(rows: Iterable[Iterable[object]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)
    return buffer.getvalue()


def members_csv(session: Session, segment_id: uuid.UUID) -> Iterator[str]:
    yield _lines([[*MEMBER_COLUMNS, "entered_at"]])
    for batch in repository.iter_members(session, segment_id, MEMBER_COLUMNS):
        yield _lines(
            [
                [*(_cell(row[c]) for c in MEMBER_COLUMNS), row["entered_at"].isoformat()]
                for row in batch
            ]
        )


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    # A spreadsheet would run a cell starting with = + - @ as a formula.
    return f"'{text}" if text[:1] in ("=", "+", "-", "@") and not _is_phone(text) else text


def _is_phone(text: str) -> bool:
    return text.startswith("+") and text[1:].isdigit()


def normalised_email(email: str) -> str:
    return email.strip().lower()


def normalised_phone(phone: str, platform: str) -> str:
    digits = "".join(ch for ch in phone if ch.isdigit())
    return digits if platform == "meta" else f"+{digits}"


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def audience_csv(session: Session, segment_id: uuid.UUID, platform: str) -> Iterator[str]:
    if platform not in AUDIENCE_PLATFORMS:
        raise InvalidInput.at("platform", f"must be one of {', '.join(AUDIENCE_PLATFORMS)}")
    return _audience_rows(session, segment_id, platform)


def _audience_rows(session: Session, segment_id: uuid.UUID, platform: str) -> Iterator[str]:
    yield _lines([["email_sha256", "phone_sha256"]])
    for batch in repository.iter_members(session, segment_id, ("id", "email", "phone")):
        rows = [
            [
                sha256(normalised_email(row["email"])) if row["email"] else "",
                sha256(normalised_phone(row["phone"], platform)) if row["phone"] else "",
            ]
            for row in batch
            if row["email"] or row["phone"]
        ]
        yield _lines(rows)
