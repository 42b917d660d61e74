"""`/api/broadcasts` over real HTTP: create, list, get, schedule, send, cancel, status."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
from sqlalchemy.orm import Session

from postillon.runtime import Runtime
from tests.broadcasts.support import make_contacts, make_segment, make_template, run_broadcasts


def _problems(answer: httpx.Response) -> dict[str, str]:
    assert answer.status_code == 422, answer.text
    return {p["loc"]: p["msg"] for p in answer.json()["problems"]}


def test_create_schedule_send_and_follow(
    runtime: Runtime, session: Session, api: httpx.Client
) -> None:
    make_template(session, runtime, "news")
    members = make_contacts(session, runtime, 3)
    make_segment(session, runtime, "vip", members)
    session.commit()

    created = api.post(
        "/api/broadcasts",
        json={
            "key": "june",
            "name": "June news",
            "template": "news",
            "audience": {"segment": "vip"},
        },
    )
    assert created.status_code == 201, created.text
    assert (created.json()["state"], created.json()["variants"]) == (
        "draft",
        [{"name": "A", "template": "news"}],
    )
    assert [b["key"] for b in api.get("/api/broadcasts").json()] == ["june"]

    scheduled = api.post(
        "/api/broadcasts/june/schedule",
        json={"local_send_time": "2026-01-06T09:00", "timezone": "Europe/Berlin"},
    )
    assert scheduled.status_code == 200, scheduled.text
    body = scheduled.json()
    assert (body["state"], body["local_send_time"], body["timezone"]) == (
        "scheduled",
        "2026-01-06T09:00",
        "Europe/Berlin",
    )
    assert datetime.fromisoformat(body["start_at"]) == datetime(2026, 1, 5, 19, 0, tzinfo=UTC)

    sent = api.post("/api/broadcasts/june/send")
    assert sent.status_code == 200, sent.text
    assert sent.json()["state"] == "sending"
    run_broadcasts(runtime)
    status = api.get("/api/broadcasts/june/status").json()
    assert (status["recipient_count"], status["counts"], status["done"]) == (3, {"queued": 3}, 0)
    assert api.get("/api/broadcasts/june").json()["counts"] == {"queued": 3}

    assert api.post("/api/broadcasts/june/send").status_code == 409
    cancelled = api.post("/api/broadcasts/june/cancel")
    assert cancelled.json()["state"] == "cancelled"
    assert api.get("/api/broadcasts/june/status").json()["counts"] == {"cancelled": 3}
    assert api.post("/api/broadcasts/june/cancel").status_code == 409


def test_bad_definitions_are_refused_naming_each_problem(
    runtime: Runtime, session: Session, api: httpx.Client
) -> None:
    make_template(session, runtime, "news")
    session.commit()
    problems = _problems(
        api.post(
            "/api/broadcasts",
            json={
                "key": "bad key",
                "name": "x",
                "variants": [
                    {"name": "A", "template": "news"},
                    {"name": "A", "template": "missing"},
                ],
                "audience": {"segment": "nobody"},
                "ab_test": {"share_percent": 10, "duration_minutes": 60},
                "timezone": "Mars/Base",
            },
        )
    )
    assert problems == {
        "key": "use letters, digits, - and _ (at most 100)",
        "timezone": "unknown time zone 'Mars/Base'; use an IANA name such as Europe/Berlin",
        "variants[1].name": "used twice",
        "variants[1].template": "no template 'missing'",
        "audience.segment": "no segment 'nobody'",
    }
    shares = api.post(
        "/api/broadcasts",
        json={
            "key": "ab",
            "name": "x",
            "variants": [{"name": "A", "template": "news"}, {"name": "B", "template": "news"}],
            "audience": {"everyone": True},
            "ab_test": {"share_percent": 49, "duration_minutes": 60},
        },
    )
    assert shares.status_code == 201, shares.text  # 2 x 49 % leaves 2 % for the winner
    three = _problems(
        api.post(
            "/api/broadcasts",
            json={
                "key": "abc",
                "name": "x",
                "variants": [{"name": n, "template": "news"} for n in "ABC"],
                "audience": {"everyone": True},
                "ab_test": {"share_percent": 40, "duration_minutes": 60},
            },
        )
    )
    assert list(three) == ["ab_test.share_percent"]
    shape = api.post(
        "/api/broadcasts",
        json={"key": "x", "name": "x", "template": "news", "audience": {"everyone": True,
              "topic": "offers"}},
    )  # fmt: skip
    assert shape.status_code == 422
    assert "exactly one of segment, topic or everyone" in shape.text
    far = api.post(
        "/api/broadcasts",
        json={"key": "far", "name": "x", "template": "news", "audience": {"everyone": True},
              "send_at": "0001-01-01T00:00:00+05:00"},
    )  # fmt: skip
    assert list(_problems(far)) == ["send_at"]
    assert api.get("/api/broadcasts/nope").status_code == 404
    assert api.post("/api/broadcasts/nope/send").status_code == 404


def test_broadcasts_need_an_admin_key(anonymous: httpx.Client) -> None:
    assert anonymous.get("/api/broadcasts").status_code == 401
    assert anonymous.get("/api/templates/news/stats").status_code == 401
