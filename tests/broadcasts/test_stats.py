"""Message statistics on a hand-made set of messages: exact figures, through the API."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from postillon.kit.ids import new_id
from postillon.kit.repository import insert_rows
from postillon.messages import stats
from postillon.models import Message
from postillon.runtime import Runtime
from tests.broadcasts.support import broadcast, create, make_contacts, make_template

WEEK = timedelta(days=7)


def _messages(runtime: Runtime, session: Session) -> dict[str, uuid.UUID]:
    """Eight messages of broadcast `ab`: what became of each is in its row."""
    templates = {
        "A": make_template(session, runtime, "news-a"),
        "B": make_template(session, runtime, "news-b"),
    }
    contacts = make_contacts(session, runtime, 8)
    session.commit()
    create(
        runtime,
        key="ab",
        variants=[{"name": "A", "template": "news-a"}, {"name": "B", "template": "news-b"}],
        audience={"everyone": True},
        ab_test={"share_percent": 10, "duration_minutes": 60},
    )
    broadcast_id = broadcast(runtime, "ab").id
    now = runtime.clock.now()
    hard = {"bounced_at": now, "bounce_kind": "hard", "state": "bounced"}
    soft = {"bounced_at": now, "bounce_kind": "soft"}
    outcomes: list[tuple[str, dict[str, Any]]] = [
        ("A", {"opened_at": now, "clicked_at": now}),
        ("A", {"opened_at": now}),
        ("A", hard),
        ("B", soft),
        ("B", {"opened_at": now, "clicked_at": now, "unsubscribed_at": now}),
        ("B", {"complained_at": now, "machine_opens": 2}),
        ("B", {"state": "queued", "sent_at": None}),
        ("A", {"opened_at": now - WEEK, "sent_at": now - WEEK}),
    ]
    defaults: dict[str, Any] = {
        "state": "sent", "sent_at": now, "opened_at": None, "clicked_at": None,
        "bounced_at": None, "bounce_kind": None, "complained_at": None,
        "unsubscribed_at": None, "machine_opens": 0,
    }  # fmt: skip
    rows = [
        {
            **defaults,
            **outcome,
            "id": new_id(),
            "contact_id": contact_id,
            "channel": "email",
            "kind": "marketing",
            "topic": "newsletter",
            "template_id": templates[variant],
            "template_version": 1,
            "broadcast_id": broadcast_id,
            "variant": variant,
            "source": "broadcast",
            "dedupe_key": f"broadcast:{broadcast_id}:{contact_id}",
            "to_address": f"{contact_id.hex}@example.com",
            "context": {},
            "attempts": 1,
            "due_at": now - WEEK,
            "queued_at": now - WEEK,
        }
        for contact_id, (variant, outcome) in zip(contacts, outcomes, strict=True)
    ]
    with runtime.database.transaction() as tx:
        insert_rows(tx, Message, rows)
    return templates


def test_figures_of_a_broadcast_by_variant(runtime: Runtime, session: Session) -> None:
    _messages(runtime, session)
    with runtime.database.transaction(read_only=True) as tx:
        found = runtime.broadcasts.stats(tx, "ab", since=None, until=None)
    a, b, totals = found.variants["A"], found.variants["B"], found.totals
    assert (a.sent, a.delivered, a.bounced_hard, a.bounced_soft) == (4, 3, 1, 0)
    assert (a.unique_opens, a.unique_clicks, a.machine_opens) == (3, 1, 0)
    assert (a.open_rate, a.click_rate, a.click_to_open) == (1.0, round(1 / 3, 6), round(1 / 3, 6))
    assert (b.sent, b.delivered, b.bounced, b.bounced_hard, b.bounced_soft) == (3, 2, 1, 0, 1)
    assert (b.unique_opens, b.unique_clicks, b.machine_opens) == (1, 1, 2)
    assert (b.unsubscribes, b.complaints) == (1, 1)
    assert (b.open_rate, b.click_rate, b.click_to_open) == (0.5, 0.5, 1.0)
    assert (totals.sent, totals.delivered, totals.bounced) == (7, 5, 2)
    assert (totals.unique_opens, totals.unique_clicks, totals.machine_opens) == (4, 2, 2)
    assert (totals.unsubscribes, totals.complaints) == (1, 1)
    assert (totals.open_rate, totals.click_rate, totals.click_to_open) == (0.8, 0.4, 0.5)


def test_a_time_window_counts_the_messages_sent_within_it(
    runtime: Runtime, session: Session
) -> None:
    templates = _messages(runtime, session)
    now = runtime.clock.now()
    with runtime.database.transaction(read_only=True) as tx:
        recent = stats.figures_by(
            tx, where={"template_id": templates["A"]}, since=now - timedelta(days=1)
        )[()]
        older = stats.figures_by(
            tx, where={"template_id": templates["A"]}, until=now - timedelta(days=1)
        )[()]
    assert (recent.sent, recent.delivered, recent.unique_opens) == (3, 2, 2)
    assert (older.sent, older.delivered, older.unique_opens) == (1, 1, 1)


def test_grouping_by_any_column_of_the_outbox(runtime: Runtime, session: Session) -> None:
    templates = _messages(runtime, session)
    with runtime.database.transaction(read_only=True) as tx:
        by_template = stats.figures_by(tx, where={"source": "broadcast"}, group_by=["template_id"])
        with pytest.raises(Exception, match="cannot group messages by to_address"):
            stats.figures_by(tx, where={}, group_by=["to_address"])
    assert by_template[(templates["A"],)].sent == 4
    assert by_template[(templates["B"],)].sent == 3


def test_statistics_over_http(runtime: Runtime, session: Session, api: httpx.Client) -> None:
    _messages(runtime, session)
    since = (runtime.clock.now() - timedelta(days=1)).isoformat()
    answer = api.get("/api/templates/news-a/stats", params={"since": since})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["template"] == "news-a"
    assert datetime.fromisoformat(body["since"]) == datetime.fromisoformat(since)
    assert {k: body["totals"][k] for k in ("sent", "delivered", "bounced", "unique_opens")} == {
        "sent": 3,
        "delivered": 2,
        "bounced": 1,
        "unique_opens": 2,
    }
    answer = api.get("/api/broadcasts/ab/stats")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["totals"]["sent"], body["variants"]["B"]["click_to_open"]) == (7, 1.0)

    assert api.get("/api/templates/nope/stats").status_code == 404
    assert api.get("/api/broadcasts/nope/stats").status_code == 404
    bad = api.get("/api/templates/news-a/stats", params={"since": "yesterday"})
    assert bad.status_code == 422
    backwards = api.get(
        "/api/templates/news-a/stats",
        params={"since": "2026-01-05T00:00:00Z", "until": "2026-01-04T00:00:00Z"},
    )
    assert backwards.status_code == 422
    assert backwards.json()["problems"][0]["loc"] == "until"
    far = api.get("/api/templates/news-a/stats", params={"since": "0001-01-01T00:00:00+05:00"})
    assert (far.status_code, far.json()["problems"][0]["loc"]) == (422, "since")


def test_a_machine_open_counts_apart_from_people(
    runtime: Runtime, session: Session, api: httpx.Client, anonymous: httpx.Client
) -> None:
    _messages(runtime, session)
    with runtime.database.transaction(read_only=True) as tx:
        first = tx.scalars(select(Message).where(Message.variant == "A")).first()
        assert first is not None
        pixel = runtime.links.open_pixel_url(first.id)
    # Apple Mail Privacy Protection fetches the pixel with a bare user agent.
    path = "/" + pixel.split("/", 3)[3]
    assert anonymous.get(path, headers={"User-Agent": "Mozilla/5.0"}).status_code == 200
    totals = api.get("/api/broadcasts/ab/stats").json()["totals"]
    assert (totals["machine_opens"], totals["unique_opens"]) == (3, 4)
