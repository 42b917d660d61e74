"""`postillon journeys|rules …` and `postillon explain`, run as a user runs them."""

from __future__ import annotations

import textwrap
from datetime import timedelta
from pathlib import Path

from postillon.automations import history
from postillon.clock import VirtualClock
from postillon.runtime import Runtime
from postillon.settings import Settings
from tests.automations.support import (
    ABANDONED_CART,
    LEAD_RULE,
    add_contact,
    add_run,
    add_templates,
    automation_id,
    record,
)
from tests.support.cli import command_for, flat

SIGNUP = textwrap.dedent(
    """\
    kind: journey
    key: signup
    name: Signup drip
    trigger: {contact_created: true}
    entry: {policy: once}
    steps:
      - {id: welcome, send: vip}
      - {id: wait, wait: 3d}
      - {id: to-customers, move_to: customers}
    """
)
CUSTOMERS = textwrap.dedent(
    """\
    kind: journey
    key: customers
    name: Customers
    trigger: {event: order_completed}
    steps:
      - {id: thanks, send: cart-reminder}
    """
)


def cells(text: str) -> str:
    """A table's output as words, its borders gone."""
    return flat(text.replace("│", " ").replace("┃", " "))


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_validate_prints_each_problem_with_file_and_line(
    runtime: Runtime, settings: Settings, tmp_path: Path
) -> None:
    add_templates(runtime)
    cli = command_for(settings, tmp_path)
    good = write(tmp_path, "abandoned-cart.yaml", ABANDONED_CART)
    ok = cli.run("journeys", "validate", good)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert f"{good}: journey abandoned-cart is valid" in ok.stdout

    bad = write(
        tmp_path,
        "bad.yaml",
        ABANDONED_CART.replace("send: cart-reminder}", "send: cart-remindr}").replace(
            "timeout: 23h", "timeout: a day"
        ),
    )
    broken = write(tmp_path, "broken.yaml", "kind: rule\nkey: [oops\n")
    result = cli.run("journeys", "validate", good, bad, broken, tmp_path / "missing.yaml")
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert f"{good}: journey abandoned-cart is valid" in lines
    assert (
        f"{bad} line 14: steps[1].send: no template has the key 'cart-remindr' "
        "(did you mean 'cart-reminder'?)"
    ) in lines
    assert (
        f"{bad} line 16: steps[2].wait_for.timeout: must be a duration such as 30m, 1h, 3d, "
        "2w or 1d12h"
    ) in lines
    assert any(line.startswith(f"{broken} line 3, column 1: ") for line in lines), lines
    assert any(line.startswith(f"{tmp_path / 'missing.yaml'}: cannot be read") for line in lines)

    # Nothing was saved by validating.
    listed = cli.run("journeys", "list", COLUMNS="200")
    assert "abandoned-cart" not in listed.stdout


def test_publish_files_that_name_each_other_then_pause_resume_and_list(
    runtime: Runtime, settings: Settings, tmp_path: Path
) -> None:
    add_templates(runtime)
    cli = command_for(settings, tmp_path)
    signup, customers = write(tmp_path, "signup.yaml", SIGNUP), write(tmp_path, "c.yaml", CUSTOMERS)
    rule = write(tmp_path, "rule.yaml", LEAD_RULE)

    # signup moves contacts to customers, which is new too: checked as one set of files.
    published = cli.run("journeys", "publish", signup, customers, rule)
    assert published.returncode == 0, published.stdout + published.stderr
    assert published.stdout.splitlines() == [
        "journey signup: version 1 published",
        "journey customers: version 1 published",
        "rule lead-to-mql: version 1 published",
    ]
    again = cli.run("journeys", "publish", "--migrate", signup)
    assert flat(again.stdout) == (
        "journey signup: version 1 is published already; the draft has not changed, so no "
        "new version; 0 run(s) moved to version 1"
    )

    paused = cli.run("journeys", "pause", "signup")
    assert (paused.returncode, paused.stdout.strip()) == (0, "journey signup is paused")
    journeys = cells(cli.run("journeys", "list", COLUMNS="200").stdout)
    assert "signup journey Signup drip paused 1 0" in journeys
    assert "customers journey Customers active 1 0" in journeys
    assert "lead-to-mql" not in journeys
    assert cli.run("journeys", "resume", "signup").stdout.strip() == "journey signup is active"
    rules = cells(cli.run("rules", "list", COLUMNS="200").stdout)
    assert "lead-to-mql rule Lead reaches 50 active 1 -" in rules
    assert "signup" not in rules

    archived = cli.run("rules", "archive", "lead-to-mql")
    assert archived.stdout.strip() == "rule lead-to-mql archived"
    unknown = cli.run("journeys", "pause", "nothing")
    assert unknown.returncode == 2
    assert "no rule or journey has the key 'nothing'" in flat(unknown.stderr)


def test_publish_is_all_or_nothing(runtime: Runtime, settings: Settings, tmp_path: Path) -> None:
    add_templates(runtime)
    cli = command_for(settings, tmp_path)
    good = write(tmp_path, "customers.yaml", CUSTOMERS)
    looping = write(
        tmp_path,
        "loop.yaml",
        SIGNUP.replace("{id: to-customers, move_to: customers}", "{id: to-customers, exit: {}}")
        .replace("{id: welcome, send: vip}", "{id: welcome, send: vip, next: again}")
        .replace("{id: wait, wait: 3d}", "{id: again, if: {tag: x}, then: welcome}"),
    )
    result = cli.run("journeys", "publish", good, looping)
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        f"{looping} line 7: steps[0]: is part of a loop without a wait: a run would never stop"
    ]
    listed = cli.run("journeys", "list", COLUMNS="200")
    assert "customers" not in listed.stdout


def test_explain_shows_the_contacts_story(
    runtime: Runtime, settings: Settings, tmp_path: Path, clock: VirtualClock
) -> None:
    add_templates(runtime)
    ann = add_contact(runtime, "ann@example.com")
    cli = command_for(settings, tmp_path)
    nothing = cli.run("explain", "ann@example.com")
    assert nothing.returncode == 0, nothing.stderr
    assert "No journey or rule has done anything for this contact yet." in nothing.stdout

    with runtime.database.transaction() as session:
        runtime.automations.save(session, ABANDONED_CART)
        runtime.automations.publish(session, "abandoned-cart")
        runtime.automations.save(session, LEAD_RULE)
        runtime.automations.publish(session, "lead-to-mql")
        journey = automation_id(session, "abandoned-cart")
        rule = automation_id(session, "lead-to-mql")
        start = clock.now()
        run = add_run(
            session,
            journey_id=journey,
            contact_id=ann,
            version=1,
            step_id=None,
            state="converted",
            entered_at=start,
            ended_at=start + timedelta(minutes=40),
            end_reason="goal reached: order_completed",
        )
        for minutes, step, outcome, reason in [
            (0, None, history.Outcome.entered, "entered by event cart_abandoned"),
            (0, "wait-1h", history.Outcome.waited, "waiting 1h, until 10:00"),
            (40, None, history.Outcome.converted, "goal reached: order_completed [cart 7]"),
        ]:
            record(
                session,
                contact_id=ann,
                automation=journey,
                outcome=outcome,
                reason=reason,
                at=start + timedelta(minutes=minutes),
                run_id=run,
                step_id=step,
            )
        record(
            session,
            contact_id=ann,
            automation=journey,
            outcome=history.Outcome.refused,
            reason="once at a time: already in the journey",
            at=start + timedelta(minutes=5),
        )
        record(
            session,
            contact_id=ann,
            automation=rule,
            outcome=history.Outcome.fired,
            reason="score 50 reached: owner notified, stage mql",
            at=start + timedelta(hours=2),
        )
    result = cli.run("explain", "ANN@example.com", COLUMNS="200")
    assert result.returncode == 0, result.stderr
    text = flat(result.stdout)
    assert f"Contact ANN@example.com ({ann}); times in UTC" in text
    assert "Journey abandoned-cart (Abandoned cart), version 1: converted" in text
    assert (
        "entered 2026-01-05 09:00:00 by event, ended 2026-01-05 09:40:00: goal reached: "
        "order_completed"
    ) in text
    assert "2026-01-05 09:00:00 wait-1h waited waiting 1h, until 10:00" in text
    assert "2026-01-05 09:40:00 converted goal reached: order_completed [cart 7]" in text
    assert text.index("entered by event cart_abandoned") < text.index("waiting 1h")
    assert (
        "Journeys not entered time automation step outcome reason 2026-01-05 09:05:00 "
        "abandoned-cart refused once at a time: already in the journey"
    ) in text
    assert (
        "Rules time automation outcome reason 2026-01-05 11:00:00 lead-to-mql fired "
        "score 50 reached: owner notified, stage mql"
    ) in text

    by_id = cli.run("explain", str(ann), COLUMNS="200")
    assert f"Contact {ann}; times in UTC" in by_id.stdout
    assert "Journey abandoned-cart" in by_id.stdout
    missing = cli.run("explain", "nobody@example.com")
    assert missing.returncode == 2
    assert "no contact has the email nobody@example.com" in flat(missing.stderr)
