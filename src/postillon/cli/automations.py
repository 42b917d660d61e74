"""`postillon journeys …` and `postillon rules …`: documents from YAML or JSON files,
checked, published, paused, resumed, archived, listed; `postillon explain CONTACT`.

Both groups have the same commands; a file says what it holds (`kind: journey` or
`kind: rule`), so either group validates and publishes both, and `list` lists the
group's kind. Problems are printed one a line as `FILE line N: path: message`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import typer
import yaml
from rich.table import Table
from rich.text import Text

from postillon.automations.schemas import AutomationSummary, HistoryEntryOut
from postillon.cli.common import cli_runtime, console
from postillon.errors import Conflict, FieldProblem, InvalidInput
from postillon.runtime import Runtime

FILES_HELP = "YAML or JSON files, one rule or journey each"


def make_app(kind: str) -> typer.Typer:
    """The command group of `journeys` or `rules`."""
    plural = f"{kind}s"
    app = typer.Typer(
        help=f"{plural.capitalize()}: documents checked on save, published as versions.",
        no_args_is_help=True,
    )

    @app.command("validate")
    def validate(files: list[Path] = typer.Argument(..., help=FILES_HELP)) -> None:
        """Check files without saving anything; exit 1 if any has a problem."""
        problems: list[str] = []
        with cli_runtime() as runtime:
            documents = _read_all(files)
            also = _journey_keys(documents)
            with runtime.database.transaction(read_only=True) as session:
                for path, text in documents:
                    if text is None:
                        continue
                    try:
                        valid = runtime.automations.validate(
                            session, text, source_name=str(path), also_journeys=also
                        )
                    except (InvalidInput, Conflict) as error:
                        problems += _lines(path, error)
                    else:
                        console.print(f"{path}: {valid.kind} {valid.key} is valid", markup=False)
        _fail_on(documents, problems)

    @app.command("publish")
    def publish(
        files: list[Path] = typer.Argument(..., help=FILES_HELP),
        migrate: bool = typer.Option(
            False,
            "--migrate",
            help="move active and waiting runs of older versions to the new one "
            "(where their current step still exists)",
        ),
    ) -> None:
        """Save each file as its automation's draft and publish it: all or none."""
        with cli_runtime() as runtime:
            documents = _read_all(files)
            problems: list[str] = []
            _fail_on(documents, problems)
            also = _journey_keys(documents)
            with runtime.database.transaction() as session:
                keys: list[str] = []
                for path, text in documents:
                    assert text is not None
                    try:
                        saved, _ = runtime.automations.save(
                            session, text, source_name=str(path), also_journeys=also
                        )
                    except (InvalidInput, Conflict) as error:
                        problems += _lines(path, error)
                    else:
                        keys.append(saved.key)
                # Raised inside the transaction: nothing is saved unless everything is.
                _fail_on(documents, problems)
                published = [runtime.automations.publish(session, k, migrate=migrate) for k in keys]
        for result in published:
            console.print(result.message, markup=False)

    @app.command("pause")
    def pause(key: str = typer.Argument(..., help=f"the {kind}'s key")) -> None:
        """Hold a journey's runs where they are / stop a rule firing."""
        with cli_runtime() as runtime, runtime.database.transaction() as session:
            result = runtime.automations.pause(session, key)
        console.print(f"{result.kind} {key} is {result.status}", markup=False)

    @app.command("resume")
    def resume(key: str = typer.Argument(..., help=f"the {kind}'s key")) -> None:
        """Active again: held runs go on."""
        with cli_runtime() as runtime, runtime.database.transaction() as session:
            result = runtime.automations.resume(session, key)
        console.print(f"{result.kind} {key} is {result.status}", markup=False)

    @app.command("archive")
    def archive(
        key: str = typer.Argument(..., help=f"the {kind}'s key"),
        force: bool = typer.Option(False, "--force", help="end runs still in the journey"),
    ) -> None:
        """Retire it; a journey with runs in it needs --force (they end as exited)."""
        with cli_runtime() as runtime, runtime.database.transaction() as session:
            result = runtime.automations.archive(session, key, force=force)
        console.print(result.message, markup=False)

    @app.command(
        "list", help=f"The {plural} with their status, published version and runs in progress."
    )
    def list_them(
        status: str | None = typer.Option(
            None, help="only those with this status: draft, active, paused or archived"
        ),
    ) -> None:
        with cli_runtime() as runtime, runtime.database.transaction(read_only=True) as session:
            items = _all(runtime, session, kind=kind, status=status)
        table = Table("key", "kind", "name", "status", "version", "active runs")
        for item in items:
            table.add_row(
                *(
                    Text(value)
                    for value in (
                        item.key,
                        item.kind,
                        item.name,
                        item.status,
                        str(item.published_version or "-"),
                        "-" if item.active_runs is None else str(item.active_runs),
                    )
                )
            )
        console.print(table)

    return app


journeys_app = make_app("journey")
rules_app = make_app("rule")


def explain(
    contact: str = typer.Argument(..., help="the contact's id or email address"),
    limit: int = typer.Option(100, min=1, max=1000, help="at most this many journey runs"),
) -> None:
    """What journeys and rules did to a contact, step by step, and why."""
    with cli_runtime() as runtime, runtime.database.transaction(read_only=True) as session:
        contact_id = runtime.automations.contact_id_for(session, contact)
        explained = runtime.automations.explain(session, contact_id, limit=limit)
    named = contact if contact == str(contact_id) else f"{contact} ({contact_id})"
    console.print(f"Contact {named}; times in UTC", markup=False)
    if not (explained.runs or explained.journey_decisions or explained.rule_history):
        console.print("No journey or rule has done anything for this contact yet.")
        return
    for run in explained.runs:
        console.print()
        ended = (
            f", ended {_time(run.ended_at)}: {run.end_reason or run.state}"
            if run.ended_at
            else f", now at step {run.step_id or '-'}"
            + (f" (until {_time(run.due_at)})" if run.due_at else "")
        )
        console.print(
            Text.assemble(
                ("Journey ", "bold"),
                (run.journey, "bold cyan"),
                f" ({run.journey_name}), version {run.version}: ",
                (run.state, "bold"),
            )
        )
        console.print(f"  entered {_time(run.entered_at)} by {run.source}{ended}", markup=False)
        console.print(_entries(run.history, with_automation=False))
    if explained.journey_decisions:
        console.print()
        console.print(Text("Journeys not entered", style="bold"))
        console.print(_entries(explained.journey_decisions, with_automation=True))
    if explained.rule_history:
        console.print()
        console.print(Text("Rules", style="bold"))
        console.print(_entries(explained.rule_history, with_automation=True, with_step=False))


def _entries(
    entries: Sequence[HistoryEntryOut], *, with_automation: bool, with_step: bool = True
) -> Table:
    columns = [
        "time",
        *(("automation",) if with_automation else ()),
        *(("step",) if with_step else ()),
        "outcome",
        "reason",
    ]
    table = Table(*columns, box=None, padding=(0, 2, 0, 2))
    for entry in entries:
        table.add_row(
            *(
                Text(value)
                for value in (
                    _time(entry.at),
                    *((entry.automation,) if with_automation else ()),
                    *((entry.step_id or "",) if with_step else ()),
                    entry.outcome,
                    entry.reason,
                )
            )
        )
    return table


def _time(moment: Any) -> str:
    return str(moment.strftime("%Y-%m-%d %H:%M:%S"))


def _all(
    runtime: Runtime, session: Any, *, kind: str, status: str | None
) -> list[AutomationSummary]:
    if status is not None and status not in ("draft", "active", "paused", "archived"):
        raise InvalidInput.at("--status", "must be draft, active, paused or archived")
    items: list[AutomationSummary] = []
    cursor = None
    while True:
        page = runtime.automations.list_automations(
            session, kind=kind, status=status, cursor=cursor, limit=500
        )
        items += page.items
        if page.next_cursor is None:
            return items
        cursor = page.next_cursor


def _read_all(files: Sequence[Path]) -> list[tuple[Path, str | None]]:
    """Each file's text, or None (with its problem printed) if it cannot be read."""
    documents: list[tuple[Path, str | None]] = []
    for path in files:
        try:
            documents.append((path, path.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError) as error:
            console.print(f"{path}: cannot be read: {error}", markup=False)
            documents.append((path, None))
    return documents


def _journey_keys(documents: Sequence[tuple[Path, str | None]]) -> set[str]:
    """The keys of the journeys among the files (they may name each other)."""
    keys: set[str] = set()
    for _, text in documents:
        try:
            doc = yaml.safe_load(text) if text is not None else None
        except (yaml.YAMLError, RecursionError):
            continue
        if (
            isinstance(doc, dict)
            and doc.get("kind") == "journey"
            and isinstance(doc.get("key"), str)
        ):
            keys.add(doc["key"])
    return keys


def _lines(path: Path, error: InvalidInput | Conflict) -> list[str]:
    if isinstance(error, Conflict) or not error.problems:
        return [f"{path}: {error.message}"]
    return [_line(path, problem) for problem in error.problems]


def _line(path: Path, problem: FieldProblem) -> str:
    location = problem.location
    if not location.startswith(str(path)):
        location = f"{path}: {location}"
    return f"{location}: {problem.message}"


def _fail_on(documents: Sequence[tuple[Path, str | None]], problems: Sequence[str]) -> None:
    """Print the problems and exit 1 if there are any (or a file could not be read)."""
    for line in problems:
        console.print(line, markup=False)
    if problems or any(text is None for _, text in documents):
        raise typer.Exit(code=1)
