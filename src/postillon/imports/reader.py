"""Streaming CSV rows from a file of any size, with their line numbers.

The file is read twice: `check()` decodes and parses all of it first, so a file damaged
anywhere (not UTF-8, an unclosed quote) is refused before anything is written, with the
line that is wrong; `rows()` then streams it. Both read line by line in constant memory.
"""

from __future__ import annotations

import codecs
import csv
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from postillon.errors import InvalidInput

_DELIMITERS = ",;\t|"
_MAX_FIELD = 100_000
_NUL = "contains a NUL character (is it a UTF-16 file? save it as UTF-8)"


@dataclass(frozen=True)
class CsvRow:
    line: int
    values: list[str]


class CsvSource:
    """A CSV file with a header line; `bytes_read` tells how far `rows()` has come."""

    def __init__(self, stream: BinaryIO, *, name: str) -> None:
        if not stream.seekable():
            raise ValueError("a CSV source must be seekable (a file, or a spooled upload)")
        self.name = name
        self._raw = stream
        self._raw.seek(0)
        first = self._raw.readline().removeprefix(codecs.BOM_UTF8)
        try:
            header_line = first.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidInput.at("line 1", _not_utf8(exc)) from None
        if not header_line.strip():
            raise InvalidInput.at("file", "the file is empty; its first line must be a header")
        if "\r" in header_line.rstrip("\r\n"):
            raise InvalidInput.at(
                "line 1",
                "lines end with a bare carriage return (the old Mac format); "
                "save the file as 'CSV UTF-8' with Windows or Unix line endings",
            )
        if "\x00" in header_line:
            raise InvalidInput.at("line 1", _NUL)
        self.delimiter = _sniff_delimiter(header_line)
        self.headers = [
            h.strip() for h in next(csv.reader([header_line], delimiter=self.delimiter))
        ]

    @property
    def bytes_read(self) -> int:
        return self._raw.tell()

    def check(self) -> int:
        """Read the whole file once; return how many rows it has, or raise naming the line."""
        return sum(1 for _ in self.rows())

    def rows(self) -> Iterator[CsvRow]:
        """The data rows after the header, each with the line it starts on."""
        csv.field_size_limit(_MAX_FIELD)
        self._raw.seek(0)
        lines = _decoded_lines(self._raw)
        reader = csv.reader(lines, delimiter=self.delimiter, strict=True)
        try:
            next(reader)  # the header, read in __init__
        except StopIteration:
            return
        consumed = reader.line_num
        while True:
            start = consumed + 1
            try:
                values = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                raise InvalidInput.at(f"line {start}", f"not valid CSV: {exc}") from None
            consumed = reader.line_num
            if values and any(v.strip() for v in values):
                yield CsvRow(line=start, values=values)


def _decoded_lines(raw: BinaryIO) -> Iterator[str]:
    for number, line in enumerate(raw, start=1):
        if number == 1:
            line = line.removeprefix(codecs.BOM_UTF8)
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidInput.at(f"line {number}", _not_utf8(exc)) from None
        if "\x00" in text:
            raise InvalidInput.at(f"line {number}", _NUL)
        yield text


def _not_utf8(exc: UnicodeDecodeError) -> str:
    return f"not UTF-8 text (byte {exc.object[exc.start]:#04x}); save the file as UTF-8"


def _sniff_delimiter(header_line: str) -> str:
    """The delimiter that splits the header into the most columns (Excel in many
    locales writes `;`)."""
    counts = {d: len(next(csv.reader([header_line], delimiter=d))) for d in _DELIMITERS}
    best = max(counts, key=lambda d: (counts[d], d == ","))
    return best if counts[best] > 1 else ","
