"""`postillon keys`: API keys."""

from __future__ import annotations

import typer
from rich.table import Table

from postillon.auth.service import Scope
from postillon.cli.common import cli_runtime, console

app = typer.Typer(help="API keys.", no_args_is_help=True)


@app.command("create")
def create(
    scope: Scope = typer.Option(..., help="admin: the whole API; write: ingestion only"),
    name: str = typer.Option("api key", help="what the key is for"),
    origin: list[str] = typer.Option(
        [],
        help="make a public write key for the tracking snippet, accepted only from this "
        "origin (repeatable), e.g. https://shop.example or https://*.shop.example",
    ),
) -> None:
    """Create a key. The key is printed once, alone on the last line."""
    with cli_runtime() as runtime, runtime.database.transaction() as session:
        key, secret = runtime.api_keys.create(
            session, scope=scope, name=name, allowed_origins=origin or None
        )
    public = f", public for {', '.join(key.allowed_origins)}" if key.allowed_origins else ""
    console.print(f"Created {key.scope} key {key.name!r} (id {key.id}{public}). Store it now:")
    print(secret)


@app.command("list")
def list_keys() -> None:
    """List keys (never their secrets)."""
    with cli_runtime() as runtime, runtime.database.transaction(read_only=True) as session:
        table = Table("id", "name", "scope", "prefix", "origins", "created", "last used", "revoked")
        for key in runtime.api_keys.list(session):
            table.add_row(
                str(key.id),
                key.name,
                key.scope,
                key.prefix + "…",
                ", ".join(key.allowed_origins or []),
                f"{key.created_at:%Y-%m-%d %H:%M}",
                f"{key.last_used_at:%Y-%m-%d %H:%M}" if key.last_used_at else "",
                f"{key.revoked_at:%Y-%m-%d %H:%M}" if key.revoked_at else "",
            )
        console.print(table)


@app.command("revoke")
def revoke(reference: str = typer.Argument(..., help="the key's id or prefix")) -> None:
    """Revoke a key; requests with it are refused from now on."""
    with cli_runtime() as runtime, runtime.database.transaction() as session:
        key = runtime.api_keys.revoke(session, reference)
    console.print(f"revoked {key.name!r} ({key.id})")
