"""The frequency caps through the API and the `postillon caps` command."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx

from postillon.automations.collision import SendCandidate
from postillon.runtime import Runtime
from postillon.settings import Settings
from tests.automations.time_support import make_contact, make_message, make_template
from tests.support.cli import command_for


def test_caps_are_set_listed_and_removed(api: httpx.Client, runtime: Runtime) -> None:
    assert api.get("/api/frequency-caps").json() == []
    put = api.put("/api/frequency-caps/email", json={"per_day": 2, "per_week": 5})
    assert put.status_code == 200, put.text
    assert put.json()["per_day"] == 2 and put.json()["updated_at"] is not None
    api.put("/api/frequency-caps/sms", json={"per_week": 3})
    listed = api.get("/api/frequency-caps").json()
    assert [(c["channel"], c["per_day"], c["per_week"]) for c in listed] == [
        ("email", 2, 5),
        ("sms", None, 3),
    ]
    # The gate applies what was set.
    with runtime.database.transaction() as session:
        ada = make_contact(session, runtime)
        template = make_template(session, runtime)
        now = runtime.clock.now()
        for _ in range(2):
            make_message(session, template, ada, due_at=now)
        decision = runtime.send_gate.decide(session, [SendCandidate("x", ada)], now=now)["x"]
    assert decision.rule == "cap_day"
    # A null removes one cap, both nulls the channel's row.
    changed = api.put("/api/frequency-caps/email", json={"per_day": None, "per_week": 5})
    assert changed.json()["per_day"] is None
    removed = api.put("/api/frequency-caps/sms", json={})
    assert removed.json() == {
        "channel": "sms",
        "per_day": None,
        "per_week": None,
        "updated_at": None,
    }
    assert [c["channel"] for c in api.get("/api/frequency-caps").json()] == ["email"]


def test_bad_caps_are_refused_naming_the_field(api: httpx.Client) -> None:
    cases = [
        ("email", {"per_day": 0}, "per_day"),
        ("email", {"per_week": -1}, "per_week"),
        ("email", {"per_day": 5000}, "per_day"),
        ("email", {"per_day": 3, "per_week": 2}, "per_day"),
        ("email", {"per_day": "2"}, "per_day"),
        ("email", {"per_day": True}, "per_day"),
        ("email", {"per_day": 1.5}, "per_day"),
        ("email", {"per_month": 9}, "per_month"),
        ("fax", {"per_day": 1}, "channel"),
    ]
    for channel, body, field in cases:
        answer = api.put(f"/api/frequency-caps/{channel}", json=body)
        assert answer.status_code == 422, (body, answer.text)
        locations = [p["loc"] for p in answer.json()["problems"]]
        assert any(field in location for location in locations), (body, locations)
    assert api.get("/api/frequency-caps").json() == []


def test_caps_need_an_admin_key(server_url: str) -> None:
    with httpx.Client(base_url=server_url) as anonymous:
        assert anonymous.get("/api/frequency-caps").status_code == 401
        assert anonymous.put("/api/frequency-caps/email", json={"per_day": 1}).status_code == 401


def run(settings: Settings, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return command_for(settings, tmp_path).run(*args, COLUMNS="200")


def test_the_caps_command(runtime: Runtime, settings: Settings, tmp_path: Path) -> None:
    done = run(settings, tmp_path, "caps", "set", "email", "--per-day", "2", "--per-week", "5")
    assert done.returncode == 0, done.stderr
    assert "email" in done.stdout
    listed = run(settings, tmp_path, "caps", "list")
    assert listed.returncode == 0, listed.stderr
    row = next(line for line in listed.stdout.splitlines() if "email" in line)
    assert [cell.strip() for cell in row.split("\u2502")[1:4]] == ["email", "2", "5"]
    with runtime.database.transaction(read_only=True) as session:
        caps = runtime.frequency_caps.list(session)
    assert [(c.channel, c.per_day, c.per_week) for c in caps] == [("email", 2, 5)]
    refused = run(settings, tmp_path, "caps", "set", "email", "--per-day", "0")
    assert refused.returncode == 2
    assert "per_day" in refused.stderr
    cleared = run(settings, tmp_path, "caps", "set", "email")
    assert cleared.returncode == 0, cleared.stderr
    with runtime.database.transaction(read_only=True) as session:
        assert runtime.frequency_caps.list(session) == []
