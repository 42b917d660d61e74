"""The contacts admin API, over HTTP against a live server, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx

from postillon.clock import VirtualClock

ANN = {
    "email": "Ann.Smith@Example.COM",
    "external_id": "crm-1",
    "first_name": "Ann",
    "last_name": "Smith",
    "phone": "+49 151 12345678",
    "attributes": {"birthday": "1990-04-01", "orders": 3, "vip": True, "sports": ["tennis"]},
    "tags": ["newsletter", "vip"],
    "consent": {"email": {"status": "subscribed", "source": "signup form"}},
    "score": 10,
    "lifecycle_stage": "lead",
    "timezone": "Europe/Berlin",
    "locale": "de_DE",
}


def create(api: httpx.Client, **fields: Any) -> dict[str, Any]:
    response = api.post("/api/contacts", json=fields)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def test_a_contact_is_created_normalised_and_read_back(api: httpx.Client) -> None:
    contact = create(api, **ANN)
    assert contact["email"] == "ann.smith@example.com"
    assert contact["phone"] == "+4915112345678"
    assert contact["locale"] == "de-DE"
    assert contact["tags"] == ["newsletter", "vip"]
    assert contact["consent"]["email"]["status"] == "subscribed"
    assert contact["consent"]["email"]["source"] == "signup form"
    assert contact["attributes"]["birthday"] == "1990-04-01"
    assert contact["created_at"].endswith("Z") or contact["created_at"].endswith("+00:00")
    assert api.get(f"/api/contacts/{contact['id']}").json() == contact


def test_attribute_types_are_kept_once_known(api: httpx.Client) -> None:
    create(api, email="a@example.com", attributes={"orders": 3, "birthday": "1990-04-01"})
    response = api.post(
        "/api/contacts", json={"email": "b@example.com", "attributes": {"orders": "many"}}
    )
    assert response.status_code == 422
    assert response.json()["problems"][0]["loc"] == "attributes.orders"
    assert "expected a number" in response.json()["message"]
    types = {d["name"]: d["type"] for d in api.get("/api/attributes").json()}
    assert types == {"orders": "number", "birthday": "date"}


def test_a_taken_email_or_external_id_is_a_conflict(api: httpx.Client) -> None:
    create(api, email="ann@example.com", external_id="crm-1")
    response = api.post("/api/contacts", json={"email": "ANN@example.com"})
    assert response.status_code == 409
    assert response.json()["problems"][0]["loc"] == "email"
    response = api.post("/api/contacts", json={"external_id": "crm-1"})
    assert response.status_code == 409
    assert response.json()["problems"][0]["loc"] == "external_id"


def test_bad_input_names_each_field_and_writes_nothing(api: httpx.Client) -> None:
    response = api.post(
        "/api/contacts",
        json={
            "email": "not-an-address",
            "phone": "12",
            "timezone": "Nowhere/Town",
            "lifecycle_stage": "royalty",
            "attributes": {"email": "x", "bad name": 1},
        },
    )
    assert response.status_code == 422
    locations = {p["loc"] for p in response.json()["problems"]}
    assert locations == {
        "email",
        "phone",
        "timezone",
        "lifecycle_stage",
        "attributes.email",
        "attributes.bad name",
    }
    assert api.get("/api/contacts").json()["items"] == []


def test_malformed_and_mistyped_bodies_are_422_not_500(api: httpx.Client) -> None:
    response = api.post(
        "/api/contacts", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert "not valid JSON" in response.json()["message"]
    response = api.post("/api/contacts", json={"score": "lots", "tags": "vip"})
    assert response.status_code == 422
    assert {p["loc"] for p in response.json()["problems"]} == {"score", "tags"}
    response = api.post("/api/contacts", json={"nickname": "x"})
    assert response.json()["problems"] == [{"loc": "nickname", "msg": "is not a known field"}]
    assert api.get("/api/contacts/not-a-uuid").status_code == 422


def test_partial_update_changes_only_what_is_given(api: httpx.Client, clock: VirtualClock) -> None:
    contact = create(api, **ANN)
    clock.advance(timedelta(hours=1))
    response = api.patch(
        f"/api/contacts/{contact['id']}",
        json={"first_name": "Anna", "phone": None, "attributes": {"vip": None, "orders": 4}},
    )
    assert response.status_code == 200, response.text
    updated = response.json()
    assert updated["first_name"] == "Anna"
    assert updated["phone"] is None
    assert updated["last_name"] == "Smith"
    assert updated["attributes"] == {"birthday": "1990-04-01", "orders": 4, "sports": ["tennis"]}
    assert updated["updated_at"] > contact["updated_at"]
    assert api.patch(f"/api/contacts/{contact['id']}", json={}).json() == updated


def test_update_of_a_missing_contact_is_404(api: httpx.Client) -> None:
    response = api.patch(
        "/api/contacts/01a20368-2f16-7142-9eef-ef47e9a8a22c", json={"first_name": "X"}
    )
    assert response.status_code == 404


def test_upsert_finds_by_external_id_then_email(api: httpx.Client) -> None:
    first = api.post("/api/contacts/upsert", json={"email": "ann@example.com", "first_name": "A"})
    assert first.status_code == 201
    assert first.json()["action"] == "created"
    again = api.post("/api/contacts/upsert", json={"email": "ANN@example.com", "first_name": "A"})
    assert again.status_code == 200
    assert again.json()["action"] == "unchanged"
    linked = api.post(
        "/api/contacts/upsert", json={"email": "ann@example.com", "external_id": "u-1"}
    )
    assert linked.json()["action"] == "updated"
    by_id = api.post(
        "/api/contacts/upsert", json={"external_id": "u-1", "email": "ann@new.example"}
    )
    assert by_id.json()["action"] == "updated"
    assert by_id.json()["contact"]["id"] == first.json()["contact"]["id"]
    assert by_id.json()["contact"]["email"] == "ann@new.example"
    assert api.post("/api/contacts/upsert", json={"first_name": "Nobody"}).status_code == 422


def test_upsert_refuses_to_tie_an_email_to_a_second_external_id(api: httpx.Client) -> None:
    create(api, email="ann@example.com", external_id="u-1")
    create(api, email="bob@example.com", external_id="u-2")
    response = api.post(
        "/api/contacts/upsert", json={"email": "ann@example.com", "external_id": "u-2"}
    )
    assert response.status_code == 409
    response = api.post(
        "/api/contacts/upsert", json={"email": "ann@example.com", "external_id": "u-3"}
    )
    assert response.status_code == 409
    assert "u-1" in response.json()["message"]


def test_batch_upsert_is_all_or_nothing_and_names_each_bad_item(api: httpx.Client) -> None:
    good = [{"email": f"user{i}@example.com", "tags": ["batch"]} for i in range(50)]
    bad = [*good, {"email": "broken"}, {"email": "user1@example.com", "external_id": ""}]
    bad.append({"email": "x@example.com", "phone": "0"})
    response = api.post("/api/contacts/batch", json={"contacts": bad})
    assert response.status_code == 422
    locations = [p["loc"] for p in response.json()["problems"]]
    assert locations == ["contacts[50].email", "contacts[52].phone"]
    assert api.get("/api/contacts").json()["items"] == []

    response = api.post("/api/contacts/batch", json={"contacts": good})
    assert response.status_code == 200, response.text
    assert response.json()["created"] == 50
    again = api.post("/api/contacts/batch", json={"contacts": good}).json()
    assert (again["created"], again["updated"], again["unchanged"]) == (0, 0, 50)


def test_the_same_contact_twice_in_a_batch_is_one_contact(api: httpx.Client) -> None:
    response = api.post(
        "/api/contacts/batch",
        json={
            "contacts": [
                {"email": "ann@example.com", "first_name": "Ann", "tags": ["a"]},
                {"email": "ANN@example.com", "last_name": "Smith", "tags": ["b"]},
            ]
        },
    )
    body = response.json()
    assert [item["action"] for item in body["items"]] == ["created", "updated"]
    assert body["items"][0]["id"] == body["items"][1]["id"]
    contact = api.get(f"/api/contacts/{body['items'][0]['id']}").json()
    assert (contact["first_name"], contact["last_name"], contact["tags"]) == (
        "Ann",
        "Smith",
        ["a", "b"],
    )


def test_list_finds_by_email_and_pages_with_a_cursor(api: httpx.Client) -> None:
    api.post(
        "/api/contacts/batch",
        json={"contacts": [{"email": f"p{i:02d}@example.com"} for i in range(25)]},
    )
    found = api.get("/api/contacts", params={"email": "P07@Example.com"}).json()
    assert [c["email"] for c in found["items"]] == ["p07@example.com"]

    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 10}
        if cursor:
            params["cursor"] = cursor
        page = api.get("/api/contacts", params=params).json()
        seen.extend(c["email"] for c in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == [f"p{i:02d}@example.com" for i in range(25)]
    assert len(seen) == 25
    assert api.get("/api/contacts", params={"cursor": "garbage!"}).status_code == 422
    assert api.get("/api/contacts", params={"limit": 0}).status_code == 422
    assert api.get("/api/contacts", params={"email": "nope"}).status_code == 422


def test_list_filters_by_tag_stage_and_search(api: httpx.Client) -> None:
    create(api, email="ann@example.com", first_name="Ann", tags=["vip"], lifecycle_stage="lead")
    create(api, email="bob@example.com", first_name="Bob", lifecycle_stage="customer")
    create(api, email="anton_x@example.com", first_name="Anton")

    def emails(**params: str) -> list[str]:
        return sorted(c["email"] for c in api.get("/api/contacts", params=params).json()["items"])

    assert emails(tag="vip") == ["ann@example.com"]
    assert emails(lifecycle_stage="customer") == ["bob@example.com"]
    assert emails(q="an") == ["ann@example.com", "anton_x@example.com"]
    assert emails(q="anton_") == ["anton_x@example.com"]
    assert emails(q="%") == []


def test_tags_are_added_and_removed(api: httpx.Client) -> None:
    contact = create(api, email="ann@example.com", tags=["a"])
    url = f"/api/contacts/{contact['id']}/tags"
    assert api.post(url, json={"tags": ["b", " c ", "a"]}).json()["tags"] == ["a", "b", "c"]
    assert api.delete(url, params=[("tag", "a"), ("tag", "c")]).json()["tags"] == ["b"]
    assert api.post(url, json={"tags": [""]}).status_code == 422
    assert api.post(url, json={"tags": []}).status_code == 422


def test_consent_changes_are_recorded_on_the_timeline(
    api: httpx.Client, clock: VirtualClock
) -> None:
    contact = create(api, email="ann@example.com")
    clock.advance(timedelta(minutes=5))
    url = f"/api/contacts/{contact['id']}/consent/email"
    response = api.put(url, json={"status": "subscribed", "source": "double opt-in"})
    assert response.json()["consent"]["email"]["source"] == "double opt-in"
    clock.advance(timedelta(minutes=5))
    response = api.put(url, json={"status": "unsubscribed", "source": "preference page"})
    assert response.json()["consent"]["email"]["status"] == "unsubscribed"
    assert api.put(url, json={"status": "maybe"}).status_code == 422
    assert (
        api.put(f"/api/contacts/{contact['id']}/consent/fax", json={"status": "subscribed"})
    ).status_code == 422

    events = api.get(
        f"/api/contacts/{contact['id']}/events", params={"name": "consent_changed"}
    ).json()["items"]
    assert [(e["name"], e["properties"]["status"]) for e in events] == [
        ("consent_changed", "unsubscribed"),
        ("consent_changed", "subscribed"),
    ]
    assert events[0]["properties"]["previous_status"] == "subscribed"
    assert events[0]["occurred_at"] > events[1]["occurred_at"]


def test_the_timeline_pages_newest_first(api: httpx.Client, clock: VirtualClock) -> None:
    contact = create(api, email="ann@example.com")
    url = f"/api/contacts/{contact['id']}/consent/email"
    for index in range(7):
        clock.advance(timedelta(minutes=1))
        api.put(url, json={"status": "subscribed" if index % 2 == 0 else "unsubscribed"})
    times: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = api.get(f"/api/contacts/{contact['id']}/events", params=params).json()
        times.extend(e["occurred_at"] for e in page["items"])
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(times) == 8  # its creation and seven consent changes
    assert times == sorted(times, reverse=True)
    missing = "/api/contacts/01a20368-2f16-7142-9eef-ef47e9a8a22c/events"
    assert api.get(missing).status_code == 404


def test_deleting_a_contact_removes_it(api: httpx.Client) -> None:
    contact = create(api, email="ann@example.com")
    assert api.delete(f"/api/contacts/{contact['id']}").status_code == 204
    assert api.get(f"/api/contacts/{contact['id']}").status_code == 404
    assert api.delete(f"/api/contacts/{contact['id']}").status_code == 404
    create(api, email="ann@example.com")


def test_owner_is_a_user_given_by_email(api: httpx.Client, runtime: Any) -> None:
    with runtime.database.transaction() as session:
        runtime.users.create(session, email="sales@shop.example", name="Sam", password=None)
    contact = create(api, email="ann@example.com", owner="Sales@Shop.example")
    assert contact["owner"] == "sales@shop.example"
    response = api.post("/api/contacts", json={"email": "b@example.com", "owner": "x@y.example"})
    assert response.status_code == 422
    assert response.json()["problems"][0]["loc"] == "owner"


def test_openapi_describes_the_api(anonymous: httpx.Client) -> None:
    spec = anonymous.get("/openapi.json").json()
    assert "/api/contacts" in spec["paths"]
    assert "/api/contacts/{contact_id}/events" in spec["paths"]
