"""The CSV reader's two passes: `check` cuts the file into spans of whole records, and
each span, read on its own, gives exactly the rows and line numbers of the whole file."""

from __future__ import annotations

import io

import pytest

from postillon.errors import InvalidInput
from postillon.imports.reader import CsvRow, CsvSource, span_rows

BOM = "\ufeff"

# Line numbers as a user's editor shows them: line 1 is the header.
LINES = [
    f"{BOM}email,notes",  # 1
    "ann@example.com,plain",  # 2
    'bob@example.com,"two',  # 3  (a record over lines 3-4)
    'lines"',  # 4
    "",  # 5  blank: no row
    'cy@example.com,"a ""quoted"", word"',  # 6
    'dee@example.com,"three',  # 7  (a record over lines 7-9)
    "",  # 8  inside the quotes: part of the value
    'lines"',  # 9
    "eve@example.com,Jürgen",  # 10
    ",",  # 11 only empty values: no row
    "fay@example.com,last",  # 12
    "",  # 13 trailing blank lines belong to the last span
    "",  # 14
]


def source(lines: list[str], newline: str = "\n") -> CsvSource:
    return CsvSource(io.BytesIO(newline.join(lines).encode()), name="people.csv")


def rows_of(src: CsvSource, rows_per_span: int) -> list[CsvRow]:
    layout = src.check(rows_per_span=rows_per_span)
    return [row for span in layout.spans for row in span_rows(src.read(span), span, src.delimiter)]


EXPECTED = [
    CsvRow(2, ["ann@example.com", "plain"]),
    CsvRow(3, ["bob@example.com", "two\nlines"]),
    CsvRow(6, ["cy@example.com", 'a "quoted", word']),
    CsvRow(7, ["dee@example.com", "three\n\nlines"]),
    CsvRow(10, ["eve@example.com", "Jürgen"]),
    CsvRow(12, ["fay@example.com", "last"]),
]


@pytest.mark.parametrize("rows_per_span", [1, 2, 4, 6, 100])
def test_spans_of_any_size_give_the_rows_of_the_whole_file_with_their_lines(
    rows_per_span: int,
) -> None:
    src = source(LINES)

    layout = src.check(rows_per_span=rows_per_span)

    assert layout.rows == len(EXPECTED)
    assert [span.rows for span in layout.spans] == [
        min(rows_per_span, len(EXPECTED) - start)
        for start in range(0, len(EXPECTED), rows_per_span)
    ]
    # The spans follow each other through the file, to its end; what lies between two
    # spans is only blank records.
    content = "\n".join(LINES).encode()
    assert layout.spans[-1].end == len(content)
    for before, after in zip(layout.spans, layout.spans[1:], strict=False):
        assert before.end <= after.start
        assert content[before.end : after.start].strip(b",\n") == b""
    assert rows_of(src, rows_per_span) == EXPECTED


def test_windows_line_endings_keep_lines_and_values() -> None:
    src = source(LINES, newline="\r\n")
    rows = rows_of(src, 2)
    # csv keeps the line break inside a quoted value as written.
    expected_values = [[v.replace("\n", "\r\n") for v in row.values] for row in EXPECTED]
    assert [row.line for row in rows] == [row.line for row in EXPECTED]
    assert [row.values for row in rows] == expected_values


def test_a_span_starts_at_a_record_not_inside_a_quoted_value() -> None:
    src = source(LINES)
    layout = src.check(rows_per_span=1)
    starts = [src.read(span).split(b"\n", 1)[0].decode() for span in layout.spans]
    assert starts == [
        "ann@example.com,plain",
        'bob@example.com,"two',
        'cy@example.com,"a ""quoted"", word"',
        'dee@example.com,"three',
        "eve@example.com,Jürgen",
        "fay@example.com,last",  # the row of empty values before it is in no span
    ]
    assert [span.line for span in layout.spans] == [2, 3, 6, 7, 10, 12]


def test_a_header_only_file_has_no_spans() -> None:
    layout = source(["email,first_name", "", ""]).check(rows_per_span=10)
    assert (layout.rows, layout.spans) == (0, [])


@pytest.mark.parametrize(
    ("tail", "where"),
    [
        (['eve@example.com,"never closed'], "line 3"),
        (["ok@example.com,x", "bad@example.com,\udcfc"], "line 4"),
    ],
)
def test_a_damaged_record_is_refused_by_the_check_naming_its_line(
    tail: list[str], where: str
) -> None:
    content = "\n".join(["email,notes", "ann@example.com,a", *tail]).encode(
        "utf-8", "surrogateescape"
    )
    src = CsvSource(io.BytesIO(content), name="people.csv")
    with pytest.raises(InvalidInput) as raised:
        src.check(rows_per_span=1)
    assert where in str(raised.value)
