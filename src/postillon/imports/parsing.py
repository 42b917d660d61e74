"""Turning spans of a CSV file into checked contact changes. Pure and picklable, so that
a large import can parse its next spans in a second process while this one writes the
last: the second process gets a span's raw bytes and does all the reading and parsing."""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context

from postillon.contacts.changes import ContactChanges
from postillon.contacts.fields import Channel, ConsentStatus, FieldError, normalise_phone
from postillon.imports.mapping import ColumnTarget
from postillon.imports.reader import CsvRow, CsvSource, CsvSpan, span_rows

# Below this many rows a second process costs more to start than it saves.
PARALLEL_FROM_ROWS = 20_000


@dataclass(frozen=True)
class ColumnLocator:
    """Names the column a problem comes from (a class, not a lambda, so it pickles)."""

    headers: dict[str, str]

    def __call__(self, name: str) -> str:
        return self.headers.get(name, name)


@dataclass(frozen=True)
class ParsedSpan:
    """The rows of a span: the line each starts on, and its checked changes."""

    lines: list[int]
    changes: list[ContactChanges]


@dataclass(frozen=True)
class RowParser:
    delimiter: str
    columns: tuple[ColumnTarget, ...]
    tags: tuple[str, ...]
    email_consent: ConsentStatus | None
    phone_region: str | None

    @property
    def locate(self) -> ColumnLocator:
        return ColumnLocator(
            {c.field or f"attributes.{c.attribute}": c.header for c in self.columns}
        )

    def parse_span(self, data: bytes, span: CsvSpan) -> ParsedSpan:
        locate = self.locate
        lines: list[int] = []
        changes: list[ContactChanges] = []
        for row in span_rows(data, span, self.delimiter):
            lines.append(row.line)
            changes.append(self.parse(row, locate))
        return ParsedSpan(lines, changes)

    def parse(self, row: CsvRow, locate: ColumnLocator) -> ContactChanges:
        changes = ContactChanges(attributes_from_text=True, where=locate)
        if len(row.values) > len(self.columns):
            changes.problem("row", f"has {len(row.values)} values for {len(self.columns)} columns")
            return changes
        for column, raw in zip(self.columns, row.values, strict=False):
            value = raw.strip()
            if not value or column.skipped:
                continue
            if column.attribute is not None:
                changes.set_attribute(column.attribute, value)
                if column.attribute_type is not None:
                    changes.declared_types[column.attribute] = column.attribute_type
            elif column.field == "tags":
                for tag in value.split(","):
                    if tag.strip():
                        changes.add_tag(tag)
            elif column.field == "lifecycle_stage":
                changes.set_lifecycle_stage(value)
            elif column.field == "owner":
                changes.set_owner(value)
            elif column.field == "phone" and self.phone_region:
                try:
                    changes.values["phone"] = normalise_phone(
                        value, default_region=self.phone_region
                    )
                except FieldError as exc:
                    changes.problem("phone", str(exc))
            else:
                assert column.field is not None
                changes.set_value(column.field, value)
        for tag in self.tags:
            changes.add_tag(tag)
        if self.email_consent is not None and changes.values.get("email"):
            changes.default_consent[Channel.email.value] = (self.email_consent.value, "import")
        return changes


def parsed_spans(
    parser: RowParser, source: CsvSource, spans: Sequence[CsvSpan], *, parallel: bool
) -> Iterator[tuple[CsvSpan, ParsedSpan]]:
    """Each span with its parsed rows. In parallel, a second process parses up to two
    spans ahead while the caller writes; the order of spans is kept."""
    if not parallel or (os.cpu_count() or 1) < 2:
        for span in spans:
            yield span, parser.parse_span(source.read(span), span)
        return
    # forkserver: the child starts clean, not as a copy of a process with threads and
    # open database connections.
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("forkserver")) as pool:
        pending: deque[tuple[CsvSpan, Future[ParsedSpan]]] = deque()
        for span in spans:
            pending.append((span, pool.submit(parser.parse_span, source.read(span), span)))
            if len(pending) > 2:
                done, future = pending.popleft()
                yield done, future.result()
        while pending:
            done, future = pending.popleft()
            yield done, future.result()
