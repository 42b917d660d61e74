"""Contact changes on the timeline (what rules and journeys trigger on): `contact_created`,
`tag_added`, `tag_removed`, `attribute_changed`, recorded by the contacts upsert in the
writer's transaction, set-based; not by imports unless they run the automations."""

from __future__ import annotations

import io
import uuid

from sqlalchemy import func, select

from postillon.contacts.merge import merge_contacts
from postillon.contacts.schemas import ContactIn
from postillon.imports.service import ImportOptions
from postillon.models import Event
from postillon.runtime import Runtime
from tests.automations.rules_support import new_contact, timeline
from tests.support.files import csv_file

CHANGES = ("contact_created", "tag_added", "tag_removed", "attribute_changed")


def test_a_created_contact_has_contact_created_and_its_tags_added(runtime: Runtime) -> None:
    ann = new_contact(runtime, tags=["vip", "b2b"], attributes={"plan": "pro"})
    with runtime.database.transaction(read_only=True) as session:
        assert timeline(session, ann, *CHANGES) == [
            ("contact_created", {"source": "api"}),
            ("tag_added", {"tag": "b2b"}),
            ("tag_added", {"tag": "vip"}),
        ]


def test_changes_of_a_stored_contact_are_one_event_each(runtime: Runtime) -> None:
    ann = new_contact(runtime, tags=["a"], attributes={"plan": "free", "seats": 1, "trial": True})
    with runtime.database.transaction() as session:
        data = ContactIn(tags=["b"], attributes={"plan": "pro", "seats": 1, "trial": None, "n": 2})
        runtime.contacts.update(session, ann, data)
        runtime.contacts.update(session, ann, data)  # unchanged: nothing more
        runtime.contacts.remove_tags(session, ann, ["a", "missing"])
    with runtime.database.transaction(read_only=True) as session:
        assert timeline(session, ann, *CHANGES)[2:] == [
            ("tag_added", {"tag": "b"}),
            ("attribute_changed", {"attribute": "n", "from": None, "to": 2}),
            ("attribute_changed", {"attribute": "plan", "from": "free", "to": "pro"}),
            ("attribute_changed", {"attribute": "trial", "from": True, "to": None}),
            ("tag_removed", {"tag": "a"}),
        ]


def test_a_batch_records_the_events_of_all_its_contacts_in_one_go(runtime: Runtime) -> None:
    with runtime.database.transaction() as session:
        outcomes = runtime.contacts.upsert_batch(
            session,
            [ContactIn(email=f"p{i}@example.com", tags=["x"]) for i in range(50)],
        )
        names = session.execute(
            select(Event.name, func.count()).group_by(Event.name).order_by(Event.name)
        ).all()
    assert len(outcomes) == 50
    assert [tuple(row) for row in names] == [("contact_created", 50), ("tag_added", 50)]


def test_an_import_records_no_changes_unless_it_runs_the_automations(runtime: Runtime) -> None:
    ann = new_contact(runtime, "ann@example.com")

    def run(content: bytes, *, run_automations: bool = False) -> uuid.UUID:
        report = runtime.imports.run(
            runtime.database,
            io.BytesIO(content),
            filename="c.csv",
            options=ImportOptions(run_automations=run_automations),
        )
        return report.import_id

    def created() -> list[tuple[uuid.UUID | None, str]]:
        with runtime.database.transaction(read_only=True) as session:
            query = select(Event.contact_id, Event.properties).where(
                Event.name == "contact_created"
            )
            return [
                (cid, props["source"]) for cid, props in session.execute(query.order_by(Event.id))
            ]

    run(csv_file("email,first_name", "ann@example.com,Ann", "bob@example.com,Bob"))
    with runtime.database.transaction(read_only=True) as session:
        assert session.scalar(select(func.count()).select_from(Event)) == 1  # ann's creation
    import_id = run(
        csv_file("email,first_name", "carl@example.com,Carl", "ann@example.com,Anne"),
        run_automations=True,
    )
    assert [source for _, source in created()] == ["api", "import"]
    carl = created()[1][0]
    assert carl is not None and carl != ann
    # Running its automations again records nothing twice.
    with runtime.database.transaction() as session:
        assert runtime.imports.run_automations(session, import_id) == 1
    assert len(created()) == 2


def test_a_merge_creates_no_contact(runtime: Runtime) -> None:
    ann = new_contact(runtime, "ann@example.com")
    bob = new_contact(runtime, "bob@example.com")
    with runtime.database.transaction() as session:
        merge_contacts(
            session, survivor_id=ann, absorbed_id=bob, reason="test", now=runtime.clock.now()
        )
    with runtime.database.transaction(read_only=True) as session:
        created = session.scalars(
            select(Event.contact_id).where(Event.name == "contact_created")
        ).all()
    # Bob's creation event moved to Ann with his timeline; no new one was recorded.
    assert created == [ann, ann]
