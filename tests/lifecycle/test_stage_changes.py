"""Every way a contact's stage changes writes history, a `stage_changed` event and a
refresh-queue row: the stage API, create, update, upsert, batch, import, merge, and
`LifecycleService.change_stage` for many contacts at once."""

from __future__ import annotations

import io
from datetime import timedelta

import httpx
import pytest
from sqlalchemy.orm import Session

from postillon.clock import VirtualClock
from postillon.contacts.schemas import ContactIn
from postillon.contacts.service import ContactFilter
from postillon.errors import InvalidInput
from postillon.imports.service import ImportOptions
from postillon.runtime import Runtime
from tests.lifecycle.support import clear_queue, history, queued, stage_events


def test_change_stage_moves_many_contacts_at_once(runtime: Runtime) -> None:
    with runtime.database.transaction() as session:
        ann = runtime.contacts.create(
            session, ContactIn(email="ann@example.com", lifecycle_stage="lead")
        )
        bob = runtime.contacts.create(session, ContactIn(email="bob@example.com"))
        cid = runtime.contacts.create(
            session, ContactIn(email="cid@example.com", lifecycle_stage="sql")
        )
    clear_queue(runtime)

    with runtime.database.transaction() as session:
        moves = runtime.lifecycle.change_stage(session, [ann.id, bob.id, cid.id], "MQL ", "rule:7")
    assert {(m.contact_id, m.from_stage, m.to_stage) for m in moves} == {
        (ann.id, "lead", "mql"),
        (bob.id, None, "mql"),
        (cid.id, "sql", "mql"),
    }
    assert history(runtime, ann.id) == [(None, "lead", "api"), ("lead", "mql", "rule:7")]
    assert stage_events(runtime, ann.id)[-1] == {
        "from": "lead",
        "to": "mql",
        "source": "rule:7",
        "direction": "forward",
    }
    assert stage_events(runtime, bob.id) == [
        {"from": None, "to": "mql", "source": "rule:7", "direction": "forward"}
    ]
    assert stage_events(runtime, cid.id)[-1]["direction"] == "backward"
    assert queued(runtime) == {ann.id, bob.id, cid.id}

    # Already there: nothing happens. Out of the pipeline is backward.
    clear_queue(runtime)
    with runtime.database.transaction() as session:
        assert runtime.contacts.get(session, bob.id).lifecycle_stage == "mql"
        assert runtime.lifecycle.change_stage(session, [ann.id, bob.id], "mql", "rule:7") == []
        moves = runtime.lifecycle.change_stage(session, [ann.id], None, "api")
    assert [(m.from_stage, m.to_stage) for m in moves] == [("mql", None)]
    assert stage_events(runtime, ann.id)[-1]["direction"] == "backward"
    assert queued(runtime) == {ann.id}


def test_change_stage_refuses_unknown_stages_and_skips_missing_contacts(
    runtime: Runtime, session: Session
) -> None:
    ann = runtime.contacts.create(session, ContactIn(email="ann@example.com"))
    with pytest.raises(InvalidInput) as raised:
        runtime.lifecycle.change_stage(session, [ann.id], "royalty", "api")
    assert raised.value.problems[0].location == "stage"
    assert "subscriber, lead, mql" in raised.value.problems[0].message
    with pytest.raises(InvalidInput) as raised:
        runtime.lifecycle.change_stage(session, [ann.id], "lead", "")
    assert raised.value.problems[0].location == "source"
    missing = ContactIn(email="x@example.com")
    gone = runtime.contacts.create(session, missing)
    runtime.contacts.delete(session, gone.id)
    moves = runtime.lifecycle.change_stage(session, [ann.id, gone.id], "lead", "api")
    assert [m.contact_id for m in moves] == [ann.id]


def test_contact_writes_record_stage_changes(api: httpx.Client, runtime: Runtime) -> None:
    created = api.post(
        "/api/contacts", json={"email": "ann@example.com", "lifecycle_stage": "Lead"}
    )
    assert created.status_code == 201, created.text
    ann = created.json()
    assert ann["lifecycle_stage"] == "lead"
    plain = api.post("/api/contacts", json={"email": "bob@example.com"}).json()
    assert history(runtime, plain["id"]) == []

    api.patch(f"/api/contacts/{ann['id']}", json={"lifecycle_stage": "customer"})
    api.patch(f"/api/contacts/{ann['id']}", json={"first_name": "Ann"})  # stage untouched
    api.post("/api/contacts/upsert", json={"email": "ann@example.com", "lifecycle_stage": "sql"})
    batch = api.post(
        "/api/contacts/batch",
        json={
            "contacts": [
                {"email": "ann@example.com", "lifecycle_stage": "opportunity"},
                {"email": "bob@example.com", "lifecycle_stage": "lead"},
                {"email": "cid@example.com", "lifecycle_stage": "subscriber"},
                {"email": "cid@example.com", "lifecycle_stage": "lead"},
            ]
        },
    )
    assert batch.status_code == 200, batch.text
    assert history(runtime, ann["id"]) == [
        (None, "lead", "api"),
        ("lead", "customer", "api"),
        ("customer", "sql", "api"),
        ("sql", "opportunity", "api"),
    ]
    assert [e["direction"] for e in stage_events(runtime, ann["id"])] == [
        "forward",
        "forward",
        "backward",
        "forward",
    ]
    cid = api.get("/api/contacts", params={"email": "cid@example.com"}).json()["items"][0]
    # Created and changed within one batch: one move, from nothing to where it ended.
    assert history(runtime, cid["id"]) == [(None, "lead", "api")]
    assert {ann["id"], plain["id"], cid["id"]} <= {str(i) for i in queued(runtime)}

    cleared = api.patch(f"/api/contacts/{ann['id']}", json={"lifecycle_stage": None})
    assert cleared.json()["lifecycle_stage"] is None
    assert history(runtime, ann["id"])[-1] == ("opportunity", None, "api")


def test_a_bad_stage_fails_the_whole_batch(api: httpx.Client, runtime: Runtime) -> None:
    response = api.post(
        "/api/contacts/batch",
        json={
            "contacts": [
                {"email": "ann@example.com", "lifecycle_stage": "lead"},
                {"email": "bob@example.com", "lifecycle_stage": "royalty"},
            ]
        },
    )
    assert response.status_code == 422
    assert response.json()["problems"][0]["loc"] == "contacts[1].lifecycle_stage"
    assert api.get("/api/contacts").json()["items"] == []
    assert queued(runtime) == set()


def test_imports_record_stage_changes(runtime: Runtime) -> None:
    content = b"email,stage\nann@example.com,lead\nbob@example.com,royalty\ncid@example.com,\n"
    report = runtime.imports.run(
        runtime.database, io.BytesIO(content), filename="c.csv", options=ImportOptions()
    )
    assert [(p.line, p.column) for p in report.problems] == [(3, "stage")]
    assert "unknown stage 'royalty'" in report.problems[0].reason
    with runtime.database.transaction(read_only=True) as session:
        ann = runtime.contacts.list_contacts(
            session, ContactFilter(email="ann@example.com"), cursor=None, limit=1
        ).items[0]
    assert history(runtime, ann.id) == [(None, "lead", "import")]
    assert stage_events(runtime, ann.id)[0]["source"] == "import"
    assert ann.id in queued(runtime)


def test_merge_records_the_survivors_stage_change_and_keeps_history(
    api: httpx.Client, runtime: Runtime, clock: VirtualClock
) -> None:
    old = api.post("/api/contacts", json={"email": "ann@old.example", "lifecycle_stage": "lead"})
    clock.advance(timedelta(days=1))
    new = api.post("/api/contacts", json={"external_id": "shop-7", "lifecycle_stage": "customer"})
    old_id, new_id = old.json()["id"], new.json()["id"]
    clear_queue(runtime)

    merged = api.post(f"/api/contacts/{old_id}/merge", json={"contact_id": new_id})
    assert merged.status_code == 200, merged.text
    assert merged.json()["lifecycle_stage"] == "customer"
    assert history(runtime, old_id) == [
        (None, "lead", "api"),
        (None, "customer", "api"),  # the absorbed contact's history, moved over
        ("lead", "customer", "merge"),
    ]
    assert stage_events(runtime, old_id)[-1] == {
        "from": "lead",
        "to": "customer",
        "source": "merge",
        "direction": "forward",
    }
    assert {str(i) for i in queued(runtime)} == {old_id}
