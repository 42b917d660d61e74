"""`postillon templates`: save templates from files, list them, preview one."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import typer
from pydantic import ValidationError
from rich.table import Table

from postillon.cli.common import cli_runtime, console
from postillon.errors import FieldProblem, InvalidInput
from postillon.filters.documents import load_yaml, node_lines
from postillon.templates.schemas import PreviewIn, TemplateIn

app = typer.Typer(help="Email templates.", no_args_is_help=True)

_LINE = re.compile(r"^line (\d+): ")


@app.command("save")
def save(
    file: Path = typer.Argument(..., help="YAML or JSON: key, subject, body or body_file …"),
) -> None:
    """Create or replace a template from a file; errors name the file and line."""
    text = _read(file, str(file))
    document = load_yaml(text, source=str(file))
    if not isinstance(document, dict):
        raise InvalidInput.at(str(file), "must be a mapping of key, subject, body …")
    body_file = document.pop("body_file", None)
    if body_file is not None:
        body_path = file.parent / str(body_file)
        document["body"] = _read(body_path, f"{file} body_file")
    try:
        data = TemplateIn.model_validate(document)
    except ValidationError as error:
        raise InvalidInput.of(
            [
                FieldProblem(f"{file} {'.'.join(map(str, e['loc']))}", e["msg"])
                for e in error.errors()
            ]
        ) from None
    lines = node_lines(text)
    with cli_runtime() as runtime:
        try:
            with runtime.database.transaction() as session:
                saved, created = runtime.templates.save(session, data)
        except InvalidInput as error:
            raise InvalidInput.of(
                [_in_file(problem, file, lines, body_file) for problem in error.problems]
            ) from None
    action = "created" if created else "saved"
    console.print(f"{action} template {saved.key!r} (version {saved.version})")


@app.command("list")
def list_templates() -> None:
    with cli_runtime() as runtime, runtime.database.transaction(read_only=True) as session:
        table = Table("key", "name", "format", "kind", "version", "subject")
        for template in runtime.templates.list_templates(session):
            table.add_row(
                template.key, template.name, template.format, template.kind,
                str(template.version), template.subject,
            )  # fmt: skip
        console.print(table)


@app.command("preview")
def preview(
    key: str,
    email: str = typer.Option(..., "--email", help="the contact to render it for"),
    context: str = typer.Option("{}", "--context", help="the event's properties, as JSON"),
    html: bool = typer.Option(False, "--html", help="print the HTML instead of the text"),
) -> None:
    """Render a template for a contact: subject, preheader and the text (or HTML) part."""
    try:
        event: Any = json.loads(context)
    except json.JSONDecodeError as error:
        raise InvalidInput.at("--context", f"not JSON: {error}") from None
    if not isinstance(event, dict):
        raise InvalidInput.at("--context", "must be a JSON object")
    with cli_runtime() as runtime, runtime.database.transaction(read_only=True) as session:
        shown = runtime.templates.preview(session, key, PreviewIn(email=email, context=event))
    console.print(f"Subject: {shown.subject}", markup=False, highlight=False)
    console.print(f"Preheader: {shown.preheader}\n", markup=False, highlight=False)
    console.print(shown.html if html else shown.text, markup=False, highlight=False)


def _read(path: Path, where: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise InvalidInput.at(where, f"cannot be read ({error})") from None


def _in_file(
    problem: FieldProblem, file: Path, lines: dict[str, int], body_file: Any
) -> FieldProblem:
    """A template problem located in the file: `cart.yaml line 14: body line 3: …`."""
    if problem.location == "body" and body_file is not None:
        return FieldProblem(str(file.parent / str(body_file)), problem.message)
    found = _LINE.match(problem.message)
    start = lines.get(problem.location)
    if found and start is not None:
        # A block scalar (`body: |`) starts on the line after its key.
        line = start + int(found.group(1))
        rest = problem.message[found.end() :]
        return FieldProblem(f"{file} line {line}", f"{problem.location}: {rest}")
    return FieldProblem(f"{file} {problem.location}", problem.message)
