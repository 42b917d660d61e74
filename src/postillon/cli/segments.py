"""`postillon segments`: define segments from YAML or JSON files, preview, refresh, export."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.table import Table

from postillon.cli.common import cli_runtime, console, document_lines, read_document
from postillon.errors import InvalidInput
from postillon.segments.exports import AUDIENCE_PLATFORMS
from postillon.segments.schemas import SegmentIn, SegmentPatch

app = typer.Typer(help="Segments: who matches a filter, kept current.", no_args_is_help=True)

FILE_HELP = "a YAML or JSON file: key, name, description, filter"


@app.command("list")
def list_segments() -> None:
    """Segments with their member counts."""
    with cli_runtime() as runtime, runtime.database.transaction(read_only=True) as session:
        segments = runtime.segments.list_segments(session)
    table = Table("key", "name", "members", "refreshed")
    for segment in segments:
        refreshed = (
            segment.refreshed_at.isoformat(timespec="seconds") if segment.refreshed_at else "never"
        )
        table.add_row(segment.key, segment.name, str(segment.member_count), refreshed)
    console.print(table)


@app.command("save")
def save(path: Path = typer.Argument(..., help=FILE_HELP)) -> None:
    """Create the segment the file defines, or change it if its key exists (members are
    recomputed)."""
    with cli_runtime() as runtime:
        document, text = read_document(path)
        with runtime.database.transaction() as session, document_lines(path, text):
            if not isinstance(document, dict):
                raise InvalidInput.at(str(path), "must hold a mapping with key, name and filter")
            data = SegmentIn.model_validate(document)
            existing = {s.key for s in runtime.segments.list_segments(session)}
            if data.key in existing:
                patch = SegmentPatch(
                    name=data.name, description=data.description, filter=data.filter
                )
                saved = runtime.segments.update(session, data.key, patch)
                verb = "changed"
            else:
                saved = runtime.segments.create(session, data)
                verb = "created"
    console.print(f"segment {saved.key} {verb}: {saved.member_count} member(s)")


@app.command("preview")
def preview(
    path: Path = typer.Argument(..., help="a file holding a filter, or a segment definition"),
    sample: int = typer.Option(10, min=0, max=100, help="how many matching contacts to show"),
) -> None:
    """How many contacts a filter matches now, without saving anything."""
    with cli_runtime() as runtime:
        document, text = read_document(path)
        root = "filter"  # the file holds a filter: `filter.all[0]` is `all[0]` in it
        if isinstance(document, dict) and "filter" in document and "key" in document:
            document, root = document["filter"], ""
        with (
            runtime.database.transaction(read_only=True) as session,
            document_lines(path, text, root),
        ):
            if not isinstance(document, dict):
                raise InvalidInput.at(str(path), "must hold a filter (a mapping)")
            result = runtime.segments.preview(session, document, sample)
    console.print(f"{result.count} contact(s) match")
    for contact in result.sample:
        name = " ".join(p for p in (contact.first_name, contact.last_name) if p)
        console.print(f"  {contact.email or contact.external_id or contact.id}  {name}")


@app.command("refresh")
def refresh(key: str = typer.Argument(..., help="the segment's key")) -> None:
    """Recompute a segment's members now."""
    with cli_runtime() as runtime, runtime.database.transaction() as session:
        result = runtime.segments.refresh(session, key)
    console.print(
        f"segment {key}: {result.entered} entered, {result.exited} left, "
        f"{result.member_count} member(s)"
    )


@app.command("export")
def export(
    key: str = typer.Argument(..., help="the segment's key"),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="file to write (default: standard output)"
    ),
    audience: str | None = typer.Option(
        None, help=f"a hashed custom audience for {' or '.join(AUDIENCE_PLATFORMS)} instead"
    ),
) -> None:
    """The members as CSV, or as a custom audience (SHA-256 of email and phone)."""
    with cli_runtime() as runtime, runtime.database.transaction(read_only=True) as session:
        if audience is None:
            chunks = runtime.segments.export_csv(session, key)
        else:
            chunks = runtime.segments.audience_csv(session, key, audience)
        target = output.open("w", encoding="utf-8", newline="") if output else sys.stdout
        try:
            for chunk in chunks:
                target.write(chunk)
        finally:
            if output:
                target.close()


@app.command("delete")
def delete(key: str = typer.Argument(..., help="the segment's key")) -> None:
    """Delete a segment and its membership history."""
    with cli_runtime() as runtime, runtime.database.transaction() as session:
        runtime.segments.delete(session, key)
    console.print(f"segment {key} deleted")
