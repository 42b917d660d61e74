"""`/api/automations` over HTTP: documents as YAML or JSON, every problem with its line,
versions, statuses, and a contact's journeys and automation history."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import httpx
import yaml

from postillon.automations import history
from postillon.clock import VirtualClock
from postillon.runtime import Runtime
from tests.automations.support import (
    ABANDONED_CART,
    LEAD_RULE,
    add_contact,
    add_run,
    add_templates,
    automation_id,
    record,
)

YAML = {"Content-Type": "application/yaml"}


def put_yaml(api: httpx.Client, key: str, text: str) -> httpx.Response:
    return api.put(f"/api/automations/{key}", content=text.encode(), headers=YAML)


def locations(response: httpx.Response) -> list[tuple[str, str]]:
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == "invalid_input"
    return [(p["loc"], p["msg"]) for p in body["problems"]]


def test_documents_are_saved_from_yaml_and_json(api: httpx.Client, runtime: Runtime) -> None:
    add_templates(runtime)
    created = put_yaml(api, "abandoned-cart", ABANDONED_CART)
    assert created.status_code == 201, created.text
    assert created.json()["status"] == "draft"
    assert created.json()["draft_source"] == ABANDONED_CART

    again = put_yaml(api, "abandoned-cart", ABANDONED_CART.replace("Abandoned cart", "Carts"))
    assert again.status_code == 200, again.text
    assert again.json()["name"] == "Carts"

    doc = yaml.safe_load(LEAD_RULE)
    as_json = json.dumps(doc, indent=2)
    rule = api.put(
        "/api/automations/lead-to-mql",
        content=as_json,
        headers={"Content-Type": "application/json"},
    )
    assert rule.status_code == 201, rule.text
    assert rule.json()["draft"] == doc
    assert rule.json()["draft_source"] == as_json

    got = api.get("/api/automations/abandoned-cart").json()
    assert (got["kind"], got["name"], got["published_version"], got["runs"]) == (
        "journey",
        "Carts",
        None,
        {},
    )
    assert api.get("/api/automations/lead-to-mql").json()["runs"] is None


def test_every_problem_is_named_with_its_line(api: httpx.Client, runtime: Runtime) -> None:
    add_templates(runtime)
    unknown = put_yaml(api, "abandoned-cart", ABANDONED_CART.replace("send: vip}", "send: vipp}"))
    assert locations(unknown) == [
        ("document line 20: steps[5].send", "no template has the key 'vipp' (did you mean 'vip'?)")
    ]
    broken = put_yaml(api, "abandoned-cart", "kind: journey\nkey: [\n")
    assert locations(broken)[0][0] == "document line 3, column 1"

    loop = ABANDONED_CART.replace(
        "{id: done, exit: {}}", "{id: done, if: {tag: x}, then: vip-mail}"
    )
    assert locations(put_yaml(api, "abandoned-cart", loop)) == [
        ("document line 20: steps[5]", "is part of a loop without a wait: a run would never stop")
    ]

    # A JSON body written over several lines gets its lines too.
    doc: dict[str, Any] = yaml.safe_load(ABANDONED_CART)
    doc["steps"][0]["wait"] = "an hour"
    doc["on_cap"] = 3
    text = json.dumps(doc, indent=2)
    response = api.put("/api/automations/abandoned-cart", content=text)
    lines = text.splitlines()
    found = dict(locations(response))
    cap_line = next(i for i, line in enumerate(lines, 1) if '"on_cap"' in line)
    assert found[f"document line {cap_line}: on_cap"] == "must be one of wait, skip, exit"
    wait_line = next(i for i, line in enumerate(lines, 1) if '"an hour"' in line)
    assert f"document line {wait_line}: steps[0].wait" in found

    assert api.get("/api/automations").json()["items"] == []


def test_bad_bodies_are_4xx_never_500(api: httpx.Client, runtime: Runtime) -> None:
    add_templates(runtime)
    cases: list[tuple[bytes, dict[str, str], int, str]] = [
        (b"{not json", {}, 422, "body"),
        (b"[1, 2]", {}, 422, "body"),
        (b"kind: rule", {"Content-Type": "text/csv"}, 422, "Content-Type"),
        (b"\xff\xfe", YAML, 422, "body"),
        (b"[" * 3000 + b"]" * 3000, {}, 422, "body"),
        (b"[" * 3000, YAML, 422, "document"),
        (b'{"kind": "rule", "key": "x", "name": 1e400}', {}, 422, "body"),
        (
            b'{"kind": "journey", "key": "x", "n": 123456789012345678901234567890}',
            {},
            422,
            "document line 1: n",
        ),
        (b"x: " + b"y" * 4_100_000, YAML, 413, "body"),
    ]
    for body, headers, status, where in cases:
        response = api.put("/api/automations/x", content=body, headers=headers)
        assert response.status_code == status, (body[:30], response.text[:300])
        problems = response.json().get("problems", [{"loc": ""}])
        assert problems[0]["loc"].startswith(where), (body[:30], response.text[:300])

    wrong_key = api.put("/api/automations/other", json=yaml.safe_load(LEAD_RULE))
    assert locations(wrong_key) == [
        ("document line 1: key", "must be 'other', the key in the address")
    ]
    bad_key = api.put("/api/automations/Not%20A%20Key", json={"kind": "rule"})
    assert (
        "document line 1: key",
        "must be 1-100 of a-z, 0-9, - and _, starting with a letter or digit",
    ) in locations(bad_key)

    assert put_yaml(api, "lead-to-mql", LEAD_RULE).status_code == 201
    as_journey = ABANDONED_CART.replace("key: abandoned-cart", "key: lead-to-mql")
    conflict = put_yaml(api, "lead-to-mql", as_journey)
    assert conflict.status_code == 409
    assert conflict.json()["error"] == "conflict"


def test_validate_checks_without_saving(api: httpx.Client, runtime: Runtime) -> None:
    add_templates(runtime)
    valid = api.post("/api/automations/validate", content=ABANDONED_CART, headers=YAML)
    assert valid.status_code == 200, valid.text
    assert valid.json() == {"valid": True, "kind": "journey", "key": "abandoned-cart"}
    invalid = api.post(
        "/api/automations/validate", json={**yaml.safe_load(LEAD_RULE), "cooldown": "ever"}
    )
    assert locations(invalid) == [
        ("document line 1: cooldown", "must be a duration such as 30m, 1h, 3d, 2w or 1d12h")
    ]
    assert api.get("/api/automations").json()["items"] == []


def test_publish_pause_resume_archive_and_versions(
    api: httpx.Client, runtime: Runtime, clock: VirtualClock
) -> None:
    add_templates(runtime)
    ann = add_contact(runtime)
    assert put_yaml(api, "abandoned-cart", ABANDONED_CART).status_code == 201
    assert api.post("/api/automations/abandoned-cart/pause").status_code == 409

    published = api.post("/api/automations/abandoned-cart/publish")
    assert published.status_code == 200, published.text
    assert published.json() | {"message": ""} == {
        "key": "abandoned-cart",
        "kind": "journey",
        "version": 1,
        "new_version": True,
        "status": "active",
        "migrated_runs": 0,
        "message": "",
    }
    with runtime.database.transaction() as session:
        journey = automation_id(session, "abandoned-cart")
        add_run(
            session,
            journey_id=journey,
            contact_id=ann,
            version=1,
            step_id="reminder",
            entered_at=clock.now(),
        )
    put_yaml(api, "abandoned-cart", ABANDONED_CART.replace("wait: 1h", "wait: 2h"))
    second = api.post("/api/automations/abandoned-cart/publish", json={"migrate": True})
    assert (second.json()["version"], second.json()["migrated_runs"]) == (2, 1)
    unchanged = api.post("/api/automations/abandoned-cart/publish", json={"migrate": False})
    assert (unchanged.json()["version"], unchanged.json()["new_version"]) == (2, False)

    versions = api.get("/api/automations/abandoned-cart/versions").json()
    assert [(v["version"], v["migrated_runs"]) for v in versions] == [(2, 1), (1, 0)]
    assert "wait: 2h" in versions[0]["source"]
    assert api.get("/api/automations/abandoned-cart").json()["runs"] == {"active": 1}

    paused = api.post("/api/automations/abandoned-cart/pause")
    assert (paused.status_code, paused.json()["status"]) == (200, "paused")
    listed = api.get("/api/automations", params={"status": "paused"}).json()
    assert [(a["key"], a["active_runs"]) for a in listed["items"]] == [("abandoned-cart", 1)]
    assert api.post("/api/automations/abandoned-cart/resume").json()["status"] == "active"

    refused = api.post("/api/automations/abandoned-cart/archive")
    assert refused.status_code == 409
    assert "archive with force" in refused.json()["message"]
    archived = api.post("/api/automations/abandoned-cart/archive", json={"force": True})
    assert archived.status_code == 200, archived.text
    assert (archived.json()["status"], archived.json()["ended_runs"]) == ("archived", 1)

    assert api.post("/api/automations/nothing/publish").status_code == 404
    assert api.get("/api/automations/nothing").status_code == 404
    assert api.get("/api/automations/nothing/versions").status_code == 404


def test_list_pages_and_filters(api: httpx.Client, runtime: Runtime) -> None:
    add_templates(runtime)
    for key in ("c-rule", "a-rule", "b-rule"):
        put_yaml(api, key, LEAD_RULE.replace("key: lead-to-mql", f"key: {key}"))
    put_yaml(api, "abandoned-cart", ABANDONED_CART)
    first = api.get("/api/automations", params={"kind": "rule", "limit": 2}).json()
    assert [a["key"] for a in first["items"]] == ["a-rule", "b-rule"]
    rest = api.get(
        "/api/automations", params={"kind": "rule", "limit": 2, "cursor": first["next_cursor"]}
    ).json()
    assert ([a["key"] for a in rest["items"]], rest["next_cursor"]) == (["c-rule"], None)
    journeys = api.get("/api/automations", params={"kind": "journey"}).json()["items"]
    assert [(a["key"], a["active_runs"]) for a in journeys] == [("abandoned-cart", 0)]
    assert api.get("/api/automations", params={"kind": "flow"}).status_code == 422
    assert api.get("/api/automations", params={"cursor": "x"}).status_code == 422


def test_a_contacts_journeys_and_history(
    api: httpx.Client, runtime: Runtime, clock: VirtualClock
) -> None:
    add_templates(runtime)
    ann = add_contact(runtime)
    put_yaml(api, "abandoned-cart", ABANDONED_CART)
    api.post("/api/automations/abandoned-cart/publish")
    put_yaml(api, "lead-to-mql", LEAD_RULE)
    start = clock.now()
    with runtime.database.transaction() as session:
        journey = automation_id(session, "abandoned-cart")
        rule = automation_id(session, "lead-to-mql")
        run = add_run(
            session,
            journey_id=journey,
            contact_id=ann,
            version=1,
            step_id="bought",
            state="waiting",
            entered_at=start,
            due_at=start + timedelta(hours=24),
        )
        for minutes, step, outcome, reason in [
            (0, None, history.Outcome.entered, "entered by event cart_abandoned"),
            (0, "wait-1h", history.Outcome.waited, "waiting 1h"),
            (60, "reminder", history.Outcome.sent, "sent cart-reminder"),
            (60, "bought", history.Outcome.waited, "waiting for order_completed until …"),
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
            automation=rule,
            outcome=history.Outcome.not_matched,
            reason="conditions did not hold",
            at=start + timedelta(minutes=30),
        )
    journeys = api.get(f"/api/contacts/{ann}/journeys")
    assert journeys.status_code == 200, journeys.text
    (only,) = journeys.json()["runs"]
    assert (only["journey"], only["state"], only["step_id"], only["version"]) == (
        "abandoned-cart",
        "waiting",
        "bought",
        1,
    )
    assert [h["outcome"] for h in only["history"]] == ["entered", "waited", "sent", "waited"]
    assert "rule_history" not in journeys.json()

    page = api.get(f"/api/contacts/{ann}/automation-history", params={"limit": 3}).json()
    assert [(e["automation"], e["outcome"]) for e in page["items"]] == [
        ("abandoned-cart", "waited"),
        ("abandoned-cart", "sent"),
        ("lead-to-mql", "not_matched"),
    ]
    rest = api.get(
        f"/api/contacts/{ann}/automation-history",
        params={"limit": 3, "cursor": page["next_cursor"]},
    ).json()
    assert [e["outcome"] for e in rest["items"]] == ["waited", "entered"]
    assert rest["next_cursor"] is None
    rules_only = api.get(
        f"/api/contacts/{ann}/automation-history", params={"automation": "lead-to-mql"}
    ).json()
    assert [e["kind"] for e in rules_only["items"]] == ["rule"]

    missing = "0190f000-0000-7000-8000-000000000000"
    assert api.get(f"/api/contacts/{missing}/journeys").status_code == 404
    assert api.get(f"/api/contacts/{missing}/automation-history").status_code == 404
    assert api.get("/api/contacts/not-an-id/journeys").status_code == 422


def test_the_api_needs_an_admin_key(anonymous: httpx.Client, write_key: str) -> None:
    assert anonymous.get("/api/automations").status_code == 401
    response = anonymous.put(
        "/api/automations/x",
        content=LEAD_RULE,
        headers={**YAML, "Authorization": f"Bearer {write_key}"},
    )
    assert response.status_code in (401, 403)
