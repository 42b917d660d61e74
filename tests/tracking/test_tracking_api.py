"""The Segment-compatible tracking API over HTTP: auth, spec fields, limits, bad input."""

from __future__ import annotations

import base64
import gzip
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest

from postillon.auth.service import Scope
from postillon.clock import VirtualClock
from postillon.runtime import Runtime
from postillon.tracking.service import TrackingService
from tests.tracking.support import stored_events


def track(n: int, **extra: Any) -> dict[str, Any]:
    return {
        "type": "track",
        "event": "Order Completed",
        "userId": f"user-{n}",
        "messageId": f"msg-{n}",
        "properties": {"revenue": 10 * n},
        **extra,
    }


def test_track_is_stored_before_the_answer_and_creates_the_contact(
    tracker: httpx.Client, api: httpx.Client, runtime: Runtime
) -> None:
    response = tracker.post("/v1/track", json=track(1))
    assert response.status_code == 200, response.text
    assert response.json() == {"success": True, "accepted": 1, "duplicates": 0, "rejected": []}
    [event] = stored_events(runtime)
    assert (event.type, event.name, event.user_id, event.message_id) == (
        "track", "Order Completed", "user-1", "msg-1",
    )  # fmt: skip
    contact = api.get("/api/contacts", params={"external_id": "user-1"}).json()["items"]
    assert len(contact) == 1 or event.contact_id is not None
    timeline = api.get(f"/api/contacts/{event.contact_id}/events").json()["items"]
    assert sorted(e["name"] for e in timeline) == ["Order Completed", "contact_created"]
    [order] = [e for e in timeline if e["name"] == "Order Completed"]
    assert order["properties"] == {"revenue": 10}


def test_short_paths_take_text_plain_with_the_write_key_in_the_body(
    anonymous: httpx.Client, write_key: str, runtime: Runtime
) -> None:
    for path, body in [
        (
            "/v1/p",
            {"anonymousId": "a-1", "name": "Home", "context": {"page": {"url": "https://s/"}}},
        ),
        ("/v1/t", {"anonymousId": "a-1", "event": "Clicked"}),
        ("/v1/s", {"anonymousId": "a-1", "name": "Cart"}),
        ("/v1/g", {"anonymousId": "a-1", "groupId": "acme", "traits": {"name": "Acme"}}),
        ("/v1/i", {"anonymousId": "a-1", "traits": {"plan": "pro"}}),
    ]:
        response = anonymous.post(
            path,
            content=orjson.dumps({**body, "writeKey": write_key}),
            headers={"Content-Type": "text/plain"},
        )
        assert response.status_code == 200, (path, response.text)
    events = stored_events(runtime)
    assert [(e.type, e.name) for e in events] == [
        ("page", "page_viewed"),
        ("track", "Clicked"),
        ("screen", "screen_viewed"),
        ("group", "group_joined"),
        ("identify", "identified"),
    ]
    assert events[0].properties == {"name": "Home", "url": "https://s/"}
    assert events[3].properties == {"group_id": "acme", "name": "Acme"}
    assert all(e.contact_id is None and e.anonymous_id == "a-1" for e in events)


def test_every_long_and_short_route_exists(tracker: httpx.Client) -> None:
    for path in [
        "identify",
        "track",
        "page",
        "screen",
        "group",
        "alias",
        "i",
        "t",
        "p",
        "s",
        "g",
        "a",
    ]:
        response = tracker.post(f"/v1/{path}", json={})
        assert response.status_code == 400, path
    for path in ["batch", "b"]:
        assert tracker.post(f"/v1/{path}", json={"batch": [track(1)]}).status_code == 200


def test_keys_are_checked(
    anonymous: httpx.Client, tracker: httpx.Client, admin_key: str, runtime: Runtime
) -> None:
    body = track(1)
    assert anonymous.post("/v1/track", json=body).status_code == 401
    assert anonymous.post("/v1/track", json=body, auth=("pst_write_nope", "")).status_code == 401
    bad_basic = anonymous.post("/v1/track", json=body, headers={"Authorization": "Basic !!"})
    assert bad_basic.status_code == 400
    assert "Basic" in bad_basic.json()["message"]
    # admin keys may send data too, as a Bearer or Basic credential
    admin = anonymous.post(
        "/v1/track", json=track(2), headers={"Authorization": f"Bearer {admin_key}"}
    )
    assert admin.status_code == 200
    with runtime.database.transaction() as session:
        key, _ = runtime.api_keys.create(session, scope=Scope.write, name="old")
        runtime.api_keys.revoke(session, str(key.id))
    assert tracker.post("/v1/track", json=track(3)).status_code == 200
    # a write key is no admin key
    write_only = tracker.auth
    assert isinstance(write_only, httpx.BasicAuth)


def test_a_write_key_cannot_use_the_admin_api(server_url: str, write_key: str) -> None:
    response = httpx.get(
        f"{server_url}/api/contacts", headers={"Authorization": f"Bearer {write_key}"}
    )
    assert response.status_code == 401


def test_revoked_keys_are_refused(anonymous: httpx.Client, runtime: Runtime) -> None:
    with runtime.database.transaction() as session:
        key, secret = runtime.api_keys.create(session, scope=Scope.write, name="old")
        runtime.api_keys.revoke(session, str(key.id))
    response = anonymous.post("/v1/track", json={**track(1), "writeKey": secret})
    assert response.status_code == 401
    assert "revoked" in response.json()["message"]


def test_the_same_message_id_is_never_stored_twice(tracker: httpx.Client, runtime: Runtime) -> None:
    batch = {"batch": [track(1), track(2), track(1)]}
    first = tracker.post("/v1/batch", json=batch).json()
    assert (first["accepted"], first["duplicates"]) == (2, 1)
    again = tracker.post("/v1/batch", json=batch).json()
    assert (again["accepted"], again["duplicates"]) == (0, 3)
    assert [e.message_id for e in stored_events(runtime)] == ["msg-1", "msg-2"]


def test_a_batch_stores_the_valid_messages_and_reports_the_others_by_index(
    tracker: httpx.Client, runtime: Runtime
) -> None:
    batch = {
        "batch": [
            track(1),
            {"type": "track", "event": "No ids"},
            {"type": "launch", "userId": "u"},
            track(4, timestamp="yesterday"),
            {"type": "identify", "userId": "u-5", "traits": {"email": "not an address"}},
            "not an object",
            track(7, properties=["wrong"]),
            track(8),
        ]
    }
    response = tracker.post("/v1/batch", json=batch)
    assert response.status_code == 200
    body = response.json()
    assert body["success"] is False
    assert body["accepted"] == 2
    rejected = {r["index"]: r["problems"][0] for r in body["rejected"]}
    assert sorted(rejected) == [1, 2, 3, 4, 5, 6]
    assert rejected[1]["loc"] == "batch[1].userId"
    assert "userId or an anonymousId" in rejected[1]["msg"]
    assert rejected[2]["loc"] == "batch[2].type"
    assert rejected[3]["loc"] == "batch[3].timestamp"
    assert rejected[4]["loc"] == "batch[4].traits.email"
    assert rejected[6]["loc"] == "batch[6].properties"
    assert [e.message_id for e in stored_events(runtime)] == ["msg-1", "msg-8"]


def test_a_batch_with_no_valid_message_is_a_400(tracker: httpx.Client) -> None:
    response = tracker.post("/v1/batch", json={"batch": [{"type": "track"}]})
    assert response.status_code == 400
    assert "batch[0].event" in response.json()["message"]


@pytest.mark.parametrize(
    ("body", "where"),
    [
        (b"{not json", "not valid JSON"),
        (b"", "empty"),
        (b"[1, 2]", "JSON object"),
        (b'{"batch": {}}', "'batch' array"),
        (b'{"batch": [], "context": 3}', "context"),
    ],
)
def test_malformed_bodies_get_a_400_that_says_why(
    tracker: httpx.Client, body: bytes, where: str
) -> None:
    response = tracker.post("/v1/batch", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert where in response.json()["message"]


def test_wrong_types_in_a_single_message_name_the_field(tracker: httpx.Client) -> None:
    response = tracker.post(
        "/v1/track", json={"userId": {"id": 1}, "event": 5, "context": "x", "sentAt": 12}
    )
    assert response.status_code == 400
    locations = {p["loc"] for p in response.json()["problems"]}
    assert {"userId", "event", "context", "sentAt"} <= locations


def test_size_limits(tracker: httpx.Client, runtime: Runtime) -> None:
    too_many = tracker.post("/v1/batch", json={"batch": [track(i) for i in range(2501)]})
    assert too_many.status_code == 400
    assert "2500" in too_many.json()["message"]

    big_property = "x" * (33 * 1024)
    too_big_message = tracker.post("/v1/track", json=track(1, properties={"blob": big_property}))
    assert too_big_message.status_code == 400
    assert "32 KB" in too_big_message.json()["message"]

    mixed = tracker.post(
        "/v1/batch", json={"batch": [track(2, properties={"blob": big_property}), track(3)]}
    ).json()
    assert mixed["accepted"] == 1
    assert "a message may have at most 32768" in mixed["rejected"][0]["problems"][0]["msg"]

    huge = {"batch": [track(i, properties={"pad": "y" * 30_000}) for i in range(20)]}
    too_big_batch = tracker.post("/v1/batch", json=huge)
    assert too_big_batch.status_code == 400
    assert "500 KB" in too_big_batch.json()["message"]
    assert [e.message_id for e in stored_events(runtime)] == ["msg-3"]


def test_gzip_bodies(tracker: httpx.Client, runtime: Runtime) -> None:
    body = gzip.compress(orjson.dumps({"batch": [track(1), track(2)]}))
    response = tracker.post(
        "/v1/batch",
        content=body,
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert response.status_code == 200, response.text
    assert len(stored_events(runtime)) == 2

    broken = tracker.post("/v1/batch", content=b"not gzip", headers={"Content-Encoding": "gzip"})
    assert broken.status_code == 400
    assert "gzip" in broken.json()["message"]

    bomb = gzip.compress(b"[" + b" " * (5 * 1024 * 1024) + b"]")
    exploded = tracker.post("/v1/batch", content=bomb, headers={"Content-Encoding": "gzip"})
    assert exploded.status_code == 400
    assert "500 KB" in exploded.json()["message"]

    other = tracker.post("/v1/batch", content=b"{}", headers={"Content-Encoding": "br"})
    assert other.status_code == 400


def test_clock_skew_is_corrected_and_explicit_timestamps_kept(
    tracker: httpx.Client, runtime: Runtime, clock: VirtualClock
) -> None:
    now = clock.now()
    device = now + timedelta(hours=2)  # the device's clock is two hours fast
    tracker.post(
        "/v1/batch",
        json={
            "sentAt": device.isoformat(),
            "batch": [
                track(1, originalTimestamp=(device - timedelta(minutes=5)).isoformat()),
                track(2, timestamp="2025-12-24T18:00:00+01:00"),
                track(3),
            ],
        },
    )
    occurred = [e.occurred_at for e in stored_events(runtime)]
    assert occurred == [
        now - timedelta(minutes=5),
        datetime(2025, 12, 24, 17, 0, tzinfo=UTC),
        now,
    ]


def test_batch_context_and_integrations_apply_to_every_message(
    tracker: httpx.Client, runtime: Runtime
) -> None:
    tracker.post(
        "/v1/batch",
        json={
            "context": {"library": {"name": "shop-backend"}, "locale": "de-DE"},
            "integrations": {"All": False},
            "batch": [track(1), track(2, context={"locale": "fr-FR"})],
        },
    )
    first, second = stored_events(runtime)
    assert first.context["library"] == {"name": "shop-backend"}
    assert (first.context["locale"], second.context["locale"]) == ("de-DE", "fr-FR")
    assert first.integrations == second.integrations == {"All": False}


def test_over_the_rate_the_answer_is_429_with_retry_after(
    tracker: httpx.Client, runtime: Runtime, clock: VirtualClock
) -> None:
    runtime.ingest_limiter.rate = 1.0
    runtime.ingest_limiter.burst = 3
    codes = [tracker.post("/v1/track", json=track(i)).status_code for i in range(4)]
    assert codes == [200, 200, 200, 429]
    limited = tracker.post("/v1/track", json=track(9))
    assert limited.headers["Retry-After"] == "1"
    assert "too many requests" in limited.json()["message"]
    clock.advance(timedelta(seconds=1))
    assert tracker.post("/v1/track", json=track(10)).status_code == 200


def test_public_keys_only_work_from_their_origins(
    anonymous: httpx.Client, runtime: Runtime
) -> None:
    with runtime.database.transaction() as session:
        _, secret = runtime.api_keys.create(
            session,
            scope=Scope.write,
            name="shop",
            allowed_origins=["https://shop.example", "https://*.shop.example"],
        )
    body = orjson.dumps({"anonymousId": "a-1", "event": "Viewed", "writeKey": secret})

    def send(headers: dict[str, str]) -> httpx.Response:
        return anonymous.post(
            "/v1/t", content=body, headers={"Content-Type": "text/plain", **headers}
        )

    allowed = send({"Origin": "https://shop.example"})
    assert allowed.status_code == 200
    assert allowed.headers["Access-Control-Allow-Origin"] == "https://shop.example"
    assert send({"Origin": "https://eu.shop.example"}).status_code == 200
    assert send({"Referer": "https://shop.example/teas?x=1"}).status_code == 200
    refused = send({"Origin": "https://evil.example"})
    assert refused.status_code == 403
    assert "https://evil.example" in refused.json()["message"]
    assert send({}).status_code == 403
    assert send({"Origin": "https://shop.example.evil.example"}).status_code == 403


def test_public_keys_need_valid_origins(runtime: Runtime) -> None:
    from postillon.errors import InvalidInput

    with runtime.database.transaction() as session:
        for bad in (["shop.example"], ["https://shop.example/path"], []):
            with pytest.raises(InvalidInput):
                runtime.api_keys.create(
                    session, scope=Scope.write, name="shop", allowed_origins=bad
                )
        with pytest.raises(InvalidInput):
            runtime.api_keys.create(
                session, scope=Scope.admin, name="x", allowed_origins=["https://a.example"]
            )


def test_preflight_is_answered(anonymous: httpx.Client) -> None:
    response = anonymous.options("/v1/t", headers={"Origin": "https://shop.example"})
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == "https://shop.example"


def test_basic_auth_header_format(server_url: str, write_key: str, runtime: Runtime) -> None:
    token = base64.b64encode(f"{write_key}:".encode()).decode()
    response = httpx.post(
        f"{server_url}/v1/track", json=track(1), headers={"Authorization": f"Basic {token}"}
    )
    assert response.status_code == 200
    assert write_key.startswith(stored_events(runtime)[0].source)


def test_nul_characters_are_refused_where_they_are(tracker: httpx.Client, runtime: Runtime) -> None:
    body = tracker.post(
        "/v1/batch",
        json={"batch": [track(1, properties={"note": "a\u0000b"}), track(2)]},
    ).json()
    assert body["accepted"] == 1
    assert body["rejected"][0]["problems"][0] == {
        "loc": "batch[0].properties.note",
        "msg": "contains a NUL character, which cannot be stored",
    }
    assert [e.message_id for e in stored_events(runtime)] == ["msg-2"]


def test_nul_characters_in_the_admin_api(api: httpx.Client) -> None:
    created = api.post("/api/contacts", json={"email": "n@example.com", "first_name": "a\u0000b"})
    assert created.status_code == 422
    assert created.json()["problems"] == [
        {"loc": "first_name", "msg": "contains a NUL character, which cannot be stored"}
    ]
    batch = api.post(
        "/api/contacts/batch",
        json={
            "contacts": [{"email": "m@example.com"}, {"email": "o@example.com", "tags": ["\u0000"]}]
        },
    )
    assert batch.status_code == 422
    assert batch.json()["problems"][0]["loc"] == "contacts[1].tags[0]"
    assert api.get("/api/contacts", params={"q": "a\u0000b"}).status_code == 400
    assert api.get("/api/visitors/a%00b").status_code == 400


def test_times_beyond_the_calendar_are_reported_not_a_server_error(
    tracker: httpx.Client, runtime: Runtime
) -> None:
    # The skew correction would land before year 1; an offset would move year 1 before it.
    response = tracker.post(
        "/v1/batch",
        json={
            "sentAt": "9999-11-05T20:07:27+12:43",
            "batch": [
                track(1, originalTimestamp="0413-06-15T00:15:30Z"),
                track(2, timestamp="0001-01-01T00:00:00+01:00"),
                track(3),
            ],
        },
    )
    assert response.status_code == 200
    rejected = {r["index"]: r["problems"][0] for r in response.json()["rejected"]}
    assert rejected[0]["loc"] == "batch[0].sentAt"
    assert "clock skew" in rejected[0]["msg"]
    assert rejected[1]["loc"] == "batch[1].timestamp"
    assert [e.message_id for e in stored_events(runtime)] == ["msg-3"]


def test_a_message_stored_between_the_read_and_the_write_counts_as_a_duplicate(
    tracker: httpx.Client, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Duplicates are looked up before the write transaction; a request that stores the
    same messageId in between makes the insert fail, and the batch runs again."""
    real_prepare = TrackingService.prepare
    raced: list[bool] = []

    def prepare_then_race(self: TrackingService, session: Any, messages: Any, **kw: Any) -> Any:
        batch = real_prepare(self, session, messages, **kw)
        if not raced:
            raced.append(True)
            with runtime.database.transaction(read_only=True) as other:
                competing = real_prepare(self, other, messages[:1], **kw)
            with runtime.database.transaction() as other:
                self.ingest(other, competing, received_at=kw["received_at"])
        return batch

    monkeypatch.setattr(TrackingService, "prepare", prepare_then_race)
    answer = tracker.post("/v1/batch", json={"batch": [track(1), track(2)]})
    assert answer.status_code == 200, answer.text
    assert (answer.json()["accepted"], answer.json()["duplicates"]) == (1, 1)
    assert raced == [True]
    assert sorted(e.message_id for e in stored_events(runtime)) == ["msg-1", "msg-2"]
