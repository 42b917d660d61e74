"""The lifecycle API over HTTP: the pipeline, a contact's stage and its history."""

from __future__ import annotations

from datetime import timedelta

import httpx

from postillon.clock import VirtualClock
from postillon.runtime import Runtime
from tests.lifecycle.support import clear_queue, queued, stage_events

DEFAULT_KEYS = ["subscriber", "lead", "mql", "sql", "opportunity", "customer", "churned"]


def keys(api: httpx.Client) -> list[str]:
    return [s["key"] for s in api.get("/api/lifecycle/stages").json()["stages"]]


def test_the_default_pipeline_with_counts(api: httpx.Client) -> None:
    api.post("/api/contacts", json={"email": "ann@example.com", "lifecycle_stage": "lead"})
    stages = api.get("/api/lifecycle/stages").json()["stages"]
    assert [s["key"] for s in stages] == DEFAULT_KEYS
    assert stages[2] == {"key": "mql", "name": "Marketing qualified lead", "position": 2,
                         "contacts": 0}  # fmt: skip
    assert stages[1]["contacts"] == 1


def test_the_pipeline_is_replaced(api: httpx.Client, runtime: Runtime) -> None:
    ann = api.post("/api/contacts", json={"email": "ann@example.com", "lifecycle_stage": "mql"})
    bob = api.post("/api/contacts", json={"email": "bob@example.com", "lifecycle_stage": "lead"})
    clear_queue(runtime)
    response = api.put(
        "/api/lifecycle/stages",
        json={
            "stages": [
                {"key": "lead", "name": "Lead"},
                {"key": "trial", "name": "Trial user"},
                {"key": "mql", "name": "MQL"},
                {"key": "customer", "name": "Customer"},
            ]
        },
    )
    assert response.status_code == 200, response.text
    assert [(s["key"], s["name"], s["position"]) for s in response.json()["stages"]] == [
        ("lead", "Lead", 0),
        ("trial", "Trial user", 1),
        ("mql", "MQL", 2),
        ("customer", "Customer", 3),
    ]
    assert keys(api) == ["lead", "trial", "mql", "customer"]
    # Filters may compare stages by order: contacts whose stage moved place are queued.
    assert {str(i) for i in queued(runtime)} == {bob.json()["id"]}
    moved = api.put(f"/api/contacts/{ann.json()['id']}/stage", json={"stage": "trial"})
    assert moved.json()["lifecycle_stage"] == "trial"
    assert stage_events(runtime, ann.json()["id"])[-1]["direction"] == "backward"
    refused = api.post("/api/contacts", json={"email": "cid@example.com", "lifecycle_stage": "sql"})
    assert refused.status_code == 422
    assert "stages are lead, trial, mql, customer" in refused.json()["message"]


def test_a_stage_with_contacts_cannot_be_removed(api: httpx.Client) -> None:
    api.post("/api/contacts", json={"email": "ann@example.com", "lifecycle_stage": "mql"})
    api.post("/api/contacts", json={"email": "bob@example.com", "lifecycle_stage": "mql"})
    response = api.put("/api/lifecycle/stages", json={"stages": [{"key": "lead", "name": "Lead"}]})
    assert response.status_code == 409
    body = response.json()
    assert body["error"] == "conflict"
    assert "'mql'" in body["message"]
    assert body["problems"] == [
        {
            "loc": "stages",
            "msg": "stage 'mql' still has 2 contact(s); move them to another stage before "
            "removing it",
        }
    ]
    assert keys(api) == DEFAULT_KEYS


def test_bad_pipelines_name_each_problem(api: httpx.Client) -> None:
    response = api.put(
        "/api/lifecycle/stages",
        json={
            "stages": [
                {"key": "lead", "name": "Lead"},
                {"key": "Big Deal", "name": "Big deal"},
                {"key": "lead", "name": ""},
                {"key": "x" * 51, "name": "Long"},
            ]
        },
    )
    assert response.status_code == 422
    assert [p["loc"] for p in response.json()["problems"]] == [
        "stages[1].key",
        "stages[2].key",
        "stages[2].name",
        "stages[3].key",
    ]
    assert api.put("/api/lifecycle/stages", json={"stages": []}).json()["problems"] == [
        {"loc": "stages", "msg": "give at least one stage"}
    ]
    malformed = api.put("/api/lifecycle/stages", json={"stages": [{"key": "lead"}]})
    assert malformed.status_code == 422
    assert malformed.json()["problems"][0]["loc"] == "stages[0].name"
    assert keys(api) == DEFAULT_KEYS


def test_a_contacts_stage_and_its_history(api: httpx.Client, clock: VirtualClock) -> None:
    ann = api.post("/api/contacts", json={"email": "ann@example.com"}).json()
    url = f"/api/contacts/{ann['id']}"
    for stage in ("lead", "mql", "lead"):
        clock.advance(timedelta(hours=1))
        response = api.put(f"{url}/stage", json={"stage": stage, "source": "sales call"})
        assert response.status_code == 200, response.text
        assert response.json()["lifecycle_stage"] == stage
    unchanged = api.put(f"{url}/stage", json={"stage": "lead"})
    assert unchanged.status_code == 200

    page = api.get(f"{url}/stage-history", params={"limit": 2}).json()
    assert [(c["from_stage"], c["to_stage"]) for c in page["items"]] == [
        ("mql", "lead"),
        ("lead", "mql"),
    ]
    assert page["items"][0]["source"] == "sales call"
    rest = api.get(f"{url}/stage-history", params={"cursor": page["next_cursor"]}).json()
    assert [(c["from_stage"], c["to_stage"]) for c in rest["items"]] == [(None, "lead")]
    assert rest["next_cursor"] is None


def test_bad_stage_requests_are_4xx(api: httpx.Client) -> None:
    ann = api.post("/api/contacts", json={"email": "ann@example.com"}).json()
    url = f"/api/contacts/{ann['id']}"
    unknown = api.put(f"{url}/stage", json={"stage": "royalty"})
    assert unknown.status_code == 422
    assert unknown.json()["problems"][0]["loc"] == "stage"
    assert api.put(f"{url}/stage", json={}).json()["problems"][0]["loc"] == "stage"
    long_source = api.put(f"{url}/stage", json={"stage": "lead", "source": "x" * 101})
    assert long_source.json()["problems"][0]["loc"] == "source"
    missing = "01a20368-2f16-7142-9eef-ef47e9a8a22c"
    assert api.put(f"/api/contacts/{missing}/stage", json={"stage": "lead"}).status_code == 404
    assert api.get(f"/api/contacts/{missing}/stage-history").status_code == 404
    bad_cursor = api.get(f"{url}/stage-history", params={"cursor": "nope"})
    assert bad_cursor.status_code == 422
    assert bad_cursor.json()["problems"][0]["loc"] == "cursor"
    assert api.get("/api/lifecycle/stages", headers={"Authorization": ""}).status_code == 401
