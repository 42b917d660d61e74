"""Typed reads of a path in a JSON column (attributes, event properties), for SQLite's
JSON1 functions and PostgreSQL's jsonb."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Float,
    Numeric,
    String,
    and_,
    case,
    cast,
    exists,
    func,
    literal,
    select,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import JSONB

Condition = ColumnElement[bool]


class JsonPath:
    """Typed reads of a path in a JSON column: each is NULL unless the value has that type."""

    def __init__(self, dialect: str, doc: Any, path: Sequence[str]) -> None:
        self.sqlite = dialect == "sqlite"
        if self.sqlite:
            location = "$" + "".join(f'."{part}"' for part in path)
            self._doc, self._location = doc, location
            self.kind: Any = func.json_type(doc, location)
            self.raw: Any = func.json_extract(doc, location)
            self._types = {
                "string": ("text",),
                "number": ("integer", "real"),
                "boolean": ("true", "false"),
                "array": ("array",),
                "value": ("true", "false", "integer", "real", "text", "array", "object"),
            }
        else:
            keys = [literal(part, String) for part in path]
            if len(keys) == 1:  # the operators cost less a row than the path functions
                self.raw = doc.op("->", return_type=JSONB)(keys[0])
                self._text = doc.op("->>", return_type=String)(keys[0])
            else:
                self.raw = func.jsonb_extract_path(doc, *keys, type_=JSONB)
                self._text = func.jsonb_extract_path_text(doc, *keys, type_=String)
            self.kind = func.jsonb_typeof(self.raw)
            self._types = {
                "string": ("string",),
                "number": ("number",),
                "boolean": ("boolean",),
                "array": ("array",),
                "value": ("string", "number", "boolean", "array", "object"),
            }

    def is_(self, kind: str) -> Condition:
        found: Condition = self.kind.in_(self._types[kind])
        return found

    def as_text(self) -> ColumnElement[Any]:
        """The value as text whatever its type (arrays and objects as JSON)."""
        return type_coerce(self.raw if self.sqlite else self._text, String)

    def text(self) -> ColumnElement[Any]:
        return case((self.is_("string"), self.as_text()))

    def number(self) -> ColumnElement[Any]:
        value = type_coerce(self.raw, Float) if self.sqlite else cast(self._text, Numeric)
        return case((self.is_("number"), value))

    def boolean(self) -> ColumnElement[Any]:
        if self.sqlite:
            return case((self.kind == "true", True), (self.kind == "false", False))
        return case((self.is_("boolean"), self._text == "true"))

    def array_length(self) -> ColumnElement[Any]:
        if self.sqlite:
            return case((self.is_("array"), func.json_array_length(self.raw)))
        return case((self.is_("array"), func.jsonb_array_length(self.raw)))

    def array_has(self, item: Any) -> Condition:
        if not self.sqlite:
            contained: Condition = self.raw.op("@>")(literal([item], JSONB))
            return contained
        # json_each(doc, path), not json_each(json_extract(…)): the extracted text of a
        # string is not JSON, and SQLite evaluates both sides of the AND below.
        element = func.json_each(self._doc, self._location).table_valued("value", "type")
        kinds = (
            ("true",) if item is True else ("false",) if item is False
            else self._types["string"] if isinstance(item, str) else self._types["number"]
        )  # fmt: skip
        match: Condition = element.c.type.in_(kinds)
        if not isinstance(item, bool):
            match = and_(match, element.c.value == literal(item))
        return and_(self.is_("array"), exists(select(1).select_from(element).where(match)))
