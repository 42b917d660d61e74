"""`postillon segments` from YAML files, as a user runs it; problems name the line."""

from __future__ import annotations

import textwrap
from pathlib import Path

from postillon.contacts.schemas import ContactIn
from postillon.runtime import Runtime
from postillon.settings import Settings
from tests.support.cli import command_for, flat


def _write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_save_preview_refresh_export(runtime: Runtime, settings: Settings, tmp_path: Path) -> None:
    with runtime.database.transaction() as session:
        runtime.contacts.upsert_batch(
            session,
            [
                ContactIn(email="ann@example.com", tags=["vip"]),
                ContactIn(email="bob@example.com"),
            ],
        )
    cli = command_for(settings, tmp_path)
    definition = _write(
        tmp_path / "vip.yaml",
        """\
        key: vip
        name: VIP customers
        filter:
          any:
            - tag: vip
            - field: email
              op: ends with
              value: "@vip.example.com"
        """,
    )
    previewed = cli.run("segments", "preview", definition)
    assert previewed.returncode == 0, previewed.stderr
    assert "1 contact(s) match" in flat(previewed.stdout)
    assert "ann@example.com" in previewed.stdout

    saved = cli.run("segments", "save", definition)
    assert saved.returncode == 0, saved.stderr
    assert "segment vip created: 1 member(s)" in flat(saved.stdout)
    again = cli.run("segments", "save", definition)
    assert "segment vip changed: 1 member(s)" in flat(again.stdout)

    listed = cli.run("segments", "list", COLUMNS="200")
    assert "VIP customers" in listed.stdout
    refreshed = cli.run("segments", "refresh", "vip")
    assert "0 entered, 0 left, 1 member(s)" in flat(refreshed.stdout)

    exported = cli.run("segments", "export", "vip")
    assert exported.returncode == 0, exported.stderr
    assert exported.stdout.splitlines()[0].startswith("id,email,")
    assert "ann@example.com" in exported.stdout
    audience = tmp_path / "audience.csv"
    cli.run("segments", "export", "vip", "--audience", "meta", "--output", audience)
    assert audience.read_text().splitlines()[0] == "email_sha256,phone_sha256"


def test_problems_in_files_name_the_line(settings: Settings, tmp_path: Path) -> None:
    cli = command_for(settings, tmp_path)
    bad_filter = _write(
        tmp_path / "filter.yaml",
        """\
        all:
          - tag: vip
          - attribute: age
            op: between
            value: [30, 20]
        """,
    )
    result = cli.run("segments", "preview", bad_filter)
    assert result.returncode == 2
    assert f"{bad_filter} line 5: filter.all[1].value: low must not be greater than high" in flat(
        result.stderr
    )

    bad_definition = _write(
        tmp_path / "segment.yaml",
        """\
        key: young
        name: Young
        filter:
          attribute: birthday
          op: age between
          value: [18]
        """,
    )
    result = cli.run("segments", "save", bad_definition)
    assert result.returncode == 2
    assert f"{bad_definition} line 6: filter.value" in flat(result.stderr)

    broken = _write(tmp_path / "broken.yaml", "key: [unclosed\n")
    result = cli.run("segments", "save", broken)
    assert result.returncode == 2
    assert f"{broken} line 2" in flat(result.stderr)

    missing_name = _write(tmp_path / "noname.yaml", "key: x\nfilter: {tag: a}\n")
    result = cli.run("segments", "save", missing_name)
    assert result.returncode == 2
    assert "name" in flat(result.stderr)
