"""What every command shares: building the runtime and reporting errors plainly."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer
from pydantic import ValidationError
from rich.console import Console

from postillon.errors import FieldProblem, InvalidInput, PostillonError
from postillon.filters.documents import load_yaml, with_lines
from postillon.kit import migrate
from postillon.runtime import Runtime
from postillon.settings import load_settings

# soft_wrap: messages are not folded at 80 columns when output goes to a pipe or a file.
console = Console(highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)


@contextlib.contextmanager
def cli_runtime(*, require_schema: bool = True, **overrides: object) -> Iterator[Runtime]:
    """A runtime for one command; domain errors end the command with their message."""
    runtime: Runtime | None = None
    try:
        runtime = Runtime.build(load_settings(**overrides))
        if require_schema:
            _check_schema(runtime)
        yield runtime
    except PostillonError as error:
        err_console.print(f"[red]error:[/red] {error.message}")
        raise typer.Exit(code=2) from None
    except ValueError as error:  # settings that do not validate
        err_console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(code=2) from None
    finally:
        if runtime is not None:
            runtime.close()


def _check_schema(runtime: Runtime) -> None:
    current = migrate.current_revision(runtime.database)
    head = migrate.head_revision(runtime.database)
    if current != head:
        err_console.print(
            f"[red]error:[/red] the database schema is at {current or 'nothing'}, "
            f"this Postillon needs {head}: run `postillon db upgrade`"
        )
        raise typer.Exit(code=2)


def configure_logging(level: str = "INFO") -> None:
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True
    )


def read_document(path: Path) -> tuple[Any, str]:
    """A YAML (or JSON, which is YAML) document and its text; errors name the line."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise InvalidInput.at(str(path), f"cannot be read: {error}") from None
    return load_yaml(text, source=str(path)), text


@contextlib.contextmanager
def document_lines(path: Path, text: str, root: str = "") -> Iterator[None]:
    """Problems found in the document are reported with their line in the file."""
    try:
        yield
    except ValidationError as error:
        problems = [
            FieldProblem(".".join(str(part) for part in e["loc"]), e["msg"]) for e in error.errors()
        ]
        raise with_lines(InvalidInput.of(problems), text, source=str(path)) from None
    except InvalidInput as error:
        raise with_lines(error, text, source=str(path), root=root) from None
