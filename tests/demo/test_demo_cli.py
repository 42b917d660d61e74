"""`postillon demo`, run as a user runs it: the installed command, configured by
environment variables, against the test's database."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from postillon.models import Contact
from postillon.runtime import Runtime
from postillon.settings import Settings

POSTILLON = Path(sys.executable).with_name("postillon")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def run_demo(settings: Settings, cwd: Path, *args: str) -> str:
    assert settings.database_url is not None
    env = {k: v for k, v in os.environ.items() if not k.startswith("POSTILLON_")}
    env |= {
        "POSTILLON_DATA_DIR": str(cwd),
        "POSTILLON_DATABASE_URL": settings.database_url,
        "POSTILLON_SECRET_KEY": settings.secret_key,
    }
    result = subprocess.run(
        [str(POSTILLON), "demo", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return " ".join(_ANSI.sub("", result.stdout).split())


@pytest.mark.e2e
def test_the_demo_command_loads_once_and_says_so_the_second_time(
    runtime: Runtime, settings: Settings, tmp_path: Path
) -> None:
    first = run_demo(settings, tmp_path, "--contacts", "30", "--days", "90", "--seed", "3")

    found = re.search(
        r"Demo shop loaded \(seed 3, 90 days up to now\): 30 contacts, ([\d,]+) events, "
        r"([\d,]+) orders, ([\d,.]+) EUR revenue in [\d.]+ s\.",
        first,
    )
    assert found is not None, first
    assert int(found.group(1).replace(",", "")) > 30 * 10
    with runtime.database.transaction(read_only=True) as session:
        assert session.scalar(select(func.count()).select_from(Contact)) == 30

    again = run_demo(settings, tmp_path, "--contacts", "30", "--days", "90", "--seed", "3")

    assert again == "The demo data (seed 3) is loaded already: nothing to do."

    other = run_demo(settings, tmp_path, "--contacts", "30", "--seed", "4")

    assert "holds demo data already (contact demo-3-" in other
    assert "nothing loaded for seed 4" in other
