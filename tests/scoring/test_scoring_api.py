"""The scoring API over HTTP: models, rules, a contact's scores and history, bad input as
422 with its location, and the whole way from the tracking API to `score_reached`."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx

from postillon.clock import VirtualClock
from postillon.runtime import Runtime
from tests.tracking.support import run_worker_round


def problems(response: httpx.Response) -> dict[str, str]:
    return {p["loc"]: p["msg"] for p in response.json()["problems"]}


def test_score_models_are_created_changed_and_deleted(api: httpx.Client) -> None:
    [main] = api.get("/api/scoring/models").json()
    assert (main["key"], main["thresholds"], main["decay_percent"]) == ("main", [], None)
    created = api.post(
        "/api/scoring/models",
        json={"key": "product-interest", "name": "Product interest", "thresholds": [50, 10, 50]},
    )
    assert created.status_code == 201, created.text
    assert created.json()["thresholds"] == [10, 50]
    assert api.post("/api/scoring/models", json={"key": "product-interest", "name": "x"}).json()[
        "problems"
    ] == [{"loc": "key", "msg": "is taken"}]

    changed = api.patch(
        "/api/scoring/models/product-interest",
        json={"decay_percent": 25, "decay_after_days": 30, "description": "shoes and hats"},
    )
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert (body["decay_percent"], body["decay_after_days"], body["name"]) == (
        25, 30, "Product interest",
    )  # fmt: skip
    cleared = api.patch(
        "/api/scoring/models/product-interest",
        json={"decay_percent": None, "decay_after_days": None},
    ).json()
    assert cleared["decay_percent"] is None and cleared["description"] == "shoes and hats"

    assert api.delete("/api/scoring/models/main").status_code == 409
    assert api.delete("/api/scoring/models/product-interest").status_code == 204
    assert api.get("/api/scoring/models/product-interest").status_code == 404
    assert [m["key"] for m in api.get("/api/scoring/models").json()] == ["main"]


def test_bad_models_are_422_naming_each_field(api: httpx.Client) -> None:
    response = api.post(
        "/api/scoring/models",
        json={"key": "Shoes!", "name": " ", "decay_percent": 250, "thresholds": [1, "x"]},
    )
    assert response.status_code == 422
    assert set(problems(response)) == {"thresholds[1]"}  # types first, by pydantic
    response = api.post(
        "/api/scoring/models", json={"key": "shoes\n", "name": " ", "decay_percent": 250}
    )
    assert response.status_code == 422
    assert set(problems(response)) == {"key", "name", "decay_percent"}
    response = api.patch("/api/scoring/models/main", json={"decay_after_days": 0})
    assert set(problems(response)) == {"decay_percent", "decay_after_days"}
    assert api.patch("/api/scoring/models/main", json={"name": None}).status_code == 422


def rule(**fields: Any) -> dict[str, Any]:
    return {"name": "viewed shoes", "event": "Product Viewed", "points": 5, **fields}


def test_rules_are_created_listed_changed_and_deleted(api: httpx.Client) -> None:
    where = {"all": [{"property": "category", "op": "=", "value": "shoes"}]}
    created = api.post("/api/scoring/rules", json=rule(where=where, daily_limit=20))
    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["model"], body["frequency"], body["where"], body["enabled"]) == (
        "main", "repeatable", where, True,
    )  # fmt: skip
    rule_id = body["id"]
    api.post("/api/scoring/models", json={"key": "shoes", "name": "Shoes"})
    other = api.post("/api/scoring/rules", json=rule(event="Order Completed", model="shoes"))
    assert [r["id"] for r in api.get("/api/scoring/rules").json()] == [rule_id, other.json()["id"]]
    assert [r["id"] for r in api.get("/api/scoring/rules", params={"model": "shoes"}).json()] == [
        other.json()["id"]
    ]
    assert [
        r["id"] for r in api.get("/api/scoring/rules", params={"event": "Product Viewed"}).json()
    ] == [rule_id]

    changed = api.patch(
        f"/api/scoring/rules/{rule_id}",
        json={"where": None, "daily_limit": None, "frequency": "once", "enabled": False},
    ).json()
    assert (changed["where"], changed["daily_limit"], changed["frequency"]) == (None, None, "once")
    assert changed["points"] == 5 and changed["enabled"] is False
    assert api.get(f"/api/scoring/rules/{rule_id}").json() == changed
    assert api.delete(f"/api/scoring/rules/{rule_id}").status_code == 204
    assert api.get(f"/api/scoring/rules/{rule_id}").status_code == 404
    # Deleting a model takes its rules with it.
    assert api.delete("/api/scoring/models/shoes").status_code == 204
    assert api.get("/api/scoring/rules").json() == []


def test_bad_rules_are_422_with_the_location_in_the_body(api: httpx.Client) -> None:
    response = api.post(
        "/api/scoring/rules",
        json=rule(
            where={"all": [{"property": "category", "op": "=", "value": {"nested": 1}}]},
            points=0,
            model="nope",
            daily_limit=0,
        ),
    )
    assert response.status_code == 422
    assert set(problems(response)) == {"where.all[0].value", "points", "model", "daily_limit"}
    response = api.post("/api/scoring/rules", json=rule(where={"any": [{"op": "bogus"}]}))
    assert response.status_code == 422
    assert "where.any[0]" in next(iter(problems(response)))
    response = api.post("/api/scoring/rules", json=rule(frequency="sometimes", extra=1))
    assert set(problems(response)) == {"frequency", "extra"}
    rule_id = api.post("/api/scoring/rules", json=rule()).json()["id"]
    response = api.patch(
        f"/api/scoring/rules/{rule_id}", json={"where": {"property": "", "op": "="}}
    )
    assert response.status_code == 422
    assert all(loc.startswith("where") for loc in problems(response))
    assert api.patch(f"/api/scoring/rules/{rule_id}", json={"points": None}).status_code == 422
    assert api.get("/api/scoring/rules/not-an-id").status_code == 422


def test_scores_are_adjusted_by_hand_and_the_history_pages_newest_first(
    api: httpx.Client, clock: VirtualClock
) -> None:
    contact = api.post("/api/contacts", json={"email": "ann@example.com"}).json()["id"]
    api.post("/api/scoring/models", json={"key": "shoes", "name": "Shoes", "thresholds": [10]})
    for delta in (5, 7, -2):
        response = api.post(
            f"/api/contacts/{contact}/scores",
            json={"model": "shoes", "delta": delta, "reason": "trade fair"},
        )
        assert response.status_code == 200, response.text
        clock.advance(timedelta(minutes=1))
    api.post(f"/api/contacts/{contact}/scores", json={"delta": 3})
    assert api.get(f"/api/contacts/{contact}/scores").json() == [
        {"model": "main", "name": "Lead score", "score": 3},
        {"model": "shoes", "name": "Shoes", "score": 10},
    ]
    assert api.get(f"/api/contacts/{contact}").json()["score"] == 3

    first = api.get(f"/api/contacts/{contact}/score-history", params={"limit": 3}).json()
    assert [(c["model"], c["delta"], c["score"]) for c in first["items"]] == [
        ("main", 3, 3), ("shoes", -2, 10), ("shoes", 7, 12),
    ]  # fmt: skip
    assert first["items"][1]["reason"] == "api" and first["items"][1]["note"] == "trade fair"
    rest = api.get(
        f"/api/contacts/{contact}/score-history",
        params={"limit": 3, "cursor": first["next_cursor"]},
    ).json()
    assert [c["delta"] for c in rest["items"]] == [5] and rest["next_cursor"] is None
    only_main = api.get(f"/api/contacts/{contact}/score-history", params={"model": "main"})
    assert [c["delta"] for c in only_main.json()["items"]] == [3]
    # 5 → 12 crossed 10; 12 → 10 did not cross it again.
    timeline = api.get(f"/api/contacts/{contact}/events", params={"name": "score_reached"})
    assert [e["properties"] for e in timeline.json()["items"]] == [
        {"model": "shoes", "threshold": 10, "score": 12}
    ]


def test_bad_adjustments_and_unknown_contacts(api: httpx.Client) -> None:
    contact = api.post("/api/contacts", json={"email": "ann@example.com"}).json()["id"]
    missing = "0190a3c0-0000-7000-8000-000000000000"
    url = f"/api/contacts/{contact}/scores"
    assert problems(api.post(url, json={"model": "nope", "delta": 1})) == {
        "model": "no score model with key 'nope'"
    }
    assert set(problems(api.post(url, json={"delta": 10**9}))) == {"delta"}
    assert set(problems(api.post(url, json={"delta": "many"}))) == {"delta"}
    assert api.post(f"/api/contacts/{missing}/scores", json={"delta": 1}).status_code == 404
    assert api.get(f"/api/contacts/{missing}/scores").status_code == 404
    assert api.get(f"/api/contacts/{missing}/score-history").status_code == 404
    history = f"/api/contacts/{contact}/score-history"
    assert api.get(history, params={"cursor": "garbage!"}).status_code == 422
    for cursor in ("WyJ4Il0", "W10"):  # ["x"], []
        assert api.get(history, params={"cursor": cursor}).status_code == 422


def test_tracked_events_score_through_the_worker_up_to_score_reached(
    api: httpx.Client, tracker: httpx.Client, runtime: Runtime
) -> None:
    api.patch("/api/scoring/models/main", json={"thresholds": [25]})
    api.post("/api/scoring/models", json={"key": "shoes", "name": "Shoes"})
    where = {"property": "category", "op": "=", "value": "shoes"}
    api.post("/api/scoring/rules", json=rule(points=10, where=where))
    api.post("/api/scoring/rules", json=rule(points=1, model="shoes", daily_limit=2))
    api.post("/api/scoring/rules", json=rule(name="bought", event="Order Completed", points=20))
    for n, (event, category) in enumerate(
        [("Product Viewed", "shoes"), ("Product Viewed", "hats"), ("Product Viewed", "shoes")]
    ):
        response = tracker.post(
            "/v1/track",
            json={"userId": "u-1", "event": event, "properties": {"category": category},
                  "messageId": f"m-{n}"},
        )  # fmt: skip
        assert response.status_code == 200, response.text
    run_worker_round(runtime)
    [contact] = api.get("/api/contacts", params={"external_id": "u-1"}).json()["items"]
    scores = api.get(f"/api/contacts/{contact['id']}/scores").json()
    assert {s["model"]: s["score"] for s in scores} == {"main": 20, "shoes": 2}
    assert (
        api.get(f"/api/contacts/{contact['id']}/events", params={"name": "score_reached"}).json()[
            "items"
        ]
        == []
    )

    tracker.post("/v1/track", json={"userId": "u-1", "event": "Order Completed"})
    run_worker_round(runtime)
    timeline = api.get(f"/api/contacts/{contact['id']}/events").json()["items"]
    assert timeline[0]["name"] == "score_reached" and timeline[0]["type"] == "internal"
    assert timeline[0]["properties"] == {"model": "main", "threshold": 25, "score": 40}
    history = api.get(f"/api/contacts/{contact['id']}/score-history").json()["items"]
    assert [(c["model"], c["delta"], c["reason"]) for c in history] == [
        ("main", 20, "rule"), ("main", 10, "rule"), ("shoes", 1, "rule"),
        ("shoes", 1, "rule"), ("main", 10, "rule"),
    ]  # fmt: skip
    assert all(c["event_id"] is not None and c["rule_id"] is not None for c in history)
