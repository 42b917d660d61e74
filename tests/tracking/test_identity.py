"""Identity over the tracking API: contacts from identify, anonymous visitors, the
retention window, alias, enrichment and "last seen"."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import httpx

from postillon.clock import VirtualClock
from postillon.runtime import Runtime
from tests.tracking.support import run_worker_round, stored_events

CHROME_ON_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36"
)
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1"
)


def send(tracker: httpx.Client, *messages: dict[str, Any]) -> dict[str, Any]:
    response = tracker.post("/v1/batch", json={"batch": list(messages)})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def page(anonymous_id: str, url: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "page",
        "anonymousId": anonymous_id,
        "context": {"page": {"url": url, "title": url.rsplit("/", 1)[-1]}},
        **extra,
    }


def contact_by(api: httpx.Client, **query: str) -> dict[str, Any]:
    [contact] = api.get("/api/contacts", params=query).json()["items"]
    return contact  # type: ignore[no-any-return]


def timeline(
    api: httpx.Client, contact_id: str, *, with_creation: bool = False
) -> list[dict[str, Any]]:
    """The contact's events, newest first; without the `contact_created` that every
    contact's timeline has (unless asked for)."""
    items: list[dict[str, Any]] = api.get(f"/api/contacts/{contact_id}/events").json()["items"]
    return [e for e in items if with_creation or e["name"] != "contact_created"]


def test_identify_creates_the_contact_from_its_traits(
    tracker: httpx.Client, api: httpx.Client
) -> None:
    send(
        tracker,
        {
            "type": "identify",
            "userId": "u-1",
            "traits": {
                "email": "Ann.Smith@Example.COM",
                "name": "Ann Smith",
                "plan": "pro",
                "seats": 3,
                "address": {"city": "Berlin", "country": "DE"},
                "Favourite colour": "green",
            },
            "context": {"timezone": "Europe/Berlin", "locale": "de-DE"},
        },
    )
    contact = contact_by(api, email="ann.smith@example.com")
    assert contact["external_id"] == "u-1"
    assert (contact["first_name"], contact["last_name"]) == ("Ann", "Smith")
    assert contact["attributes"] == {
        "plan": "pro",
        "seats": 3,
        "address_city": "Berlin",
        "address_country": "DE",
        "Favourite_colour": "green",
    }
    assert (contact["timezone"], contact["locale"]) == ("Europe/Berlin", "de-DE")
    assert contact["state"] == "identified"
    created = [
        e for e in timeline(api, contact["id"], with_creation=True) if e["name"] != "identified"
    ]
    assert [(e["name"], e["properties"]) for e in created] == [
        ("contact_created", {"source": "tracking"})
    ]
    assert [e["name"] for e in timeline(api, contact["id"])] == ["identified"]

    # a later identify updates; the email alone finds the contact too
    send(tracker, {"type": "identify", "userId": "u-1", "traits": {"plan": "team"}})
    send(
        tracker,
        {
            "type": "identify",
            "anonymousId": "a-9",
            "traits": {"email": "ann.smith@example.com", "lastName": "Jones"},
        },
    )
    contact = contact_by(api, email="ann.smith@example.com")
    assert (contact["attributes"]["plan"], contact["last_name"]) == ("team", "Jones")


def test_an_anonymous_visitor_becomes_a_monitored_contact_within_the_window(
    tracker: httpx.Client, api: httpx.Client, runtime: Runtime, clock: VirtualClock
) -> None:
    send(tracker, page("cookie-1", "https://shop/"), page("cookie-1", "https://shop/teas"))
    visitor = api.get("/api/visitors/cookie-1").json()
    assert visitor["state"] == "anonymous"
    assert visitor["held_events"] == 2
    assert visitor["expires_at"] is not None
    clock.advance(timedelta(hours=2, minutes=50))
    send(tracker, page("cookie-1", "https://shop/cart"))
    clock.advance(timedelta(minutes=5))
    send(
        tracker,
        {"type": "identify", "anonymousId": "cookie-1", "traits": {"email": "bo@example.com"}},
    )
    contact = contact_by(api, email="bo@example.com")
    assert contact["state"] == "monitored"
    assert contact["monitored_at"] == clock.now().isoformat().replace("+00:00", "Z")
    names = [(e["name"], e["properties"].get("url")) for e in timeline(api, contact["id"])]
    assert names == [
        ("identified", None),
        ("page_viewed", "https://shop/cart"),
        ("page_viewed", "https://shop/teas"),
        ("page_viewed", "https://shop/"),
    ]
    visitor = api.get("/api/visitors/cookie-1").json()
    assert (visitor["state"], visitor["contact_id"]) == ("monitored", contact["id"])
    assert (
        api.get(f"/api/contacts/{contact['id']}/visitors").json()[0]["anonymous_id"] == "cookie-1"
    )

    # from now on the cookie's events go straight to the contact, and are never purged
    send(tracker, page("cookie-1", "https://shop/checkout"))
    clock.advance(timedelta(days=2))
    run_worker_round(runtime)
    assert len(timeline(api, contact["id"])) == 5


def test_after_the_window_nothing_of_an_unidentified_visit_remains(
    tracker: httpx.Client, api: httpx.Client, runtime: Runtime, clock: VirtualClock
) -> None:
    send(tracker, page("cookie-2", "https://shop/"), page("cookie-3", "https://shop/"))
    clock.advance(timedelta(hours=2))
    send(tracker, page("cookie-3", "https://shop/teas"))
    clock.advance(timedelta(hours=1, minutes=1))
    run_worker_round(runtime)
    assert api.get("/api/visitors/cookie-2").status_code == 404
    assert [e.anonymous_id for e in stored_events(runtime)] == ["cookie-3"]  # the recent one

    send(
        tracker,
        {"type": "identify", "anonymousId": "cookie-2", "traits": {"email": "cy@example.com"}},
    )
    contact = contact_by(api, email="cy@example.com")
    assert [e["name"] for e in timeline(api, contact["id"])] == ["identified"]


def test_an_expired_event_not_yet_purged_is_not_attributed(
    tracker: httpx.Client, api: httpx.Client, clock: VirtualClock
) -> None:
    send(tracker, page("cookie-4", "https://shop/old"))
    clock.advance(timedelta(hours=3, minutes=1))  # no worker round: the row is still there
    send(tracker, {"type": "identify", "anonymousId": "cookie-4", "userId": "u-4"})
    contact = contact_by(api, external_id="u-4")
    assert [e["name"] for e in timeline(api, contact["id"])] == ["identified"]


def test_visitors_identified_in_one_batch_each_bring_their_own_history(
    tracker: httpx.Client, api: httpx.Client, clock: VirtualClock
) -> None:
    send(
        tracker,
        page("cookie-a", "https://shop/a1"),
        page("cookie-b", "https://shop/b1"),
        page("cookie-a", "https://shop/a2"),
        page("cookie-c", "https://shop/c1"),
    )
    clock.advance(timedelta(minutes=10))
    send(
        tracker,
        {"type": "identify", "anonymousId": "cookie-b", "userId": "u-b"},
        {"type": "identify", "anonymousId": "cookie-a", "userId": "u-a"},
        page("cookie-a", "https://shop/a3"),
    )
    urls = {
        user: sorted(
            e["properties"]["url"]
            for e in timeline(api, contact_by(api, external_id=user)["id"])
            if e["name"] == "page_viewed"
        )
        for user in ("u-a", "u-b")
    }
    assert urls == {
        "u-a": ["https://shop/a1", "https://shop/a2", "https://shop/a3"],
        "u-b": ["https://shop/b1"],
    }
    assert api.get("/api/visitors/cookie-c").json()["state"] == "anonymous"


def test_track_with_user_and_anonymous_id_links_the_visitor(
    tracker: httpx.Client, api: httpx.Client
) -> None:
    send(
        tracker,
        page("cookie-5", "https://shop/"),
        {"type": "track", "event": "Logged In", "userId": "u-5", "anonymousId": "cookie-5"},
    )
    contact = contact_by(api, external_id="u-5")
    assert contact["state"] == "monitored"
    assert [e["name"] for e in timeline(api, contact["id"])] == ["Logged In", "page_viewed"]


def test_alias_merges_two_known_contacts(
    tracker: httpx.Client, api: httpx.Client, runtime: Runtime
) -> None:
    send(
        tracker,
        {
            "type": "identify",
            "userId": "old-id",
            "traits": {"email": "di@example.com", "tier": "gold"},
        },
        {"type": "track", "userId": "old-id", "event": "Ordered"},
        {"type": "identify", "userId": "new-id", "traits": {"firstName": "Di"}},
    )
    send(tracker, {"type": "alias", "previousId": "old-id", "userId": "new-id"})
    contact = contact_by(api, external_id="new-id")
    assert (contact["email"], contact["first_name"], contact["attributes"]) == (
        "di@example.com", "Di", {"tier": "gold"},
    )  # fmt: skip
    names = [e["name"] for e in timeline(api, contact["id"])]
    assert {"Ordered", "contact_merged", "aliased"} <= set(names)
    assert api.get("/api/contacts", params={"external_id": "old-id"}).json()["items"] == []


def test_alias_renames_a_contact_or_links_an_anonymous_id(
    tracker: httpx.Client, api: httpx.Client
) -> None:
    send(tracker, {"type": "identify", "userId": "temp-7", "traits": {"email": "ed@example.com"}})
    send(tracker, {"type": "alias", "previousId": "temp-7", "userId": "crm-7"})
    assert contact_by(api, email="ed@example.com")["external_id"] == "crm-7"

    send(tracker, page("cookie-8", "https://shop/"))
    send(tracker, {"type": "alias", "previousId": "cookie-8", "userId": "crm-8"})
    contact = contact_by(api, external_id="crm-8")
    assert contact["state"] == "monitored"
    assert [e["name"] for e in timeline(api, contact["id"])] == ["aliased", "page_viewed"]


def test_bad_traits_refuse_only_that_message(tracker: httpx.Client, runtime: Runtime) -> None:
    body = send(
        tracker,
        {"type": "identify", "userId": "u-1", "traits": {"email": "nope"}},
        {"type": "identify", "userId": "u-2", "traits": {"phone": "12"}},
        {"type": "track", "userId": "u-3", "event": "Fine"},
    )
    assert body["accepted"] == 1
    assert [(r["index"], r["problems"][0]["loc"]) for r in body["rejected"]] == [
        (0, "batch[0].traits.email"),
        (1, "batch[1].traits.phone"),
    ]
    assert [e.name for e in stored_events(runtime)] == ["Fine"]


def test_enrichment_on_the_event_and_as_last_seen(
    tracker: httpx.Client, api: httpx.Client, runtime: Runtime, clock: VirtualClock
) -> None:
    send(
        tracker,
        {
            "type": "track",
            "userId": "u-1",
            "event": "Viewed",
            "context": {"userAgent": CHROME_ON_WINDOWS, "ip": "81.2.69.160"},
        },
    )
    [event] = stored_events(runtime)
    assert event.context["postillon"] == {
        "device": "desktop",
        "os": "Windows 10",
        "browser": "Chrome 120",
        "country": "GB",
    }
    assert contact_by(api, external_id="u-1")["last_seen_at"] is None  # not yet processed
    run_worker_round(runtime)
    contact = contact_by(api, external_id="u-1")
    assert contact["last_seen_at"] == clock.now().isoformat().replace("+00:00", "Z")
    assert contact["last_seen"]["browser"] == "Chrome 120"

    clock.advance(timedelta(minutes=10))
    send(
        tracker,
        {"type": "track", "userId": "u-1", "event": "Viewed", "context": {"userAgent": IPHONE}},
    )
    run_worker_round(runtime)
    contact = contact_by(api, external_id="u-1")
    assert contact["last_seen"] == {
        "device": "mobile",
        "os": "iOS 17.1",
        "browser": "Mobile Safari 17",
        "country": "GB",  # kept from before: this message had no address
    }

    seen_at = contact["last_seen_at"]
    clock.advance(timedelta(minutes=10))
    send(tracker, {"type": "track", "userId": "u-1", "event": "email_delivered"})
    run_worker_round(runtime)
    assert contact_by(api, external_id="u-1")["last_seen_at"] == seen_at  # not their doing


def test_dwell_time_is_folded_into_the_page_view(tracker: httpx.Client, runtime: Runtime) -> None:
    send(tracker, page("cookie-1", "https://shop/", messageId="view-1"))
    body = send(
        tracker,
        {"type": "track", "anonymousId": "cookie-1", "event": "page_dwell",
         "properties": {"page_message_id": "view-1", "dwell_ms": 12_345}},
        {"type": "track", "anonymousId": "someone-else", "event": "page_dwell",
         "properties": {"page_message_id": "view-1", "dwell_ms": 1}},
        {"type": "track", "anonymousId": "cookie-1", "event": "page_dwell",
         "properties": {"page_message_id": "view-1", "dwell_ms": -5}},
    )  # fmt: skip
    assert body["accepted"] == 2
    assert body["rejected"][0]["problems"][0]["loc"] == "batch[2].properties.dwell_ms"
    [view] = stored_events(runtime)
    assert view.properties["dwell_ms"] == 12_345


def test_a_visitor_can_be_linked_by_other_proof_than_identify(
    tracker: httpx.Client, api: httpx.Client, runtime: Runtime, clock: VirtualClock
) -> None:
    """Forms and tracked email clicks will prove who a visitor is through link_visitor."""
    created = api.post("/api/contacts", json={"email": "fay@example.com"}).json()
    send(tracker, page("cookie-6", "https://shop/"), page("cookie-6", "https://shop/offer"))
    with runtime.database.transaction() as session:
        attributed = runtime.tracking.link_visitor(
            session, "cookie-6", uuid.UUID(created["id"]), clock.now()
        )
    assert attributed == 2
    contact = contact_by(api, email="fay@example.com")
    assert contact["state"] == "monitored"
    assert len(timeline(api, contact["id"])) == 2
    export = api.get(f"/api/contacts/{contact['id']}/export").json()
    assert [v["anonymous_id"] for v in export["visitors"]] == ["cookie-6"]
