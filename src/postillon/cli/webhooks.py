"""`postillon webhooks`: what receivers of Postillon's webhooks need."""

from __future__ import annotations

import typer

from postillon.automations.webhooks import webhook_secret
from postillon.cli.common import cli_runtime, console

app = typer.Typer(help="Webhooks called by rules and journeys.", no_args_is_help=True)


@app.command("secret")
def secret() -> None:
    """Print the secret webhooks are signed with (`Postillon-Signature: t=…,v1=…` is the
    HMAC-SHA256 of "<t>.<body>" with it); it follows from POSTILLON_SECRET_KEY."""
    with cli_runtime(require_schema=False) as runtime:
        console.print(webhook_secret(runtime.settings.secret_key))
