"""`/api/topics`: the seeded topics, and their CRUD behind the admin key."""

from __future__ import annotations

import httpx

from postillon.runtime import Runtime
from tests.messages.email_support import create_template


def test_seeded_topics_and_crud(api: httpx.Client, anonymous: httpx.Client) -> None:
    assert anonymous.get("/api/topics").status_code == 401
    seeded = api.get("/api/topics").json()
    assert [t["key"] for t in seeded] == ["newsletter", "offers", "product-news"]
    created = api.post("/api/topics", json={"key": "events", "name": "Events"})
    assert created.status_code == 201
    assert (created.json()["position"], created.json()["description"]) == (3, None)
    changed = api.patch("/api/topics/events", json={"name": "Events & talks", "position": 0})
    assert changed.json()["name"] == "Events & talks"
    assert api.get("/api/topics").json()[0]["key"] == "events"
    assert api.delete("/api/topics/events").status_code == 204
    assert api.get("/api/topics/events").status_code == 404


def test_bad_topics_are_named(api: httpx.Client, runtime: Runtime) -> None:
    bad_key = api.post("/api/topics", json={"key": "Not OK!", "name": "x"})
    assert bad_key.status_code == 422
    assert bad_key.json()["problems"][0]["loc"] == "key"
    assert api.post("/api/topics", json={"key": "offers", "name": "x"}).status_code == 409
    assert api.post("/api/topics", json={"key": "x"}).status_code == 422
    assert api.patch("/api/topics/offers", json={"name": None}).status_code == 422
    assert api.patch("/api/topics/nope", json={"name": "x"}).status_code == 404
    with runtime.database.transaction() as session:
        create_template(session, runtime, key="deals", topic="offers")
    in_use = api.delete("/api/topics/offers")
    assert in_use.status_code == 409
    assert "deals" in in_use.json()["message"]
