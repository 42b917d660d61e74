"""`postillon rules run`: a rule run by hand (the other `rules` commands are in
`cli/automations.py`)."""

from __future__ import annotations

import uuid

import typer

from postillon.automations.manual import Audience, run_rule
from postillon.cli.common import cli_runtime, console


def run(
    key: str = typer.Argument(..., help="the rule's key"),
    segment: str | None = typer.Option(None, help="run it for this segment's members"),
    import_id: str | None = typer.Option(
        None, "--import", help="run it for the contacts this import created or updated"
    ),
    contact: list[str] = typer.Option([], help="run it for this contact id (repeatable)"),
) -> None:
    """Run a published rule now: its conditions are checked, its trigger is not."""
    try:
        imported = uuid.UUID(import_id) if import_id else None
    except ValueError:
        raise typer.BadParameter("not an import id", param_hint="--import") from None
    try:
        contacts = tuple(uuid.UUID(value) for value in contact)
    except ValueError:
        raise typer.BadParameter("not a contact id", param_hint="--contact") from None
    audience = Audience(segment=segment, import_id=imported, contact_ids=contacts)
    with cli_runtime() as runtime, runtime.database.transaction() as session:
        result = run_rule(
            session,
            definitions=runtime.definitions.load(session),
            rules=runtime.rules,
            key=key,
            audience=audience,
            now=runtime.clock.now(),
        )
    console.print(f"rule {result.rule}: fired for {result.fired} of {result.contacts} contact(s)")
