"""The CSV import as a domain service: mapping, upsert by email, bad rows, dry runs, chunks.

Each test imports a file it builds itself and looks at the contacts through the contact
service, so it checks what a user would see, not how the import stores it.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from postillon.clock import VirtualClock
from postillon.contacts.fields import Channel, ConsentStatus
from postillon.contacts.schemas import ContactIn, ContactOut
from postillon.contacts.service import ContactFilter
from postillon.errors import InvalidInput, NotFound
from postillon.imports.service import ImportOptions, ImportReport, RowProblem
from postillon.kit.ids import new_id
from postillon.models import Contact, ContactImportTouch, Event
from postillon.runtime import Runtime
from tests.support.files import XLSX_START, csv_file, stored_contacts

BOM = "\ufeff"


def run_import(
    runtime: Runtime,
    content: bytes,
    *,
    filename: str = "contacts.csv",
    on_problem: Callable[[RowProblem], None] | None = None,
    progress: Callable[[int, int], None] | None = None,
    **options: Any,
) -> ImportReport:
    return runtime.imports.run(
        runtime.database,
        io.BytesIO(content),
        filename=filename,
        options=ImportOptions(**options),
        on_problem=on_problem,
        progress=progress,
    )


def find_contact(runtime: Runtime, email: str) -> ContactOut | None:
    with runtime.database.transaction(read_only=True) as session:
        page = runtime.contacts.list_contacts(
            session, ContactFilter(email=email), cursor=None, limit=1
        )
    return page.items[0] if page.items else None


def contact(runtime: Runtime, email: str) -> ContactOut:
    found = find_contact(runtime, email)
    assert found is not None, f"no contact with the email {email}"
    return found


def count_rows(runtime: Runtime, model: type[Contact] | type[Event]) -> int:
    with runtime.database.transaction(read_only=True) as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def create_contact(runtime: Runtime, **fields: Any) -> ContactOut:
    with runtime.database.transaction() as session:
        return runtime.contacts.create(session, ContactIn(**fields))


def attribute_types(runtime: Runtime) -> dict[str, str]:
    with runtime.database.transaction(read_only=True) as session:
        return {d.name: d.type for d in runtime.contacts.attribute_definitions(session)}


def located(report: ImportReport) -> set[tuple[int, str]]:
    return {(p.line, p.column) for p in report.problems}


def reason_at(report: ImportReport, line: int) -> str:
    return "; ".join(p.reason for p in report.problems if p.line == line)


# --- mapping columns ------------------------------------------------------------------------


def test_known_headers_fill_the_contact_fields(runtime: Runtime) -> None:
    content = csv_file(
        "E-Mail,First Name,Nachname,Mobile,Tags,Score,Stage,Language,Time Zone",
        'Ann@Example.com,Ann,Arbor,+49 151 23456789,"vip, newsletter",12,Lead,de_de,Europe/Berlin',
    )

    report = run_import(runtime, content)

    assert (report.rows, report.created, report.failed) == (1, 1, 0)
    ann = contact(runtime, "ann@example.com")
    assert ann.email == "ann@example.com"
    assert (ann.first_name, ann.last_name) == ("Ann", "Arbor")
    assert ann.phone == "+4915123456789"
    assert ann.tags == ["newsletter", "vip"]
    assert ann.score == 12
    assert ann.lifecycle_stage == "lead"
    assert ann.locale == "de-DE"
    assert ann.timezone == "Europe/Berlin"
    assert ann.attributes == {}


def test_other_columns_become_attributes_typed_by_a_header_suffix(runtime: Runtime) -> None:
    content = csv_file(
        "email,Company,age:number,VIP:boolean,Birthday:date,Interests:list,2nd Address",
        'ann@example.com,ACME,42,yes,1990-05-01,"golf, sailing",Hauptstr. 1',
        "bob@example.com,Initech,37.5,no,1985-12-24,chess,",
    )

    report = run_import(runtime, content)

    assert (report.created, report.failed) == (2, 0)
    assert contact(runtime, "ann@example.com").attributes == {
        "company": "ACME",
        "age": 42,
        "vip": True,
        "birthday": "1990-05-01",
        "interests": ["golf", "sailing"],
        "_2nd_address": "Hauptstr. 1",
    }
    assert contact(runtime, "bob@example.com").attributes == {
        "company": "Initech",
        "age": 37.5,
        "vip": False,
        "birthday": "1985-12-24",
        "interests": ["chess"],
    }
    assert attribute_types(runtime) == {
        "company": "string",
        "age": "number",
        "vip": "boolean",
        "birthday": "date",
        "interests": "list",
        "_2nd_address": "string",
    }


def test_an_explicit_mapping_names_fields_attributes_and_skipped_columns(
    runtime: Runtime,
) -> None:
    content = csv_file(
        "E-Mail Adresse,Kundennummer,Geburtstag,Postleitzahl,Intern",
        "Ann@Example.com,K-1,1990-05-01,01067,do not import",
    )
    mapping = {
        "E-Mail Adresse": "email",
        "Kundennummer": "external_id",
        "Geburtstag": "birthday:date",
        "Postleitzahl": "attribute:zip",
        "Intern": "skip",
    }

    report = run_import(runtime, content, mapping=mapping)

    assert (report.created, report.failed) == (1, 0)
    ann = contact(runtime, "ann@example.com")
    assert ann.external_id == "K-1"
    assert ann.attributes == {"birthday": "1990-05-01", "zip": "01067"}
    assert attribute_types(runtime) == {"birthday": "date", "zip": "string"}


def test_a_mapping_for_a_column_the_file_lacks_is_refused(runtime: Runtime) -> None:
    content = csv_file("email,first_name", "ann@example.com,Ann")

    with pytest.raises(InvalidInput) as refused:
        run_import(runtime, content, mapping={"E-Mail Adresse": "email"})

    assert "E-Mail Adresse" in refused.value.message
    assert "no such column" in refused.value.message
    assert count_rows(runtime, Contact) == 0


def test_two_columns_for_the_same_field_are_refused(runtime: Runtime) -> None:
    content = csv_file("email,E-Mail", "ann@example.com,ann@example.org")

    with pytest.raises(InvalidInput) as refused:
        run_import(runtime, content)

    assert "maps to email" in refused.value.message
    assert count_rows(runtime, Contact) == 0


def test_a_file_with_an_external_id_but_no_email_column_is_imported(runtime: Runtime) -> None:
    content = csv_file("Customer ID,First Name", "C-1,Ann", "C-2,Bob")

    report = run_import(runtime, content)

    assert (report.created, report.failed) == (2, 0)
    people = sorted(
        (c["external_id"], c["first_name"], c["email"]) for c in stored_contacts(runtime).values()
    )
    assert people == [("C-1", "Ann", None), ("C-2", "Bob", None)]


# --- file formats ---------------------------------------------------------------------------


def test_a_semicolon_separated_file_from_german_excel_is_read(runtime: Runtime) -> None:
    # Excel in a German locale: `;` between values, CRLF, "CSV UTF-8" starts with a BOM.
    content = csv_file(
        BOM + "E-Mail;Vorname;Nachname;Telefon;Stadt",
        "juergen@example.com;Jürgen;Müller, Dr.;+49 30 1234567;Köln",
        "gisela@example.com;Gisela;Groß;;Düsseldorf",
        newline="\r\n",
    )

    report = run_import(runtime, content)

    assert (report.rows, report.created, report.failed) == (2, 2, 0)
    juergen = contact(runtime, "juergen@example.com")
    assert (juergen.first_name, juergen.last_name) == ("Jürgen", "Müller, Dr.")
    assert juergen.phone == "+49301234567"
    assert juergen.attributes == {"stadt": "Köln"}
    assert contact(runtime, "gisela@example.com").attributes == {"stadt": "Düsseldorf"}


def test_a_byte_order_mark_does_not_hide_the_first_header(runtime: Runtime) -> None:
    content = csv_file(BOM + "email,first_name", "ann@example.com,Ann")

    report = run_import(runtime, content)

    assert (report.created, report.failed) == (1, 0)
    assert contact(runtime, "ann@example.com").attributes == {}


def test_unnamed_empty_columns_that_excel_leaves_at_the_end_do_not_block_the_import(
    runtime: Runtime,
) -> None:
    # Excel writes a `;` for every column it ever formatted, under an empty header. The
    # refusal says "name or skip the column", but an unnamed column cannot be mapped.
    content = csv_file(
        "E-Mail;Vorname;;", "ann@example.com;Ann;;", "bob@example.com;Bob;;", newline="\r\n"
    )

    report = run_import(runtime, content)

    assert (report.created, report.failed) == (2, 0)
    assert contact(runtime, "ann@example.com").attributes == {}


@pytest.mark.parametrize(
    ("content", "named"),
    [
        pytest.param(XLSX_START, "UTF-8", id="an Excel workbook, not CSV"),
        pytest.param(
            csv_file("email,first_name", "ann@example.com,Ann", encoding="utf-16"),
            "UTF-8",
            id="UTF-16 text",
        ),
        pytest.param(
            csv_file("email,first_name", "juergen@example.com,Jürgen", encoding="latin-1"),
            "UTF-8",
            id="Latin-1 text",
        ),
        pytest.param(b"", "empty", id="an empty file"),
        pytest.param(
            csv_file("name,city", "Ann,Berlin"), "email or external_id", id="no email column"
        ),
    ],
)
def test_a_file_that_cannot_be_imported_is_refused_before_anything_is_written(
    runtime: Runtime, content: bytes, named: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        run_import(runtime, content)

    assert named in refused.value.message
    assert count_rows(runtime, Contact) == 0


def test_the_encoding_error_names_the_line_with_the_bad_byte(runtime: Runtime) -> None:
    content = csv_file(
        "email,first_name", "ann@example.com,Ann", "juergen@example.com,Jürgen", encoding="latin-1"
    )

    with pytest.raises(InvalidInput) as refused:
        run_import(runtime, content)

    assert "line 3" in refused.value.message


def _damaged_after_the_first_chunk(damage: str) -> bytes:
    lines = ["email,first_name"] + [f"person{i}@example.com,P{i}" for i in range(3000)]
    if damage == "latin-1":
        lines[2900] = "juergen@example.com,J\xfcrgen"
        return csv_file(*lines, encoding="latin-1")
    lines[2900] = 'juergen@example.com,"Jürgen'  # the quote is never closed
    return csv_file(*lines)


@pytest.mark.parametrize("damage", ["latin-1", "unclosed quote"])
def test_a_file_damaged_after_the_first_chunk_writes_nothing(runtime: Runtime, damage: str) -> None:
    runtime.imports.chunk_rows = 2000  # the damage sits after the first chunk
    content = _damaged_after_the_first_chunk(damage)

    with pytest.raises(InvalidInput):
        run_import(runtime, content)

    assert count_rows(runtime, Contact) == 0


# --- upsert ---------------------------------------------------------------------------------


def test_an_existing_contact_is_updated_not_duplicated_matching_email_case_insensitively(
    runtime: Runtime,
) -> None:
    existing = create_contact(
        runtime, email="ann@example.com", first_name="Ann", tags=["customer"], attributes={"a": 1}
    )
    content = csv_file("email,first_name,last_name", "ANN@Example.COM,Anna,Arbor", "bob@x.org,Bob,")

    report = run_import(runtime, content)

    assert (report.created, report.updated, report.unchanged, report.failed) == (1, 1, 0, 0)
    assert count_rows(runtime, Contact) == 2
    ann = contact(runtime, "ann@example.com")
    assert ann.id == existing.id
    assert (ann.first_name, ann.last_name) == ("Anna", "Arbor")
    assert ann.tags == ["customer"]
    assert ann.attributes == {"a": 1}


def test_an_email_repeated_in_one_file_ends_as_one_contact_with_the_later_values(
    runtime: Runtime,
) -> None:
    content = csv_file(
        "email,first_name", "ann@example.com,Ann", "bob@example.com,Bob", "ANN@example.com,Anna"
    )

    report = run_import(runtime, content)

    assert (report.rows, report.created, report.updated, report.failed) == (3, 2, 1, 0)
    assert count_rows(runtime, Contact) == 2
    assert contact(runtime, "ann@example.com").first_name == "Anna"


def test_a_row_whose_email_and_external_id_belong_to_two_contacts_is_a_bad_row(
    runtime: Runtime,
) -> None:
    create_contact(runtime, email="ann@example.com", external_id="C-1", first_name="Ann")
    create_contact(runtime, email="bob@example.com", external_id="C-2", first_name="Bob")
    content = csv_file(
        "Customer ID,E-Mail,First Name", "C-1,bob@example.com,Mixed", "C-3,carl@example.com,Carl"
    )

    report = run_import(runtime, content)

    assert (report.created, report.updated, report.failed) == (1, 0, 1)
    assert located(report) == {(2, "E-Mail")}
    assert "belongs to another contact" in reason_at(report, 2)
    assert contact(runtime, "ann@example.com").first_name == "Ann"
    assert contact(runtime, "bob@example.com").first_name == "Bob"


def test_import_tags_go_on_every_imported_contact_new_or_existing(runtime: Runtime) -> None:
    create_contact(runtime, email="ann@example.com", tags=["customer"])
    content = csv_file(
        "email,tags",
        "ann@example.com,",
        'bob@example.com,"vip, newsletter"',
        "not-an-email,",
    )

    report = run_import(runtime, content, tags=("fair-2026", " Lead List "))

    assert (report.created, report.updated, report.failed) == (1, 1, 1)
    assert contact(runtime, "ann@example.com").tags == ["Lead List", "customer", "fair-2026"]
    assert contact(runtime, "bob@example.com").tags == [
        "Lead List",
        "fair-2026",
        "newsletter",
        "vip",
    ]
    assert count_rows(runtime, Contact) == 2


def test_a_blank_import_tag_is_refused_before_anything_is_written(runtime: Runtime) -> None:
    with pytest.raises(InvalidInput) as refused:
        run_import(runtime, csv_file("email", "ann@example.com"), tags=("fair", " "))

    assert "tags" in refused.value.message
    assert count_rows(runtime, Contact) == 0


def test_the_owner_column_assigns_contacts_to_the_user_with_that_email(
    runtime: Runtime,
) -> None:
    with runtime.database.transaction() as session:
        runtime.users.create(session, email="sales@example.com", name=None, password=None)
    content = csv_file(
        "email,owner",
        "ann@example.com,Sales@Example.com",
        "bob@example.com,nobody@example.com",
        "carl@example.com,",
    )

    report = run_import(runtime, content)

    assert (report.created, report.failed) == (2, 1)
    assert contact(runtime, "ann@example.com").owner == "sales@example.com"
    assert contact(runtime, "carl@example.com").owner is None
    assert find_contact(runtime, "bob@example.com") is None
    assert located(report) == {(3, "owner")}
    assert "no user with the email nobody@example.com" in reason_at(report, 3)


def test_email_consent_is_recorded_for_every_imported_contact(runtime: Runtime) -> None:
    content = csv_file("email", "ann@example.com", "bob@example.com")

    run_import(runtime, content, email_consent=ConsentStatus.subscribed)

    for email in ("ann@example.com", "bob@example.com"):
        consent = contact(runtime, email).consent[Channel.email]
        assert consent.status is ConsentStatus.subscribed
        assert consent.source == "import"


def test_local_phone_numbers_need_the_phone_region_option(runtime: Runtime) -> None:
    content = csv_file("email,phone", "ann@example.com,030 1234567")

    without_region = run_import(runtime, content)
    with_region = run_import(runtime, content, phone_region="DE")

    assert located(without_region) == {(2, "phone")}
    assert (with_region.created, with_region.failed) == (1, 0)
    assert contact(runtime, "ann@example.com").phone == "+49301234567"


def test_an_erased_address_is_rejected_as_suppressed_while_other_rows_go_in(
    runtime: Runtime,
) -> None:
    gone = create_contact(runtime, email="gone@example.com")
    with runtime.database.transaction() as session:
        runtime.privacy.erase(session, gone.id)
    content = csv_file("E-Mail,first_name", "GONE@example.com,Gone", "new@example.com,New")

    report = run_import(runtime, content)

    assert (report.created, report.failed) == (1, 1)
    assert located(report) == {(2, "E-Mail")}
    assert "erased" in reason_at(report, 2)
    assert find_contact(runtime, "gone@example.com") is None
    assert contact(runtime, "new@example.com").first_name == "New"


# --- bad rows -------------------------------------------------------------------------------


def test_bad_rows_are_reported_with_line_column_and_reason_while_good_rows_go_in(
    runtime: Runtime,
) -> None:
    content = csv_file(
        "email,first_name,phone,age:number",
        "good@example.com,Good,+4915123456789,30",
        "not-an-email,Bad,,",
        "badphone@example.com,Bad,12345,",
        "text@example.com,Bad,,forty",
        "toomany@example.com,Bad,,1,extra",
        "good2@example.com,Good,,",
    )

    report = run_import(runtime, content)

    assert (report.rows, report.created, report.failed) == (6, 2, 4)
    assert located(report) == {(3, "email"), (4, "phone"), (5, "age:number"), (6, "row")}
    assert "not a valid email address" in reason_at(report, 3)
    assert "phone number" in reason_at(report, 4)
    assert "expected a number, got 'forty'" in reason_at(report, 5)
    assert "has 5 values for 4 columns" in reason_at(report, 6)
    stored = sorted(c["email"] for c in stored_contacts(runtime).values())
    assert stored == ["good2@example.com", "good@example.com"]


def test_line_numbers_count_the_lines_of_multi_line_fields_and_blank_lines(
    runtime: Runtime,
) -> None:
    content = csv_file(
        "email,first_name,notes",  # line 1
        'ann@example.com,Ann,"first line',  # line 2
        "second line",  # line 3
        'third line"',  # line 4
        "",  # line 5
        "not-an-email,Bad,",  # line 6
        'bob@example.com,Bob,"one ""quoted"" word"',  # line 7
        "also-bad,Bad,",  # line 8
    )

    report = run_import(runtime, content)

    assert located(report) == {(6, "email"), (8, "email")}
    assert (report.rows, report.created, report.failed) == (4, 2, 2)
    assert contact(runtime, "ann@example.com").attributes == {
        "notes": "first line\nsecond line\nthird line"
    }
    assert contact(runtime, "bob@example.com").attributes == {"notes": 'one "quoted" word'}


def test_every_bad_row_reaches_on_problem_but_the_record_keeps_the_first_thousand(
    runtime: Runtime,
) -> None:
    content = csv_file("email", *(f"bad{i}" for i in range(1200)), "good@example.com")
    seen: list[RowProblem] = []

    report = run_import(runtime, content, on_problem=seen.append)

    assert (report.rows, report.created, report.failed) == (1201, 1, 1200)
    assert [p.line for p in seen] == list(range(2, 1202))
    assert len(report.problems) == 1000
    with runtime.database.transaction(read_only=True) as session:
        record = runtime.imports.get(session, report.import_id)
        assert record.error_count == 1200
        assert len(record.errors) == 1000


def test_the_import_record_keeps_the_outcome_of_the_run(
    runtime: Runtime, clock: VirtualClock
) -> None:
    content = csv_file("email", "ann@example.com", "bad")

    report = run_import(runtime, content, filename="fair.csv", tags=("fair",))

    with runtime.database.transaction(read_only=True) as session:
        record = runtime.imports.get(session, report.import_id)
        assert record.filename == "fair.csv"
        assert record.status == "finished"
        assert record.dry_run is False
        assert (record.rows_total, record.created_count, record.error_count) == (2, 1, 1)
        assert record.errors == [p.as_dict() for p in report.problems]
        assert record.options["tags"] == ["fair"]
        assert record.started_at == record.finished_at == clock.now()
        assert [i.id for i in runtime.imports.recent(session, limit=10)] == [report.import_id]


# --- dry run and idempotency ----------------------------------------------------------------


def test_a_dry_run_counts_what_would_happen_and_stores_nothing(runtime: Runtime) -> None:
    ann = create_contact(runtime, email="ann@example.com", first_name="Ann")
    before = stored_contacts(runtime)
    events_before = count_rows(runtime, Event)
    content = csv_file(
        "email,first_name,city",
        "ann@example.com,Anna,Bonn",
        "bob@example.com,Bob,Berlin",
        "carl@example.com,Carl,",
        "not-an-email,Bad,",
    )

    report = run_import(
        runtime, content, dry_run=True, tags=("fair",), email_consent=ConsentStatus.subscribed
    )

    assert report.dry_run is True
    assert (report.rows, report.created, report.updated, report.failed) == (4, 2, 1, 1)
    assert stored_contacts(runtime) == before
    assert find_contact(runtime, "bob@example.com") is None
    assert contact(runtime, "ann@example.com").updated_at == ann.updated_at
    assert attribute_types(runtime) == {}
    assert count_rows(runtime, Event) == events_before
    with runtime.database.transaction(read_only=True) as session:
        record = runtime.imports.get(session, report.import_id)
        assert (record.dry_run, record.status, record.created_count) == (True, "finished", 2)
        assert runtime.imports.run_automations(session, report.import_id) == 0


def test_a_dry_run_lets_other_writers_in_between_its_spans(runtime: Runtime) -> None:
    # On SQLite a dry run in one transaction held the only write lock for the whole file:
    # the tracking API and the worker waited, and gave up after the busy timeout.
    runtime.imports.chunk_rows = 2000
    lines = ["email,first_name"] + [f"person{i}@example.com,P{i}" for i in range(5000)]
    written: list[str] = []

    def write_meanwhile(done: int, rows: int) -> None:
        email = f"meanwhile{rows}@example.com"
        with runtime.database.transaction() as session:
            runtime.contacts.create(session, ContactIn(email=email))
        written.append(email)

    report = run_import(runtime, csv_file(*lines), dry_run=True, progress=write_meanwhile)

    assert (report.rows, report.created) == (5000, 5000)
    assert len(written) == 3  # after each of the three spans
    assert sorted(stored_contacts(runtime, key="email")) == sorted(written)


def test_a_dry_run_counts_a_contact_repeated_in_a_later_span_against_the_stored_ones(
    runtime: Runtime,
) -> None:
    runtime.imports.chunk_rows = 2000
    lines = ["email,first_name", "ann@example.com,Ann", "ann@example.com,Anna"]  # one span
    lines += [f"filler{i}@example.com,F{i}" for i in range(1998)]
    lines.append("ANN@example.com,Annie")  # the second span: ann is not stored
    report = run_import(runtime, csv_file(*lines), dry_run=True)

    assert (report.rows, report.created, report.updated, report.failed) == (2001, 2000, 1, 0)
    assert count_rows(runtime, Contact) == 0


def test_importing_the_same_file_twice_changes_nothing_the_second_time(
    runtime: Runtime, clock: VirtualClock
) -> None:
    with runtime.database.transaction() as session:
        runtime.users.create(session, email="sales@example.com", name=None, password=None)
    content = csv_file(
        "E-Mail;Vorname;Nachname;Telefon;Tags;age:number;vip:boolean;Birthday:date;"
        "Interests:list;owner;score;stage;notes",
        "Ann@Example.com;Ann;Arbor;030 1234567;vip,newsletter;42;yes;1990-05-01;golf,sailing;"
        "sales@example.com;5;lead;",
        "bob@example.com;Bob;;+1 202 555 0143;;37.5;no;;;;;customer;",
        'carl@example.com;;Carlsen;;;;;;;;;;"two\nlines"',
    )
    options: dict[str, Any] = {
        "tags": ("fair",),
        "email_consent": ConsentStatus.subscribed,
        "phone_region": "DE",
    }
    first = run_import(runtime, content, **options)
    assert (first.created, first.failed) == (3, 0)
    before = stored_contacts(runtime)
    events_before = count_rows(runtime, Event)
    clock.advance(timedelta(hours=1))

    second = run_import(runtime, content, **options)

    assert (second.rows, second.created, second.updated, second.unchanged) == (3, 0, 0, 3)
    assert second.failed == 0
    assert stored_contacts(runtime) == before
    assert count_rows(runtime, Event) == events_before
    with runtime.database.transaction(read_only=True) as session:
        assert runtime.imports.run_automations(session, second.import_id) == 0


# --- touches and automations ----------------------------------------------------------------


def test_the_import_remembers_which_contacts_it_created_and_changed(runtime: Runtime) -> None:
    ann = create_contact(runtime, email="ann@example.com", first_name="Ann")
    bob = create_contact(runtime, email="bob@example.com", first_name="Bob")
    content = csv_file(
        "email,first_name",
        "ann@example.com,Anna",
        "bob@example.com,Bob",
        "carl@example.com,Carl",
        "dora@example.com,Dora",
        "bad,Bad",
    )

    report = run_import(runtime, content)

    carl, dora = contact(runtime, "carl@example.com"), contact(runtime, "dora@example.com")
    with runtime.database.transaction() as session:
        rows = session.execute(
            select(ContactImportTouch.contact_id, ContactImportTouch.action).where(
                ContactImportTouch.import_id == report.import_id
            )
        )
        touches = {(contact_id, action) for contact_id, action in rows}
        assert touches == {(ann.id, "updated"), (carl.id, "created"), (dora.id, "created")}
        assert bob.id not in {contact_id for contact_id, _ in touches}
        assert runtime.imports.run_automations(session, report.import_id) == 2


def test_running_automations_for_an_unknown_import_is_not_found(runtime: Runtime) -> None:
    with runtime.database.transaction() as session, pytest.raises(NotFound):
        runtime.imports.run_automations(session, new_id())


def test_the_run_automations_option_finishes_the_import(runtime: Runtime) -> None:
    report = run_import(runtime, csv_file("email", "ann@example.com"), run_automations=True)

    assert report.created == 1
    with runtime.database.transaction(read_only=True) as session:
        assert runtime.imports.get(session, report.import_id).status == "finished"


# --- large files ----------------------------------------------------------------------------


def test_a_large_file_is_imported_completely_across_chunks(runtime: Runtime) -> None:
    chunk = runtime.imports.chunk_rows = 2000
    lines = ["email,first_name,age:number"]
    lines += [f"user{i}@example.com,U{i},{i % 90}" for i in range(29_999)]
    lines.append("USER5@example.com,U5,5")  # user5 again, in the last chunk
    content = csv_file(*lines)
    progress: list[tuple[int, int]] = []

    report = run_import(runtime, content, progress=lambda done, rows: progress.append((done, rows)))

    assert (report.rows, report.created, report.unchanged, report.failed) == (30_000, 29_999, 1, 0)
    assert count_rows(runtime, Contact) == 29_999
    assert [rows for _, rows in progress] == list(range(chunk, 30_001, chunk))
    assert [done for done, _ in progress] == sorted(done for done, _ in progress)
    assert progress[-1][0] == len(content)
    assert contact(runtime, "user29998@example.com").attributes == {"age": 29998 % 90}


def test_a_file_parsed_in_a_second_process_reports_bad_rows_on_their_own_lines(
    runtime: Runtime,
) -> None:
    runtime.imports.chunk_rows = 2000
    lines = ["email,first_name,notes,phone"]
    lines += [f"user{i}@example.com,U{i},,+49 151 {10000000 + i}" for i in range(24_000)]
    # Line 1 is the header: user i sits on line i + 2, one line further after line 1003.
    lines[1_000 + 1] = 'user1000@example.com,U1000,"a note over\ntwo lines",'  # lines 1002-1003
    lines[4_000 + 1] = "not-an-address,U4000,,"  # line 4003, after the two-line record
    lines[21_999 + 1] = "user21999@example.com,U21999,,12"  # line 22002, the last spans
    content = csv_file(*lines)
    problems: list[RowProblem] = []

    report = run_import(runtime, content, phone_region="DE", on_problem=problems.append)

    assert (report.rows, report.created, report.failed) == (24_000, 23_998, 2)
    assert [(p.line, p.column) for p in problems] == [(4003, "email"), (22002, "phone")]
    assert contact(runtime, "user1000@example.com").attributes == {
        "notes": "a note over\ntwo lines"
    }
    assert contact(runtime, "user23999@example.com").phone == "+4915110023999"


def test_a_contact_repeated_in_a_later_chunk_with_new_values_is_updated_not_duplicated(
    runtime: Runtime,
) -> None:
    runtime.imports.chunk_rows = 2000
    lines = ["email,first_name", "ann@example.com,Ann"]
    lines += [f"filler{i}@example.com,F{i}" for i in range(2000)]
    lines.append("ANN@example.com,Anna")  # row 2002: the second chunk
    content = csv_file(*lines)

    report = run_import(runtime, content)

    assert (report.rows, report.created, report.updated, report.failed) == (2002, 2001, 1, 0)
    assert count_rows(runtime, Contact) == 2001
    assert contact(runtime, "ann@example.com").first_name == "Anna"


def test_import_consent_never_resubscribes_someone_who_unsubscribed(runtime: Runtime) -> None:
    with runtime.database.transaction() as session:
        runtime.contacts.create(
            session, ContactIn(email="left@example.com", consent={Channel.email: "unsubscribed"})
        )
    content = csv_file("email", "left@example.com", "new@example.com")
    report = run_import(runtime, content, email_consent=ConsentStatus.subscribed)
    assert (report.created, report.unchanged) == (1, 1)
    left = find_contact(runtime, "left@example.com")
    new = find_contact(runtime, "new@example.com")
    assert left is not None and left.consent[Channel.email].status == "unsubscribed"
    assert new is not None and new.consent[Channel.email].status == "subscribed"
    assert new.consent[Channel.email].source == "import"
