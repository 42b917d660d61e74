"""`postillon traits`: computed traits."""

from __future__ import annotations

import uuid

import typer

from postillon.cli.common import cli_runtime, console

app = typer.Typer(help="Computed traits (purchases, RFM, engagement).", no_args_is_help=True)


@app.command("refresh")
def refresh(
    contact: list[str] = typer.Option(
        [], help="only this contact id (repeatable); all contacts when left out"
    ),
) -> None:
    """Recompute traits now (the worker does it for everyone periodically)."""
    try:
        ids = [uuid.UUID(value) for value in contact] or None
    except ValueError:
        raise typer.BadParameter("not a contact id", param_hint="--contact") from None
    with cli_runtime() as runtime, runtime.database.transaction() as session:
        changed = runtime.traits.refresh(session, ids)
    console.print(f"traits changed for {len(changed)} contact(s)")
