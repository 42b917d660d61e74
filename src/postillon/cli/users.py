"""`postillon users`: the people who work in Postillon and own contacts."""

from __future__ import annotations

import sys

import typer
from rich.table import Table

from postillon.cli.common import cli_runtime, console

app = typer.Typer(help="Users (marketers, sales owners of contacts).", no_args_is_help=True)


@app.command("create")
def create(
    email: str,
    name: str = typer.Option(None, help="display name"),
    password_stdin: bool = typer.Option(False, help="read a password from standard input"),
) -> None:
    """Create a user. Without a password the user can own contacts but not log in."""
    password = sys.stdin.readline().rstrip("\n") if password_stdin else None
    with cli_runtime() as runtime, runtime.database.transaction() as session:
        user = runtime.users.create(session, email=email, name=name, password=password)
    console.print(f"created user {user.email} ({user.id})")


@app.command("list")
def list_users() -> None:
    with cli_runtime() as runtime, runtime.database.transaction(read_only=True) as session:
        table = Table("id", "email", "name", "can log in")
        for user in runtime.users.list(session):
            table.add_row(
                str(user.id), user.email, user.name or "", "yes" if user.password_hash else "no"
            )
        console.print(table)
