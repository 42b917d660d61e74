"""The CSV import over HTTP: multipart upload to /api/imports, the report, automations."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from postillon.kit.ids import new_id
from postillon.runtime import Runtime
from tests.support.files import XLSX_START, csv_file

BOM = "\ufeff"


def upload(
    client: httpx.Client,
    content: bytes,
    *,
    filename: str = "contacts.csv",
    mapping: dict[str, str] | None = None,
    **fields: str,
) -> httpx.Response:
    data: dict[str, Any] = dict(fields)
    if mapping is not None:
        data["mapping"] = json.dumps(mapping)
    return client.post("/api/imports", files={"file": (filename, content, "text/csv")}, data=data)


def imported(client: httpx.Client, content: bytes, **fields: Any) -> dict[str, Any]:
    response = upload(client, content, **fields)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def contacts_with_email(api: httpx.Client, email: str) -> list[dict[str, Any]]:
    response = api.get("/api/contacts", params={"email": email})
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def the_contact(api: httpx.Client, email: str) -> dict[str, Any]:
    found = contacts_with_email(api, email)
    assert len(found) == 1, f"{len(found)} contacts with the email {email}"
    return found[0]


def all_contacts(api: httpx.Client) -> list[dict[str, Any]]:
    response = api.get("/api/contacts", params={"limit": 500})
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def counts(report: dict[str, Any]) -> tuple[int, int, int, int, int]:
    return (
        report["rows"],
        report["created"],
        report["updated"],
        report["unchanged"],
        report["failed"],
    )


def test_an_upload_is_imported_and_answered_with_its_report(api: httpx.Client) -> None:
    content = csv_file(
        "email,first_name,age:number",
        "ann@example.com,Ann,42",
        "bob@example.com,Bob,forty",
        "carl@example.com,Carl,",
    )

    report = imported(api, content, filename="fair.csv")

    assert report["filename"] == "fair.csv"
    assert report["status"] == "finished"
    assert report["dry_run"] is False
    assert counts(report) == (3, 2, 0, 0, 1)
    assert report["problems"] == [
        {
            "line": 3,
            "column": "age:number",
            "reason": "expected a number, got 'forty' (attribute 'age' is a number)",
        }
    ]
    assert report["finished_at"] is not None
    assert api.get(f"/api/imports/{report['id']}").json() == report
    assert [i["id"] for i in api.get("/api/imports").json()] == [report["id"]]
    ann = the_contact(api, "ann@example.com")
    assert (ann["first_name"], ann["attributes"]) == ("Ann", {"age": 42})
    assert contacts_with_email(api, "bob@example.com") == []


def test_mapping_tags_consent_and_phone_region_fields_are_applied(api: httpx.Client) -> None:
    content = csv_file(
        BOM + "E-Mail Adresse;Vorname;Telefon;Kundennummer;Intern;Tags",
        "Juergen@Example.com;Jürgen;030 1234567;17;geheim;vip",
        newline="\r\n",
    )

    report = imported(
        api,
        content,
        mapping={"E-Mail Adresse": "email", "Kundennummer": "customer_no:number", "Intern": "skip"},
        tags="fair-2026, Lead List",
        email_consent="subscribed",
        phone_region="de",
    )

    assert counts(report) == (1, 1, 0, 0, 0)
    juergen = the_contact(api, "juergen@example.com")
    assert juergen["first_name"] == "Jürgen"
    assert juergen["phone"] == "+49301234567"
    assert juergen["tags"] == ["Lead List", "fair-2026", "vip"]
    assert juergen["consent"]["email"]["status"] == "subscribed"
    assert juergen["consent"]["email"]["source"] == "import"
    assert juergen["attributes"] == {"customer_no": 17}
    assert report["problems"] == []


def test_a_mapped_number_column_with_text_is_a_bad_row(api: httpx.Client) -> None:
    content = csv_file("E-Mail Adresse,Kundennummer", "ann@example.com,17", "bob@example.com,K-1")

    report = imported(
        api, content, mapping={"E-Mail Adresse": "email", "Kundennummer": "customer_no:number"}
    )

    assert counts(report) == (2, 1, 0, 0, 1)
    assert [(p["line"], p["column"]) for p in report["problems"]] == [(3, "Kundennummer")]
    assert the_contact(api, "ann@example.com")["attributes"] == {"customer_no": 17}


def test_bad_rows_are_listed_with_line_column_and_reason_and_good_rows_go_in(
    api: httpx.Client,
) -> None:
    content = csv_file(
        "email,first_name,phone,notes",
        'good@example.com,Good,+4915123456789,"two',
        'lines"',
        "not-an-email,Bad,,",
        "badphone@example.com,Bad,12345,",
        "toomany@example.com,Bad,,,extra",
        "good2@example.com,Good,,",
    )

    report = imported(api, content)

    assert counts(report) == (5, 2, 0, 0, 3)
    assert [(p["line"], p["column"]) for p in report["problems"]] == [
        (4, "email"),
        (5, "phone"),
        (6, "row"),
    ]
    assert all(p["reason"] for p in report["problems"])
    assert sorted(c["email"] for c in all_contacts(api)) == [
        "good2@example.com",
        "good@example.com",
    ]


def test_a_dry_run_over_http_reports_counts_and_stores_nothing(api: httpx.Client) -> None:
    created = api.post("/api/contacts", json={"email": "ann@example.com", "first_name": "Ann"})
    assert created.status_code == 201, created.text
    content = csv_file("email,first_name", "ann@example.com,Anna", "bob@example.com,Bob", "bad,X")

    report = imported(api, content, dry_run="true", tags="fair")

    assert report["dry_run"] is True
    assert counts(report) == (3, 1, 1, 0, 1)
    assert all_contacts(api) == [created.json()]
    assert api.get(f"/api/imports/{report['id']}").json()["dry_run"] is True


def test_importing_the_same_upload_twice_changes_nothing_the_second_time(
    api: httpx.Client,
) -> None:
    content = csv_file(
        "email,first_name,tags,age:number,vip:boolean",
        'ann@example.com,Ann,"a, b",42,yes',
        "bob@example.com,Bob,,1.5,no",
    )
    fields = {"tags": "fair", "email_consent": "subscribed"}
    assert counts(imported(api, content, **fields)) == (2, 2, 0, 0, 0)
    before = all_contacts(api)

    again = imported(api, content, **fields)

    assert counts(again) == (2, 0, 0, 2, 0)
    assert all_contacts(api) == before


def test_the_same_email_twice_in_one_upload_is_one_contact_not_a_server_error(
    api: httpx.Client,
) -> None:
    content = csv_file("email,first_name", "ann@example.com,Ann", "Ann@example.com,Anna")

    response = upload(api, content)

    assert response.status_code == 200, response.text
    assert counts(response.json()) == (2, 1, 1, 0, 0)
    assert the_contact(api, "ann@example.com")["first_name"] == "Anna"


def test_an_address_erased_through_the_api_is_rejected_when_imported_again(
    api: httpx.Client,
) -> None:
    created = api.post("/api/contacts", json={"email": "gone@example.com"})
    assert created.status_code == 201, created.text
    erased = api.post(f"/api/contacts/{created.json()['id']}/erase")
    assert erased.status_code == 204, erased.text
    content = csv_file("email,first_name", "new@example.com,New", "Gone@Example.com,Gone")

    report = imported(api, content)

    assert counts(report) == (2, 1, 0, 0, 1)
    [problem] = report["problems"]
    assert (problem["line"], problem["column"]) == (3, "email")
    assert "erased" in problem["reason"]
    assert contacts_with_email(api, "gone@example.com") == []
    assert the_contact(api, "new@example.com")["first_name"] == "New"


def test_the_owner_column_names_a_user_and_an_unknown_owner_is_a_bad_row(
    api: httpx.Client, runtime: Runtime
) -> None:
    with runtime.database.transaction() as session:
        runtime.users.create(session, email="sales@example.com", name=None, password=None)
    content = csv_file(
        "email,Account Owner",
        "ann@example.com,SALES@example.com",
        "bob@example.com,ghost@example.com",
    )

    report = imported(api, content, mapping={"Account Owner": "owner"})

    assert counts(report) == (2, 1, 0, 0, 1)
    assert the_contact(api, "ann@example.com")["owner"] == "sales@example.com"
    assert [(p["line"], p["column"]) for p in report["problems"]] == [(3, "Account Owner")]
    assert "ghost@example.com" in report["problems"][0]["reason"]
    assert contacts_with_email(api, "bob@example.com") == []


def test_run_automations_answers_the_number_of_contacts_the_import_created(
    api: httpx.Client,
) -> None:
    api.post("/api/contacts", json={"email": "ann@example.com", "first_name": "Ann"})
    content = csv_file(
        "email,first_name", "ann@example.com,Anna", "bob@example.com,Bob", "carl@example.com,C"
    )
    report = imported(api, content, run_automations="true")

    response = api.post(f"/api/imports/{report['id']}/automations")

    assert response.status_code == 200, response.text
    assert response.json() == {"import_id": report["id"], "contacts": 2}


def test_run_automations_for_an_unknown_import_is_not_found(api: httpx.Client) -> None:
    response = api.post(f"/api/imports/{new_id()}/automations")

    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


def test_an_unknown_import_is_not_found(api: httpx.Client) -> None:
    assert api.get(f"/api/imports/{new_id()}").status_code == 404


@pytest.mark.parametrize(
    ("content", "named"),
    [
        pytest.param(XLSX_START, "UTF-8", id="an Excel workbook, not CSV"),
        pytest.param(
            csv_file("email,first_name", "juergen@example.com,Jürgen", encoding="cp1252"),
            "UTF-8",
            id="Windows-1252 text",
        ),
        pytest.param(b"", "empty", id="an empty file"),
        pytest.param(
            csv_file("Name,Firma", "Ann,ACME"), "email or external_id", id="no email column"
        ),
        pytest.param(
            csv_file("email,first_name", '"ann@example.com"x,Ann'), "not valid CSV", id="bad CSV"
        ),
    ],
)
def test_an_upload_that_cannot_be_imported_is_refused_with_422_and_nothing_written(
    api: httpx.Client, content: bytes, named: str
) -> None:
    response = upload(api, content)

    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == "invalid_input"
    assert named in body["message"]
    assert all_contacts(api) == []


@pytest.mark.parametrize(
    ("mapping", "named"),
    [
        pytest.param("{not json", "not valid JSON", id="not JSON"),
        pytest.param('["email"]', "JSON object", id="not an object"),
        pytest.param('{"E-Mail": "email"}', "no such column", id="a column the file lacks"),
        pytest.param('{"first_name": "birthday:when"}', "unknown attribute type", id="bad type"),
    ],
)
def test_an_unusable_mapping_is_refused_with_422_naming_it(
    api: httpx.Client, mapping: str, named: str
) -> None:
    response = api.post(
        "/api/imports",
        files={"file": ("contacts.csv", csv_file("email,first_name", "ann@example.com,Ann"))},
        data={"mapping": mapping},
    )

    assert response.status_code == 422, response.text
    assert named in response.json()["message"]
    assert all_contacts(api) == []


def test_an_unknown_email_consent_is_refused(api: httpx.Client) -> None:
    response = upload(api, csv_file("email", "ann@example.com"), email_consent="maybe")

    assert response.status_code == 422
    assert all_contacts(api) == []


def test_an_upload_without_a_file_is_refused(api: httpx.Client) -> None:
    response = api.post("/api/imports", data={"tags": "fair"})

    assert response.status_code == 422
    assert "file" in response.json()["message"]


def test_imports_need_an_admin_key(anonymous: httpx.Client) -> None:
    response = upload(anonymous, csv_file("email", "ann@example.com"))

    assert response.status_code == 401
    assert anonymous.get("/api/imports").status_code == 401


def test_files_with_bare_carriage_returns_or_nul_characters_are_refused(
    api: httpx.Client,
) -> None:
    old_mac = b"email,first_name\rada@example.com,Ada\rbob@example.com,Bob\r"
    response = api.post("/api/imports", files={"file": ("mac.csv", old_mac, "text/csv")})
    assert response.status_code == 422
    assert "carriage return" in response.json()["message"]
    with_nul = b"email,first_name\nada@example.com,A\x00da\n"
    response = api.post("/api/imports", files={"file": ("nul.csv", with_nul, "text/csv")})
    assert response.status_code == 422
    assert response.json()["problems"][0]["loc"] == "line 2"
