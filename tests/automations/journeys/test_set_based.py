"""Runs are executed as sets: a batch of 1,000 runs costs the same number of SQL
statements as a batch of 10 (entering them too)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event

from postillon.clock import VirtualClock
from postillon.runtime import Runtime
from tests.automations.journeys.support import (
    contacts,
    enter,
    messages,
    publish,
    run_steps,
    runs,
    tag,
    template,
)

JOURNEY = """
kind: journey
key: big
name: Big
trigger: {event: x}
goal: {filter: {tag: customer}}
exit_when: [{event: email_unsubscribed}]
conditions: {not: {tag: blocked}}
steps:
  - {id: check, if: {tag: vip}, then: vip-mail, else: mail}
  - {id: vip-mail, send: vip, next: ab}
  - {id: mail, send: hello}
  - id: ab
    split: [{name: A, percent: 50, next: pause}, {name: B, percent: 50, next: pause}]
  - {id: pause, wait: {until: "09:00", weekdays: [monday, tuesday]}}
  - id: click
    wait_for: {event: email_clicked, message_step: mail, timeout: 1d}
"""


@contextmanager
def counting(runtime: Runtime) -> Iterator[list[str]]:
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    engine = runtime.database.engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", count)


def _batch(runtime: Runtime, clock: VirtualClock, size: int) -> tuple[int, int, int]:
    """Statements to enter `size` contacts, to run their steps, and to time out their
    waits."""
    people = contacts(runtime, size)
    tag(runtime, people[: size // 3], "vip")
    with counting(runtime) as entering:
        assert len(enter(runtime, "big", people).entered) == size
    with counting(runtime) as stepping:
        assert run_steps(runtime, batch_size=size) == 5 * size
    assert {r.state for r in runs(runtime)} == {"waiting"}
    assert len(messages(runtime)) == size
    clock.advance(timedelta(days=1, hours=1))
    with counting(runtime) as timing_out:
        assert run_steps(runtime, batch_size=size) == size
    assert {r.state for r in runs(runtime)} == {"completed"}
    return len(entering), len(stepping), len(timing_out)


@pytest.fixture
def _journey(runtime: Runtime) -> None:
    template(runtime, "hello")
    template(runtime, "vip")
    publish(runtime, JOURNEY)


@pytest.mark.usefixtures("_journey")
@pytest.mark.parametrize("size", [10, 1000])
def test_statements_do_not_grow_with_the_batch(
    runtime: Runtime, clock: VirtualClock, size: int, request: pytest.FixtureRequest
) -> None:
    counts = _batch(runtime, clock, size)
    print(f"{size} runs: enter {counts[0]}, steps {counts[1]}, timeouts {counts[2]} statements")
    # Fixed numbers per batch: the same for 10 runs and for 1,000.
    entering, stepping, timing_out = counts
    assert entering <= 25
    assert stepping <= 60
    assert timing_out <= 25
    cache = request.config.stash.setdefault(_COUNTS, {})
    backend = runtime.database.engine.dialect.name
    if backend in cache:
        assert cache[backend] == counts, f"{cache[backend]} statements for 10 runs"
    cache[backend] = counts


_COUNTS = pytest.StashKey[dict[str, tuple[int, int, int]]]()
