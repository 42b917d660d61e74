"""Merging two contacts: newest values win, tags united, scores summed, events moved."""

from __future__ import annotations

from datetime import timedelta

import httpx

from postillon.clock import VirtualClock


def test_merge_combines_two_contacts_into_one(api: httpx.Client, clock: VirtualClock) -> None:
    old = api.post(
        "/api/contacts",
        json={
            "email": "ann@old.example",
            "first_name": "Ann",
            "last_name": "Smith",
            "phone": "+4915112345678",
            "attributes": {"city": "Bonn", "shoe_size": 38},
            "tags": ["newsletter"],
            "score": 10,
            "consent": {"email": "subscribed"},
        },
    ).json()
    clock.advance(timedelta(days=1))
    new = api.post(
        "/api/contacts",
        json={
            "external_id": "shop-7",
            "first_name": "Anna",
            "attributes": {"city": "Berlin"},
            "tags": ["customer"],
            "score": 5,
            "consent": {"email": "unsubscribed", "sms": "subscribed"},
        },
    ).json()
    clock.advance(timedelta(hours=1))

    response = api.post(
        f"/api/contacts/{old['id']}/merge",
        json={"contact_id": new["id"], "reason": "same person"},
    )
    assert response.status_code == 200, response.text
    merged = response.json()
    assert merged["id"] == old["id"]
    assert merged["first_name"] == "Anna"  # newer contact's value
    assert merged["last_name"] == "Smith"  # only the older one had it
    assert merged["email"] == "ann@old.example"
    assert merged["external_id"] == "shop-7"
    assert merged["attributes"] == {"city": "Berlin", "shoe_size": 38}
    assert merged["tags"] == ["customer", "newsletter"]
    assert merged["score"] == 15
    assert merged["consent"]["email"]["status"] == "unsubscribed"  # the later decision
    assert merged["consent"]["sms"]["status"] == "subscribed"
    assert merged["created_at"] == old["created_at"]

    assert api.get(f"/api/contacts/{new['id']}").status_code == 404
    events = api.get(f"/api/contacts/{old['id']}/events").json()["items"]
    names = [e["name"] for e in events]
    assert names[0] == "contact_merged"
    assert events[0]["properties"]["merged_contact_id"] == new["id"]
    assert names.count("consent_changed") == 3  # both contacts' history, now in one
    found = api.get("/api/contacts", params={"external_id": "shop-7"}).json()["items"]
    assert [c["id"] for c in found] == [old["id"]]

    export = api.get(f"/api/contacts/{old['id']}/export").json()
    assert export["merges"][0]["merged_snapshot"]["first_name"] == "Anna"
    assert export["merges"][0]["reason"] == "same person"


def test_merge_refuses_itself_and_missing_contacts(api: httpx.Client) -> None:
    contact = api.post("/api/contacts", json={"email": "ann@example.com"}).json()
    url = f"/api/contacts/{contact['id']}/merge"
    assert api.post(url, json={"contact_id": contact["id"]}).status_code == 422
    missing = "01a20368-2f16-7142-9eef-ef47e9a8a22c"
    assert api.post(url, json={"contact_id": missing}).status_code == 404
    assert api.get(f"/api/contacts/{contact['id']}").status_code == 200
