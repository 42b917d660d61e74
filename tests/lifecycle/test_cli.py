"""`postillon stages` and `postillon traits refresh`, run as a user runs them."""

from __future__ import annotations

import subprocess
from pathlib import Path

from postillon.runtime import Runtime
from postillon.settings import Settings
from tests.support.cli import command_for


def run(settings: Settings, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return command_for(settings, tmp_path).run(*args, COLUMNS="200")


def test_stages_and_traits_commands(runtime: Runtime, settings: Settings, tmp_path: Path) -> None:
    listed = run(settings, tmp_path, "stages", "list")
    assert listed.returncode == 0, listed.stderr
    assert "Marketing qualified lead" in listed.stdout

    changed = run(settings, tmp_path, "stages", "set", "lead", "trial=Trial user", "customer")
    assert changed.returncode == 0, changed.stderr
    assert "Trial user" in changed.stdout
    with runtime.database.transaction(read_only=True) as session:
        stages = runtime.lifecycle.pipeline(session).stages
    assert [(s.key, s.name) for s in stages] == [
        ("lead", "Lead"),  # a kept key keeps its name
        ("trial", "Trial user"),
        ("customer", "Customer"),
    ]

    refused = run(settings, tmp_path, "stages", "set", "Bad Key")
    assert refused.returncode == 2
    assert "stages[0].key" in refused.stderr

    refreshed = run(settings, tmp_path, "traits", "refresh")
    assert refreshed.returncode == 0, refreshed.stderr
    assert "traits changed for 0 contact(s)" in refreshed.stdout
    bad = run(settings, tmp_path, "traits", "refresh", "--contact", "nope")
    assert bad.returncode == 2
