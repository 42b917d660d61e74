"""Proven with the official client: Segment's Python library (`segment-analytics-python`)
sends to Postillon as it would to Segment, and what it sends is stored once."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from segment.analytics import Client, consumer

from postillon.runtime import Runtime
from tests.tracking.support import stored_events

AT = datetime(2026, 1, 5, 8, 30, tzinfo=UTC)

Errors = list[tuple[Exception, list[dict[str, Any]]]]


@pytest.fixture(params=[False, True], ids=["plain", "gzip"])
def compressed(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


@pytest.fixture
def errors() -> Errors:
    """What the client reports through `on_error` (its threaded mode does not raise)."""
    return []


@pytest.fixture
def segment(server_url: str, write_key: str, compressed: bool, errors: Errors) -> Client:
    """The client in sync mode: each call is posted to /v1/batch at once; a refused request
    raises. No retries, so a failure is not hidden behind a later success."""
    return Client(
        write_key,
        host=server_url,
        gzip=compressed,
        sync_mode=True,
        max_retries=0,
        on_error=lambda error, batch: errors.append((error, batch)),
    )


def contact_by(api: httpx.Client, **query: str) -> dict[str, Any] | None:
    response = api.get("/api/contacts", params=query)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    assert len(items) <= 1
    return items[0] if items else None


def send_a_session(segment: Client) -> None:
    """A visitor browses anonymously, signs up, and is then tracked by user id."""
    segment.track(
        anonymous_id="anon-1",
        event="Pricing Viewed",
        properties={"plan": "pro"},
        timestamp=AT,
        message_id="msg-anonymous",
    )
    segment.identify(
        user_id="user-42",
        traits={
            "email": "Ada@Example.com",
            "firstName": "Ada",
            "lastName": "Lovelace",
            "plan": "pro",
            "seats": 5,
            "address": {"city": "Berlin"},
        },
        timestamp=AT,
        message_id="msg-identify",
    )
    segment.track(
        user_id="user-42",
        event="Order Completed",
        properties={"revenue": 42.5, "currency": "EUR"},
        timestamp=AT,
        message_id="msg-track",
    )
    segment.page(
        user_id="user-42",
        category="Docs",
        name="Pricing",
        properties={"url": "https://shop.example/pricing"},
        timestamp=AT,
        message_id="msg-page",
    )
    segment.group(
        user_id="user-42",
        group_id="acme",
        traits={"name": "Acme", "employees": 100},
        timestamp=AT,
        message_id="msg-group",
    )
    segment.alias(previous_id="anon-1", user_id="user-42", timestamp=AT, message_id="msg-alias")


def test_every_call_is_stored_with_its_fields_and_resending_stores_nothing_twice(
    segment: Client, errors: Errors, api: httpx.Client, runtime: Runtime
) -> None:
    send_a_session(segment)

    contact = contact_by(api, email="ada@example.com")
    assert contact is not None
    assert contact["external_id"] == "user-42"
    assert (contact["first_name"], contact["last_name"]) == ("Ada", "Lovelace")
    assert contact["attributes"] == {"plan": "pro", "seats": 5, "address_city": "Berlin"}

    events = stored_events(runtime)
    assert [(e.message_id, e.type, e.name) for e in events] == [
        ("msg-anonymous", "track", "Pricing Viewed"),
        ("msg-identify", "identify", "identified"),
        ("msg-track", "track", "Order Completed"),
        ("msg-page", "page", "page_viewed"),
        ("msg-group", "group", "group_joined"),
        ("msg-alias", "alias", "aliased"),
    ]
    by_id = {e.message_id: e for e in events}
    assert by_id["msg-track"].properties == {"revenue": 42.5, "currency": "EUR"}
    assert by_id["msg-page"].properties["name"] == "Pricing"
    assert by_id["msg-page"].properties["url"] == "https://shop.example/pricing"
    assert by_id["msg-group"].properties == {"group_id": "acme", "name": "Acme", "employees": 100}
    assert by_id["msg-alias"].properties == {"previous_id": "anon-1"}
    assert by_id["msg-identify"].properties["firstName"] == "Ada"
    assert all(e.occurred_at == AT for e in events)
    assert all(e.context["library"]["name"] == "analytics-python" for e in events)
    assert all(e.source == segment.write_key[: len(e.source)] for e in events)

    # alias(anon-1 → user-42): the anonymous visitor is now the contact, history included
    assert {str(e.contact_id) for e in events} == {contact["id"]}
    visitor = api.get("/api/visitors/anon-1").json()
    assert (visitor["state"], visitor["contact_id"]) == ("monitored", contact["id"])
    assert contact_by(api, email="ada@example.com")["state"] == "monitored"  # type: ignore[index]

    timeline = api.get(f"/api/contacts/{contact['id']}/events").json()["items"]
    tracked = {e["name"] for e in timeline}
    assert {"Pricing Viewed", "Order Completed", "page_viewed", "group_joined"} <= tracked

    # The same calls with the same messageIds, as a client retrying after a lost answer would
    send_a_session(segment)
    assert [e.message_id for e in stored_events(runtime)] == [e.message_id for e in events]
    assert contact_by(api, external_id="user-42")["id"] == contact["id"]  # type: ignore[index]
    assert errors == []


@pytest.mark.parametrize("compressed", [False], ids=["plain"])
def test_a_page_keeps_its_category(segment: Client, runtime: Runtime) -> None:
    """analytics-python sends `category` as a top-level field of a page call (Segment's spec);
    like `name`, it belongs to what the page view says."""
    segment.page(
        user_id="user-1", category="Docs", name="Pricing", timestamp=AT, message_id="msg-page"
    )
    [page] = stored_events(runtime)
    assert page.properties == {"name": "Pricing", "category": "Docs"}


def test_alias_renames_a_known_user_and_merges_two(
    segment: Client, errors: Errors, api: httpx.Client, runtime: Runtime
) -> None:
    # previousId is a contact, userId is not (yet): the contact takes the new id
    segment.identify(user_id="guest-7", traits={"email": "guest@example.com"}, message_id="i-7")
    guest = contact_by(api, external_id="guest-7")
    assert guest is not None
    segment.alias(previous_id="guest-7", user_id="member-7", message_id="a-7")
    assert contact_by(api, external_id="guest-7") is None
    renamed = contact_by(api, external_id="member-7")
    assert renamed is not None
    assert (renamed["id"], renamed["email"]) == (guest["id"], "guest@example.com")

    # both are contacts: they are one person, and previousId's contact is merged into userId's
    segment.identify(user_id="user-1", traits={"email": "one@example.com"}, message_id="i-1")
    segment.identify(user_id="user-2", traits={"email": "two@example.com"}, message_id="i-2")
    segment.track(user_id="user-2", event="Trial Started", message_id="t-2")
    survivor = contact_by(api, external_id="user-1")
    assert survivor is not None
    segment.alias(previous_id="user-2", user_id="user-1", message_id="a-1")
    assert contact_by(api, external_id="user-2") is None
    assert contact_by(api, email="two@example.com") is None
    timeline = api.get(f"/api/contacts/{survivor['id']}/events").json()["items"]
    assert "Trial Started" in {e["name"] for e in timeline}
    [trial] = stored_events(runtime, message_id="t-2")
    assert str(trial.contact_id) == survivor["id"]
    assert errors == []


def test_the_threaded_client_posts_many_messages_per_batch(
    server_url: str,
    write_key: str,
    compressed: bool,
    errors: Errors,
    runtime: Runtime,
    api: httpx.Client,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The library's default mode: a consumer thread collects queued calls and posts them
    together to /v1/batch; `flush()` waits until the queue is sent."""
    sent_batches: list[int] = []
    post = consumer.post

    def counting_post(*args: Any, **kwargs: Any) -> Any:
        sent_batches.append(len(kwargs["batch"]))
        return post(*args, **kwargs)

    monkeypatch.setattr(consumer, "post", counting_post)
    calls = 40
    client = Client(
        write_key,
        host=server_url,
        gzip=compressed,
        max_retries=0,
        upload_size=calls,
        upload_interval=1,
        on_error=lambda error, batch: errors.append((error, batch)),
    )
    try:
        for n in range(calls // 2):
            client.identify(
                user_id=f"user-{n}",
                traits={"email": f"user-{n}@example.com", "n": n},
                message_id=f"identify-{n}",
            )
            client.track(
                user_id=f"user-{n}",
                event="Signed Up",
                properties={"n": n},
                message_id=f"track-{n}",
            )
        client.flush()
    finally:
        client.join()

    assert errors == []
    assert sum(sent_batches) == calls
    assert max(sent_batches) > 1, sent_batches
    events = stored_events(runtime)
    assert sorted(e.message_id for e in events) == sorted(
        [f"identify-{n}" for n in range(calls // 2)] + [f"track-{n}" for n in range(calls // 2)]
    )
    assert all(e.contact_id is not None for e in events)
    contact = contact_by(api, external_id="user-7")
    assert contact is not None
    assert (contact["email"], contact["attributes"]) == ("user-7@example.com", {"n": 7})
