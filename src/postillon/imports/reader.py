"""Streaming CSV rows from a file of any size, with their line numbers.

The file is read twice. `check()` decodes and parses all of it first, so a file damaged
anywhere (not UTF-8, an unclosed quote) is refused before anything is written, with the
line that is wrong; on the way it cuts the file into spans of whole records (`CsvSpan`:
a byte range and the line it starts on). The import then reads one span at a time and
`span_rows` parses it, in this process or in a second one: what crosses between them is
a span's raw bytes, not parsed rows. Both passes read line by line in constant memory.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from typing import BinaryIO

from postillon.errors import InvalidInput

_DELIMITERS = ",;\t|"
_MAX_FIELD = 100_000
_NUL = "contains a NUL character (is it a UTF-16 file? save it as UTF-8)"


@dataclass(frozen=True)
class CsvRow:
    line: int
    values: list[str]


@dataclass(frozen=True)
class CsvSpan:
    """Whole records of a file: the bytes from `start` to `end`, whose first line is line
    `line` of the file, holding `rows` data rows (blank ones not counted)."""

    start: int
    end: int
    line: int
    rows: int


@dataclass(frozen=True)
class CsvLayout:
    spans: list[CsvSpan]  # one per `rows_per_span` rows: a few hundred for a million rows

    @property
    def rows(self) -> int:
        return sum(span.rows for span in self.spans)


class CsvSource:
    """A CSV file with a header line."""

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

    def check(self, *, rows_per_span: int) -> CsvLayout:
        """Read the whole file once and cut it into spans of `rows_per_span` rows (the
        last may hold fewer, and runs to the end of the file); raise naming the line if
        the file cannot be read."""
        self._raw.seek(0)
        lines = _Lines(self._raw, first_line=1)
        spans: list[CsvSpan] = []
        start, first_line, count = 0, 0, 0
        for row, row_start in _records(lines, self.delimiter, header=True):
            if count == 0:
                start, first_line = row_start, row.line
            count += 1
            if count == rows_per_span:
                spans.append(CsvSpan(start, lines.position, first_line, count))
                count = 0
        if count:
            spans.append(CsvSpan(start, lines.position, first_line, count))
        elif spans:  # trailing blank lines go with the last span
            spans[-1] = replace(spans[-1], end=lines.position)
        return CsvLayout(spans)

    def read(self, span: CsvSpan) -> bytes:
        self._raw.seek(span.start)
        return self._raw.read(span.end - span.start)


def span_rows(data: bytes, span: CsvSpan, delimiter: str) -> Iterator[CsvRow]:
    """The data rows of a span read by `CsvSource.read`, numbered as lines of the file."""
    lines = _Lines(io.BytesIO(data), first_line=span.line)
    return (row for row, _ in _records(lines, delimiter, header=False))


class _Lines:
    """Decoded lines, numbered from `first_line`, counting the bytes handed out."""

    def __init__(self, raw: Iterable[bytes], *, first_line: int) -> None:
        self.raw = raw
        self.first_line = first_line
        self.position = 0  # bytes of the lines handed out so far

    def __iter__(self) -> Iterator[str]:
        for number, line in enumerate(self.raw, start=self.first_line):
            self.position += len(line)
            if number == 1:
                line = line.removeprefix(codecs.BOM_UTF8)
            try:
                text = line.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise InvalidInput.at(f"line {number}", _not_utf8(exc)) from None
            if "\x00" in text:
                raise InvalidInput.at(f"line {number}", _NUL)
            yield text


def _records(lines: _Lines, delimiter: str, *, header: bool) -> Iterator[tuple[CsvRow, int]]:
    """Each non-blank record with the byte offset where it starts. The csv reader takes
    exactly a record's lines for each record (it never reads ahead), so `lines.position`
    is where the next one starts."""
    csv.field_size_limit(_MAX_FIELD)
    reader = csv.reader(lines, delimiter=delimiter, strict=True)
    if header:
        try:
            next(reader)  # the header, read in __init__
        except StopIteration:
            return
    consumed = reader.line_num
    while True:
        start_line, start_byte = lines.first_line + consumed, lines.position
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise InvalidInput.at(f"line {start_line}", f"not valid CSV: {exc}") from None
        consumed = reader.line_num
        if values and any(v.strip() for v in values):
            yield CsvRow(line=start_line, values=values), start_byte


def _not_utf8(exc: UnicodeDecodeError) -> str:
    return f"not UTF-8 text (byte {exc.object[exc.start]:#04x}); save the file as UTF-8"


def _sniff_delimiter(header_line: str) -> str:
    """The delimiter that splits the header into the most columns (Excel in many
    locales writes `;`)."""
    counts = {d: len(next(csv.reader([header_line], delimiter=d))) for d in _DELIMITERS}
    best = max(counts, key=lambda d: (counts[d], d == ","))
    return best if counts[best] > 1 else ","
