"""Segments over HTTP: save, preview, members kept current as contacts change and time
passes, entry/exit events, exports."""

from __future__ import annotations

import csv
import hashlib
import io
from datetime import timedelta
from typing import Any

import httpx
import pytest

from postillon.clock import VirtualClock
from postillon.runtime import Runtime
from tests.tracking.support import run_worker_round


@pytest.fixture
def api(server_url: str, admin_key: str) -> httpx.Client:
    return httpx.Client(
        base_url=server_url, headers={"Authorization": f"Bearer {admin_key}"}, timeout=30
    )


def _contact(api: httpx.Client, **data: Any) -> str:
    response = api.post("/api/contacts", json=data)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _member_emails(api: httpx.Client, key: str) -> set[str]:
    response = api.get(f"/api/segments/{key}/members", params={"limit": 500})
    assert response.status_code == 200, response.text
    return {item["email"] for item in response.json()["items"]}


SPORTS_FANS = {
    "all": [
        {"tag": "sports-fan"},
        {"attribute": "birthday", "op": "age_between", "value": [20, 35]},
    ]
}


def test_create_preview_and_members(api: httpx.Client) -> None:
    _contact(
        api, email="young@example.com", tags=["sports-fan"], attributes={"birthday": "2000-05-01"}
    )
    _contact(
        api, email="old@example.com", tags=["sports-fan"], attributes={"birthday": "1950-05-01"}
    )
    _contact(api, email="notag@example.com", attributes={"birthday": "2000-05-01"})

    preview = api.post("/api/segments/preview", json={"filter": SPORTS_FANS, "sample_size": 5})
    assert preview.status_code == 200, preview.text
    assert preview.json()["count"] == 1
    assert [c["email"] for c in preview.json()["sample"]] == ["young@example.com"]

    created = api.post(
        "/api/segments",
        json={"key": "young-fans", "name": "Young sports fans", "filter": SPORTS_FANS},
    )
    assert created.status_code == 201, created.text
    assert created.json()["member_count"] == 1
    assert _member_emails(api, "young-fans") == {"young@example.com"}
    listed = api.get("/api/segments").json()
    assert [s["key"] for s in listed] == ["young-fans"]


def test_bad_filters_name_the_node(api: httpx.Client) -> None:
    bad = {"all": [{"tag": "vip"}, {"attribute": "age", "op": "between", "value": [30, 20]}]}
    response = api.post("/api/segments", json={"key": "x", "name": "X", "filter": bad})
    assert response.status_code == 422
    assert response.json()["problems"][0]["loc"] == "filter.all[1].value"

    unknown = {"any": [{"in_segment": "nope"}, {"field": "colour", "op": "=", "value": 1}]}
    response = api.post("/api/segments/preview", json={"filter": unknown})
    assert response.status_code == 422
    locations = {p["loc"] for p in response.json()["problems"]}
    assert locations == {"filter.any[0].in_segment", "filter.any[1].field"}

    response = api.post(
        "/api/segments", json={"key": "bad key!", "name": "X", "filter": {"tag": "a"}}
    )
    assert response.status_code == 422


def test_segments_using_segments_and_circles(api: httpx.Client) -> None:
    _contact(api, email="a@example.com", tags=["vip"], consent={"email": "subscribed"})
    assert (
        api.post(
            "/api/segments", json={"key": "vip", "name": "VIP", "filter": {"tag": "vip"}}
        ).status_code
        == 201
    )
    mailable = {"all": [{"in_segment": "vip"}, {"consent": "email"}]}
    created = api.post(
        "/api/segments", json={"key": "vip-mailable", "name": "M", "filter": mailable}
    )
    assert created.json()["member_count"] == 1

    circle = api.patch("/api/segments/vip", json={"filter": {"in_segment": "vip-mailable"}})
    assert circle.status_code == 409
    assert "circle" in circle.json()["message"]
    in_use = api.delete("/api/segments/vip")
    assert in_use.status_code == 409
    assert api.delete("/api/segments/vip-mailable").status_code == 204
    assert api.delete("/api/segments/vip").status_code == 204
    assert api.get("/api/segments/vip").status_code == 404


def test_membership_follows_changes_and_events(
    api: httpx.Client, tracker: httpx.Client, runtime: Runtime
) -> None:
    contact_id = _contact(api, email="shopper@example.com", external_id="u-1")
    viewers = {
        "all": [
            {
                "performed": "Product Viewed",
                "where": {"property": "category", "op": "=", "value": "shoes"},
                "times": {"at_least": 3},
                "within_last_days": 30,
            },
            {"never_performed": "Order Completed", "within_last_days": 30},
        ]
    }
    api.post("/api/segments", json={"key": "viewers", "name": "Viewed shoes", "filter": viewers})
    api.post("/api/segments", json={"key": "vip", "name": "VIP", "filter": {"tag": "vip"}})

    for _ in range(3):
        sent = tracker.post(
            "/v1/track",
            json={"userId": "u-1", "event": "Product Viewed", "properties": {"category": "shoes"}},
        )
        assert sent.status_code == 200
    run_worker_round(runtime)
    assert _member_emails(api, "viewers") == {"shopper@example.com"}

    tracker.post(
        "/v1/track", json={"userId": "u-1", "event": "Order Completed", "properties": {"total": 20}}
    )
    api.post(f"/api/contacts/{contact_id}/tags", json={"tags": ["vip"]})
    run_worker_round(runtime)
    assert _member_emails(api, "viewers") == set()
    assert _member_emails(api, "vip") == {"shopper@example.com"}

    history = api.get(f"/api/contacts/{contact_id}/segments").json()
    viewers_stays = [h for h in history if h["segment"] == "viewers"]
    assert len(viewers_stays) == 1 and viewers_stays[0]["exited_at"] is not None
    timeline = api.get(f"/api/contacts/{contact_id}/events", params={"limit": 100}).json()["items"]
    names = [(e["name"], e["properties"].get("segment")) for e in timeline]
    assert ("segment_entered", "viewers") in names
    assert ("segment_exited", "viewers") in names
    assert ("segment_entered", "vip") in names

    removed = api.delete(f"/api/contacts/{contact_id}/tags", params={"tag": "vip"})
    assert removed.status_code == 200, removed.text
    run_worker_round(runtime)
    assert _member_emails(api, "vip") == set()
    assert api.get("/api/segments/vip").json()["member_count"] == 0


def test_segments_using_segments_settle_in_one_incremental_pass(
    api: httpx.Client, runtime: Runtime
) -> None:
    contact_id = _contact(api, email="dep@example.com")
    segments = {
        "vip": {"tag": "vip"},
        "vip-or-new": {"any": [{"in_segment": "vip"}, {"tag": "new"}]},
        "not-vip": {"not": {"in_segment": "vip-or-new"}},
        "tagged": {"tag": "other"},
    }
    for key, document in segments.items():
        api.post("/api/segments", json={"key": key, "name": key, "filter": document})
    assert _member_emails(api, "not-vip") == {"dep@example.com"}

    api.post(f"/api/contacts/{contact_id}/tags", json={"tags": ["vip", "other"]})
    run_worker_round(runtime)
    assert _member_emails(api, "vip") == {"dep@example.com"}
    assert _member_emails(api, "vip-or-new") == {"dep@example.com"}
    assert _member_emails(api, "not-vip") == set()
    assert _member_emails(api, "tagged") == {"dep@example.com"}


def test_time_relative_conditions_refresh_on_schedule(
    api: httpx.Client, tracker: httpx.Client, runtime: Runtime, clock: VirtualClock
) -> None:
    _contact(api, email="fan@example.com", external_id="u-2")
    tracker.post("/v1/track", json={"userId": "u-2", "event": "Product Viewed", "properties": {}})
    run_worker_round(runtime)
    recent = {"performed": "Product Viewed", "within_last_days": 7}
    api.post("/api/segments", json={"key": "recent", "name": "Recent", "filter": recent})
    assert _member_emails(api, "recent") == {"fan@example.com"}

    clock.advance(timedelta(days=6, hours=23))
    run_worker_round(runtime)
    assert _member_emails(api, "recent") == {"fan@example.com"}
    clock.advance(timedelta(hours=2))
    run_worker_round(runtime)
    assert _member_emails(api, "recent") == set()
    assert api.get("/api/segments/recent").json()["refreshed_at"] is not None


def test_exports(api: httpx.Client) -> None:
    _contact(api, email="Ann@Example.com", first_name="=cmd", phone="+49 30 1234567", tags=["x"])
    _contact(api, email="bob@example.com", tags=["x"])
    api.post("/api/segments", json={"key": "x", "name": "X", "filter": {"tag": "x"}})

    exported = api.get("/api/segments/x/export.csv")
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert {r["email"] for r in rows} == {"ann@example.com", "bob@example.com"}
    ann = next(r for r in rows if r["email"] == "ann@example.com")
    assert ann["first_name"] == "'=cmd"  # not a formula in a spreadsheet
    assert ann["phone"] == "+49301234567"

    audience = api.get("/api/segments/x/audience.csv", params={"platform": "meta"})
    lines = list(csv.DictReader(io.StringIO(audience.text)))
    sha = lambda text: hashlib.sha256(text.encode()).hexdigest()  # noqa: E731
    assert {r["email_sha256"] for r in lines} == {sha("ann@example.com"), sha("bob@example.com")}
    assert sha("49301234567") in {r["phone_sha256"] for r in lines}
    google = api.get("/api/segments/x/audience.csv").text
    assert sha("+49301234567") in google
    assert api.get("/api/segments/x/audience.csv", params={"platform": "x"}).status_code == 422
    assert api.get("/api/segments/nope/export.csv").status_code == 404
