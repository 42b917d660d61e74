"""Streaming CSV rows from a file of any size, with their line numbers."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from postillon.errors import InvalidInput

_DELIMITERS = ",;\t|"
_MAX_FIELD = 100_000


@dataclass(frozen=True)
class CsvRow:
    line: int
    values: list[str]


class CsvSource:
    """Reads a CSV file once, front to back; `bytes_read` tells how far it has come."""

    def __init__(self, stream: BinaryIO, *, name: str) -> None:
        self.name = name
        self._raw = stream
        self._text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="", errors="strict")
        try:
            first_line = self._text.readline()
        except UnicodeDecodeError as exc:
            raise InvalidInput.at("file", f"line 1 is not UTF-8 text ({exc.reason})") from None
        if not first_line.strip():
            raise InvalidInput.at("file", "the file is empty; its first line must be a header")
        self.delimiter = _sniff_delimiter(first_line)
        self.headers = next(csv.reader([first_line], delimiter=self.delimiter))
        self.headers = [h.strip() for h in self.headers]

    @property
    def bytes_read(self) -> int:
        try:
            return self._raw.tell()
        except (OSError, ValueError):
            return 0

    def rows(self) -> Iterator[CsvRow]:
        csv.field_size_limit(_MAX_FIELD)
        reader = csv.reader(self._text, delimiter=self.delimiter, strict=True)
        line = 1
        while True:
            start = line + 1
            try:
                values = next(reader)
            except StopIteration:
                return
            except UnicodeDecodeError as exc:
                raise InvalidInput.at(
                    f"line {start}", f"not UTF-8 text ({exc.reason}); save the file as UTF-8"
                ) from None
            except csv.Error as exc:
                raise InvalidInput.at(f"line {start}", f"not valid CSV: {exc}") from None
            line = reader.line_num + 1
            if values and any(v.strip() for v in values):
                yield CsvRow(line=start, values=values)


def _sniff_delimiter(header_line: str) -> str:
    """The delimiter that splits the header into the most columns (Excel in many
    locales writes `;`)."""
    counts = {d: len(next(csv.reader([header_line], delimiter=d))) for d in _DELIMITERS}
    best = max(counts, key=lambda d: (counts[d], d == ","))
    return best if counts[best] > 1 else ","
