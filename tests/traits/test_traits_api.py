"""The traits API over HTTP: reading a contact's traits, refreshing on demand."""

from __future__ import annotations

from uuid import UUID

import httpx

from postillon.clock import VirtualClock
from postillon.runtime import Runtime
from tests.traits.support import add_event, queued


def test_traits_are_read_and_refreshed_on_demand(
    api: httpx.Client, runtime: Runtime, clock: VirtualClock
) -> None:
    ann = api.post("/api/contacts", json={"email": "ann@example.com"}).json()
    bob = api.post("/api/contacts", json={"email": "bob@example.com"}).json()
    url = f"/api/contacts/{ann['id']}/traits"
    before = api.get(url)
    assert before.status_code == 200
    assert before.json()["computed_at"] is None and before.json()["engagement"] is None

    refreshed = api.post("/api/traits/refresh")
    assert refreshed.status_code == 200, refreshed.text
    assert refreshed.json() == {"changed": 2}
    assert api.get(url).json()["engagement"] == "passive"

    add_event(runtime, UUID(ann["id"]), clock.now(), revenue=25, total=99)
    queued(runtime)
    only_bob = api.post("/api/traits/refresh", json={"contact_ids": [bob["id"]]})
    assert only_bob.json() == {"changed": 0}
    only_ann = api.post("/api/traits/refresh", json={"contact_ids": [ann["id"]]})
    assert only_ann.json() == {"changed": 1}
    assert {str(i) for i in queued(runtime)} == {ann["id"]}
    traits = api.get(url).json()
    assert traits["purchase_count"] == 1
    assert traits["clv"] == 25.0
    assert traits["rfm_cell"] == "lost"  # the only purchaser scores 1 everywhere
    assert traits["engagement"] == "active"
    assert traits["last_purchase_at"] is not None


def test_bad_traits_requests_are_4xx(api: httpx.Client) -> None:
    missing = "01a20368-2f16-7142-9eef-ef47e9a8a22c"
    assert api.get(f"/api/contacts/{missing}/traits").status_code == 404
    bad = api.post("/api/traits/refresh", json={"contact_ids": ["nope"]})
    assert bad.status_code == 422
    assert bad.json()["problems"][0]["loc"].startswith("contact_ids")
    extra = api.post("/api/traits/refresh", json={"everyone": True})
    assert extra.status_code == 422
    assert extra.json()["problems"][0]["loc"] == "everyone"
    # Unknown ids are no error: there is nothing to compute for them.
    assert api.post("/api/traits/refresh", json={"contact_ids": [missing]}).json() == {"changed": 0}
