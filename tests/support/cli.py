"""The `postillon` command run as a user runs it: the installed script in a subprocess,
configured by environment variables."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from postillon.settings import Settings

POSTILLON = Path(sys.executable).with_name("postillon")
BOM = "\ufeff"
# Variables that change how rich draws; each test sets what it needs.
_TERMINAL_VARIABLES = ("COLUMNS", "LINES", "FORCE_COLOR", "NO_COLOR", "TTY_COMPATIBLE", "TERM")
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class Cli:
    """The `postillon` command with a fixed environment."""

    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        self.env = env
        self.cwd = cwd

    def run(self, *args: str | Path, **extra_env: str) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(POSTILLON), *(str(a) for a in args)],
            env={**self.env, **extra_env},
            cwd=self.cwd,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert "Traceback" not in result.stderr, result.stderr
        assert "Traceback" not in result.stdout, result.stdout
        return result


def base_env(data_dir: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("POSTILLON_") and k not in _TERMINAL_VARIABLES
    }
    env["POSTILLON_DATA_DIR"] = str(data_dir)
    return env


def command_for(settings: Settings, tmp_path: Path) -> Cli:
    """The command against a test's database (the one its `runtime` uses)."""
    assert POSTILLON.exists(), f"{POSTILLON} is not installed"
    assert settings.database_url is not None
    env = base_env(tmp_path)
    env["POSTILLON_DATABASE_URL"] = settings.database_url
    env["POSTILLON_SECRET_KEY"] = settings.secret_key
    return Cli(env, tmp_path)


def flat(text: str) -> str:
    """Output without colours and with rich's line wrapping undone."""
    return " ".join(ANSI.sub("", text).split())
