"""Rules run by hand (API and CLI) on a segment, an import or listed contacts, and an
import's `--run-automations` reaching the rules on `contact_created`."""

from __future__ import annotations

import io
import uuid
from pathlib import Path

import httpx
from typer.testing import CliRunner

from postillon.cli.main import app
from postillon.contacts.service import ContactFilter
from postillon.imports.service import ImportOptions
from postillon.runtime import Runtime
from postillon.segments.schemas import SegmentIn
from tests.automations.rules_support import history, new_contact, publish, run_until_idle
from tests.support.files import csv_file

TAG_VIPS = {
    "kind": "rule",
    "key": "tag-vips",
    "name": "Tag VIPs",
    "trigger": {"event": "manual"},
    "conditions": {"attribute": "plan", "op": "=", "value": "pro"},
    "actions": [{"tags_add": "vip"}],
}

WELCOME_IMPORTED = {
    "kind": "rule",
    "key": "welcome-imported",
    "name": "Welcome imported",
    "trigger": {"contact_created": {}},
    "actions": [{"tags_add": "welcomed"}],
}


def tags(runtime: Runtime, contact_id: uuid.UUID) -> list[str]:
    with runtime.database.transaction(read_only=True) as session:
        return runtime.contacts.get(session, contact_id).tags


def test_a_rule_runs_by_hand_on_a_segment_through_the_api(
    api: httpx.Client, runtime: Runtime
) -> None:
    publish(runtime, TAG_VIPS)
    ann = new_contact(runtime, "ann@example.com", attributes={"plan": "pro"}, tags=["b2b"])
    bob = new_contact(runtime, "bob@example.com", attributes={"plan": "free"}, tags=["b2b"])
    carl = new_contact(runtime, "carl@example.com", attributes={"plan": "pro"})
    with runtime.database.transaction() as session:
        runtime.segments.create(session, SegmentIn(key="b2b", name="B2B", filter={"tag": "b2b"}))

    response = api.post("/api/automations/tag-vips/run", json={"segment": "b2b"})
    assert response.status_code == 200, response.text
    assert response.json() == {"rule": "tag-vips", "contacts": 2, "fired": 1}
    assert tags(runtime, ann) == ["b2b", "vip"]
    assert tags(runtime, bob) == ["b2b"]
    assert tags(runtime, carl) == []

    listed = api.post("/api/automations/tag-vips/run", json={"contact_ids": [str(carl), str(ann)]})
    assert listed.json() == {"rule": "tag-vips", "contacts": 2, "fired": 2}
    assert tags(runtime, carl) == ["vip"]


def test_bad_runs_are_refused_naming_what_is_wrong(api: httpx.Client, runtime: Runtime) -> None:
    publish(runtime, TAG_VIPS)
    publish(runtime, {**TAG_VIPS, "key": "paused-rule"}, status="paused")
    nobody = uuid.uuid4()

    def problems(key: str, body: dict[str, object]) -> tuple[int, list[str]]:
        response = api.post(f"/api/automations/{key}/run", json=body)
        return response.status_code, [p["loc"] for p in response.json().get("problems", [])]

    assert problems("tag-vips", {}) == (422, ["body"])
    assert problems("tag-vips", {"segment": "x", "contact_ids": [str(nobody)]}) == (422, ["body"])
    assert problems("tag-vips", {"segment": "nope"}) == (422, ["segment"])
    assert problems("tag-vips", {"import_id": str(nobody)}) == (422, ["import_id"])
    assert problems("tag-vips", {"contact_ids": [str(nobody)]}) == (422, ["contact_ids[0]"])
    assert problems("missing", {"contact_ids": [str(nobody)]})[0] == 404
    assert problems("paused-rule", {"contact_ids": [str(nobody)]})[0] == 409


def test_a_rule_runs_by_hand_on_an_import_from_the_cli(runtime: Runtime, tmp_path: Path) -> None:
    publish(runtime, TAG_VIPS)
    report = runtime.imports.run(
        runtime.database,
        io.BytesIO(csv_file("email,plan", "ann@example.com,pro", "bob@example.com,free")),
        filename="c.csv",
        options=ImportOptions(),
    )
    env = {
        "POSTILLON_DATABASE_URL": runtime.database.url,
        "POSTILLON_DATA_DIR": str(tmp_path),
        "POSTILLON_SECRET_KEY": "cli-test-secret",
        "COLUMNS": "200",
    }
    runner = CliRunner()
    args = ["rules", "run", "tag-vips", "--import", str(report.import_id)]
    result = runner.invoke(app, args, env=env)
    assert result.exit_code == 0, result.output
    assert "rule tag-vips: fired for 1 of 2 contact(s)" in result.output
    unknown = runner.invoke(app, ["rules", "run", "tag-vips", "--segment", "none"], env=env)
    assert unknown.exit_code == 2
    assert "segment: no segment with the key 'none'" in unknown.output


def test_an_import_that_runs_the_automations_starts_the_rules_on_contact_created(
    runtime: Runtime,
) -> None:
    publish(runtime, WELCOME_IMPORTED)
    ann = new_contact(runtime, "ann@example.com")
    run_until_idle(runtime)
    assert tags(runtime, ann) == ["welcomed"]  # created through the API
    runtime.imports.run(
        runtime.database,
        io.BytesIO(csv_file("email", "ann@example.com", "bob@example.com")),
        filename="c.csv",
        options=ImportOptions(),
    )
    runtime.imports.run(
        runtime.database,
        io.BytesIO(csv_file("email", "carl@example.com")),
        filename="c.csv",
        options=ImportOptions(run_automations=True),
    )
    run_until_idle(runtime)
    with runtime.database.transaction(read_only=True) as session:
        page = runtime.contacts.list_contacts(
            session, ContactFilter(tag="welcomed"), cursor=None, limit=10
        )
        welcomed = {c.email for c in page.items}
        assert len(history(session, ann)) == 1
    assert welcomed == {"ann@example.com", "carl@example.com"}
