"""`postillon templates` run as a user runs it."""

from __future__ import annotations

from pathlib import Path

from postillon.runtime import Runtime
from postillon.settings import Settings
from tests.support.cli import command_for, flat
from tests.templates.support import add_contact


def test_save_list_and_preview_a_template_from_a_yaml_file(
    settings: Settings, runtime: Runtime, tmp_path: Path
) -> None:
    with runtime.database.transaction() as session:
        add_contact(session, runtime)
    cli = command_for(settings, tmp_path)
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        "key: welcome\nformat: html\nsubject: Welcome\n"
        "body: |\n  <p>Hi</p>\n  <p>{{ contct }}</p>\n"
    )
    refused = cli.run("templates", "save", broken)
    assert refused.returncode != 0
    assert "broken.yaml line 6" in flat(refused.stdout + refused.stderr)
    assert "unknown variable 'contct'" in flat(refused.stdout + refused.stderr)

    (tmp_path / "welcome.html").write_text("<h1>Hi {{ contact.first_name }}</h1>")
    good = tmp_path / "welcome.yaml"
    good.write_text("key: welcome\nformat: html\nsubject: Welcome\nbody_file: welcome.html\n")
    saved = cli.run("templates", "save", good)
    assert saved.returncode == 0, saved.stderr
    assert "welcome" in cli.run("templates", "list").stdout
    shown = cli.run("templates", "preview", "welcome", "--email", "ada@example.com")
    assert shown.returncode == 0, shown.stderr
    assert "Subject: Welcome" in shown.stdout and "# Hi Ada" in shown.stdout
