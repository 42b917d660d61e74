"""`postillon broadcasts` as a user runs it: the installed command in a subprocess."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from sqlalchemy.orm import Session

from postillon.runtime import Runtime
from postillon.settings import Settings
from tests.broadcasts.support import broadcast, make_contacts, make_template, mark_sent, messages_of
from tests.support.cli import POSTILLON, command_for, flat

DEFINITION = """\
key: june
name: June news
variants:
  - name: A
    template: news
  - name: B
    template: news-b
ab_test:
  share_percent: 20
  duration_minutes: 240
  metric: clicks
audience:
  everyone: true
rate_per_minute: 600
"""


def test_create_list_schedule_status_cancel(
    runtime: Runtime, session: Session, settings: Settings, tmp_path: Path
) -> None:
    make_template(session, runtime, "news")
    make_template(session, runtime, "news-b")
    session.commit()
    cli = command_for(settings, tmp_path)
    definition = tmp_path / "june.yaml"
    definition.write_text(DEFINITION)

    created = cli.run("broadcasts", "create", definition)
    assert created.returncode == 0, created.stderr
    assert flat(created.stdout) == "broadcast june created: draft"
    listed = cli.run("broadcasts", "list", COLUMNS="200")
    assert "june" in listed.stdout and "draft" in listed.stdout

    scheduled = cli.run(
        "broadcasts", "schedule", "june", "--at", "2026-01-06T09:00", "--local",
        "--timezone", "Europe/Paris",
    )  # fmt: skip
    assert scheduled.returncode == 0, scheduled.stderr
    assert flat(scheduled.stdout) == "broadcast june scheduled: starts 2026-01-05T19:00+00:00"
    status = cli.run("broadcasts", "status", "june")
    assert "broadcast june (June news): scheduled" in flat(status.stdout)
    cancelled = cli.run("broadcasts", "cancel", "june")
    assert flat(cancelled.stdout) == "broadcast june cancelled"
    again = cli.run("broadcasts", "cancel", "june")
    assert again.returncode == 2
    assert "broadcast 'june' is cancelled already" in flat(again.stderr)


def test_errors_in_the_file_name_their_line(
    runtime: Runtime, session: Session, settings: Settings, tmp_path: Path
) -> None:
    make_template(session, runtime, "news")
    session.commit()
    cli = command_for(settings, tmp_path)
    definition = tmp_path / "june.yaml"
    definition.write_text(
        DEFINITION.replace("template: news-b", "template: missing").replace(
            "share_percent: 20", "share_percent: 80"
        )
    )
    result = cli.run("broadcasts", "create", definition)
    assert result.returncode == 2
    error = flat(result.stderr)
    assert f"{definition} line 9: ab_test.share_percent" in error
    assert "less than or equal to 49" in error
    definition.write_text(DEFINITION.replace("template: news-b", "template: missing"))
    result = cli.run("broadcasts", "create", definition)
    assert result.returncode == 2
    assert f"{definition} line 7: variants[1].template: no template 'missing'" in flat(
        result.stderr
    )
    definition.write_text("key: june\n  name: [unclosed\n")
    result = cli.run("broadcasts", "create", definition)
    assert result.returncode == 2
    assert f"{definition} line 2" in flat(result.stderr)


def test_send_shows_progress_until_every_message_is_out(
    runtime: Runtime, session: Session, settings: Settings, tmp_path: Path
) -> None:
    make_template(session, runtime, "news")
    make_contacts(session, runtime, 25)
    session.commit()
    cli = command_for(settings, tmp_path)
    definition = tmp_path / "june.yaml"
    definition.write_text("key: june\nname: June\ntemplate: news\naudience:\n  everyone: true\n")
    assert cli.run("broadcasts", "create", definition).returncode == 0

    process = subprocess.Popen(
        [str(POSTILLON), "broadcasts", "send", "june"],
        env={**cli.env, "COLUMNS": "120"},
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # The command puts every recipient in the outbox itself; here a sender's part:
        # once they are all there, they are sent.
        deadline = time.monotonic() + 60
        while (
            len(messages_of(runtime, "june")) < 25 or broadcast(runtime, "june").phase_done is False
        ):
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the broadcast was not materialised"
            time.sleep(0.05)
        mark_sent(runtime, "june")
        output, errors = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, errors
    text = flat(output)
    assert "june: sent" in text
    assert "25/25" in text
    assert text.endswith("broadcast june sent: 25 sent")
