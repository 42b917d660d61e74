"""GDPR export and erasure."""

from __future__ import annotations

import httpx
from sqlalchemy import select

from postillon.models import Event, Suppression
from postillon.runtime import Runtime
from tests.conftest import TEST_SECRET


def test_export_holds_everything_stored_about_the_contact(api: httpx.Client) -> None:
    contact = api.post(
        "/api/contacts",
        json={
            "email": "ann@example.com",
            "attributes": {"city": "Bonn"},
            "tags": ["vip"],
            "consent": {"email": "subscribed"},
        },
    ).json()
    export = api.get(f"/api/contacts/{contact['id']}/export").json()
    assert export["contact"] == contact
    assert [e["name"] for e in export["events"]] == [
        "contact_created",
        "tag_added",
        "consent_changed",
    ]
    assert export["merges"] == []
    assert api.get("/api/contacts/01a20368-2f16-7142-9eef-ef47e9a8a22c/export").status_code == 404


def test_erase_forgets_the_contact_and_blocks_its_address(
    api: httpx.Client, runtime: Runtime
) -> None:
    contact = api.post(
        "/api/contacts",
        json={
            "email": "ann@example.com",
            "phone": "+4915112345678",
            "consent": {"email": "subscribed"},
        },
    ).json()
    other = api.post("/api/contacts", json={"email": "bob@example.com"}).json()
    assert api.post(f"/api/contacts/{contact['id']}/erase").status_code == 204
    assert api.get(f"/api/contacts/{contact['id']}").status_code == 404
    assert api.post(f"/api/contacts/{contact['id']}/erase").status_code == 404

    with runtime.database.transaction(read_only=True) as session:
        # Only Bob's creation is left on any timeline.
        events = session.scalars(select(Event.contact_id)).all()
        suppressed = list(session.scalars(select(Suppression)))
    assert [str(e) for e in events] == [other["id"]]
    assert {s.channel for s in suppressed} == {"email", "sms"}
    for row in suppressed:
        assert "ann" not in row.address_digest and len(row.address_digest) == 64

    again = api.post("/api/contacts", json={"email": "ANN@example.com"})
    assert again.status_code == 422
    assert "erased" in again.json()["message"]
    upsert = api.post("/api/contacts/upsert", json={"email": "ann@example.com"})
    assert upsert.status_code == 422
    assert api.get(f"/api/contacts/{other['id']}").status_code == 200


def test_the_suppression_hash_depends_on_the_installation_secret() -> None:
    from postillon.privacy.suppression import address_digest

    ours = address_digest(TEST_SECRET, "email", "ann@example.com")
    assert ours != address_digest("another installation", "email", "ann@example.com")
    assert ours == address_digest(TEST_SECRET, "email", "ann@example.com")
