"""`postillon simulate`, run as the README shows, on the example in docs/examples/simulate:
the timeline it prints, and bad input refused with the file and line (exit 1)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.support.cli import ANSI, Cli, base_env, flat

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "simulate"
# Monday 19:30 UTC: the welcome goes at 20:30 in Berlin, the open comes at 22:30 the next
# day, inside the journey's quiet hours (21:00 to 08:00).
START = "2026-03-02T19:30Z"


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    # Wide enough that no row of the timeline wraps.
    return Cli({**base_env(tmp_path), "COLUMNS": "250"}, tmp_path)


@pytest.fixture
def example(tmp_path: Path) -> Path:
    folder = tmp_path / "example"
    shutil.copytree(EXAMPLE, folder)
    return folder


def timeline(output: str) -> list[tuple[str, str, str]]:
    """(day, local time, what) of each row of the printed table."""
    rows = []
    for line in ANSI.sub("", output).splitlines():
        cells = [cell.strip() for cell in line.split("│")]
        if len(cells) == 5 and cells[1].isdigit():
            rows.append((cells[1], cells[2], cells[3]))
    return rows


def simulate(cli: Cli, folder: Path, *extra: str | Path) -> tuple[int, str, str]:
    result = cli.run(
        "simulate", folder / "signup-drip.yaml", "--contact", folder / "contact.json",
        "--start", START, *extra,
    )  # fmt: skip
    return result.returncode, result.stdout, result.stderr


@pytest.mark.e2e
def test_the_example_prints_its_sends_and_the_quiet_hours_hold(cli: Cli, example: Path) -> None:
    code, out, err = simulate(cli, example, "--events", example / "events.jsonl", "--days", "90")
    assert code == 0, out + err
    rows = timeline(out)
    sent = [(day, local, what) for day, local, what in rows if what.startswith("email sent")]
    assert sent == [
        ("0", "Mon 2026-03-02 20:30", "email sent: 'welcome' (signup-drip · welcome)"),
        ("1", "Wed 2026-03-04 08:00", "email sent: 'tips' (signup-drip · tips)"),
        ("57", "Wed 2026-04-29 09:00", "email sent: 'we-miss-you' (signup-drip · miss-you)"),
    ]
    assert (
        "1",
        "Tue 2026-03-03 22:30",
        "signup-drip · tips: held — held until 2026-03-04T07:00:00+00:00: "
        "quiet hours 21:00\u201308:00 Europe/Berlin",
    ) in rows
    assert ("1", "Tue 2026-03-03 22:30", "the contact: email_opened") in rows
    assert (
        "57",
        "Wed 2026-04-29 09:00",
        "signup-drip · quiet: timed_out — no order_completed within 8w → miss-you",
    ) in rows
    assert "3 email(s) sent" in out


@pytest.mark.e2e
def test_bad_input_exits_1_naming_the_file_and_line(
    cli: Cli, example: Path, tmp_path: Path
) -> None:
    events = example / "events.jsonl"
    events.write_text(
        '{"at": "+1d", "event": "page_viewed"}\n{"at": "+2d", "event": \n', encoding="utf-8"
    )
    code, out, err = simulate(cli, example, "--events", events)
    assert code == 1
    assert f"error: {events} line 2: not JSON" in flat(err)
    assert timeline(out) == []

    # A template the journey names that the templates folder lacks (a typo).
    journey = example / "signup-drip.yaml"
    text = journey.read_text(encoding="utf-8")
    journey.write_text(text.replace("send: tips}", "send: tipps}"), encoding="utf-8")
    templates = tmp_path / "templates"
    templates.mkdir()
    for key in ("welcome", "welcome-again", "tips", "we-miss-you"):
        (templates / f"{key}.yaml").write_text(
            f"subject: About {key}\nformat: html\nbody: <p>{key}</p>\n", encoding="utf-8"
        )
    code, out, err = simulate(cli, example, "--templates", templates)
    line = text.splitlines().index("  - {id: tips, send: tips}") + 1
    assert code == 1
    assert f"error: {journey} line {line}: steps[3].send: no template has the key 'tipps'" in flat(
        err
    )
    assert timeline(out) == []

    # With the typo mended, the folder's templates are used.
    journey.write_text(text, encoding="utf-8")
    code, out, err = simulate(cli, example, "--templates", templates, "--days", "5")
    assert code == 0, out + err
    assert "email sent: 'About welcome' (signup-drip · welcome)" in flat(out)
