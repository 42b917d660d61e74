"""`postillon contacts import` and `postillon keys create`, run as a user runs them: the
installed command in a subprocess, configured by environment variables."""

from __future__ import annotations

import csv
import re
import uuid
from pathlib import Path

import httpx
import pytest

from postillon.contacts.fields import Channel, ConsentStatus
from postillon.contacts.schemas import ContactIn
from postillon.runtime import Runtime
from postillon.settings import Settings
from tests.support.cli import ANSI, BOM, Cli, base_env, command_for, flat
from tests.support.files import XLSX_START, stored_contacts


@pytest.fixture
def cli(settings: Settings, tmp_path: Path) -> Cli:
    """The command against this test's database (the one `runtime` uses)."""
    return command_for(settings, tmp_path)


@pytest.fixture
def offline_cli(tmp_path: Path) -> Cli:
    """The command for errors it must report before it touches a database."""
    env = base_env(tmp_path)
    env["POSTILLON_DATABASE_URL"] = f"sqlite:///{tmp_path / 'never-created.db'}"
    env["POSTILLON_SECRET_KEY"] = "a-secret-key-for-cli-tests-only"
    return Cli(env, tmp_path)


def write_csv(path: Path, *lines: str, encoding: str = "utf-8", newline: str = "\n") -> Path:
    path.write_bytes((newline.join(lines) + newline).encode(encoding))
    return path


def import_id_in(stdout: str) -> uuid.UUID:
    found = re.search(r"import id: ([0-9a-f-]{36})", stdout)
    assert found is not None, stdout
    return uuid.UUID(found.group(1))


def read_report(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as report:
        return list(csv.reader(report))


# --- import ---------------------------------------------------------------------------------


def test_import_reads_a_german_excel_file_with_mappings_tags_and_options(
    cli: Cli, runtime: Runtime, tmp_path: Path
) -> None:
    file = write_csv(
        tmp_path / "messe.csv",
        BOM + "E-Mail Adresse;Vorname;Nachname;Telefon;age:number;Intern",
        "Juergen@Example.com;Jürgen;Müller, Dr.;030 1234567;42;geheim",
        "gisela@example.com;Gisela;Groß;;;",
        newline="\r\n",
    )

    result = cli.run(
        "contacts", "import", file,
        "--map", "E-Mail Adresse=email", "--map", "Intern=skip",
        "--tag", "messe-2026", "--tag", "vip",
        "--email-consent", "subscribed", "--phone-region", "de", "--run-automations",
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    summary = flat(result.stdout)
    assert "2 rows: 2 contacts were created, 0 updated, 0 unchanged, 0 rows rejected." in summary
    assert "\x1b" not in result.stdout
    assert "\r" not in result.stdout
    contacts = stored_contacts(runtime, key="email")
    assert sorted(contacts) == ["gisela@example.com", "juergen@example.com"]
    juergen = contacts["juergen@example.com"]
    assert (juergen["first_name"], juergen["last_name"]) == ("Jürgen", "Müller, Dr.")
    assert juergen["phone"] == "+49301234567"
    assert juergen["attributes"] == {"age": 42}
    assert juergen["tags"] == ["messe-2026", "vip"]
    assert juergen["consent"][Channel.email]["status"] == ConsentStatus.subscribed
    assert contacts["gisela@example.com"]["attributes"] == {}
    with runtime.database.transaction(read_only=True) as session:
        record = runtime.imports.get(session, import_id_in(result.stdout))
        assert (record.filename, record.status) == ("messe.csv", "finished")
        assert record.created_count == 2


def test_a_dry_run_reports_what_would_happen_and_stores_nothing(
    cli: Cli, runtime: Runtime, tmp_path: Path
) -> None:
    with runtime.database.transaction() as session:
        runtime.contacts.create(session, ContactIn(email="ann@example.com", first_name="Ann"))
    before = stored_contacts(runtime, key="email")
    file = write_csv(
        tmp_path / "contacts.csv", "email,first_name", "ann@example.com,Anna", "bob@example.com,Bob"
    )

    result = cli.run("contacts", "import", file, "--dry-run", "--tag", "fair")

    assert result.returncode == 0, result.stderr
    assert (
        "2 rows: 1 contacts would be created, 1 updated, 0 unchanged, 0 rows rejected. "
        "(dry run: nothing stored)" in flat(result.stdout)
    )
    assert stored_contacts(runtime, key="email") == before


def test_every_bad_row_goes_to_the_report_file_while_good_rows_go_in(
    cli: Cli, runtime: Runtime, tmp_path: Path
) -> None:
    lines = [
        "email,first_name,phone,age:number,notes",  # line 1
        'good@example.com,Good,,30,"a note',  # line 2
        'over two lines"',  # line 3
    ]
    lines += [f"bad{i},Bad,,," for i in range(22)]  # lines 4 to 25
    lines += [
        "badphone@example.com,Bad,12345,,",  # line 26
        "text@example.com,Bad,,forty,",  # line 27
        "toomany@example.com,Bad,,1,,extra",  # line 28
        "good2@example.com,Good,+4915123456789,,",  # line 29
    ]
    file = write_csv(tmp_path / "contacts.csv", *lines)
    report = tmp_path / "rejected.csv"

    result = cli.run("contacts", "import", file, "--report", report)

    assert result.returncode == 0, result.stderr
    output = flat(result.stdout)
    assert "27 rows: 2 contacts were created, 0 updated, 0 unchanged, 25 rows rejected." in output
    assert f"all rejected rows: {report}" in output
    rows = read_report(report)
    assert rows[0] == ["line", "column", "reason"]
    expected = [(str(line), "email") for line in range(4, 26)]
    expected += [("26", "phone"), ("27", "age:number"), ("28", "row")]
    assert [(line, column) for line, column, _ in rows[1:]] == expected
    reasons = {line: reason for line, _, reason in rows[1:]}
    assert "not a valid email address" in reasons["4"]
    assert "phone number" in reasons["26"]
    assert "expected a number, got 'forty'" in reasons["27"]
    assert "has 6 values for 5 columns" in reasons["28"]
    assert sorted(stored_contacts(runtime, key="email")) == [
        "good2@example.com",
        "good@example.com",
    ]


def test_a_report_file_that_cannot_be_written_is_a_clear_error(
    cli: Cli, runtime: Runtime, tmp_path: Path
) -> None:
    file = write_csv(tmp_path / "contacts.csv", "email", "ann@example.com")
    report = tmp_path / "no-such-directory" / "rejected.csv"

    result = cli.run("contacts", "import", file, "--report", report)

    assert result.returncode != 0
    assert "no-such-directory" in flat(result.stderr)
    assert stored_contacts(runtime, key="email") == {}


def test_importing_the_same_file_twice_leaves_every_contact_unchanged(
    cli: Cli, runtime: Runtime, tmp_path: Path
) -> None:
    file = write_csv(
        tmp_path / "contacts.csv",
        "email,first_name,tags,age:number,vip:boolean,phone",
        'ann@example.com,Ann,"a, b",42,yes,0151 23456789',
        "bob@example.com,Bob,,1.5,no,",
        "carl@example.com,,,,,+1 202 555 0143",
    )
    options = ("--tag", "fair", "--email-consent", "subscribed", "--phone-region", "DE")
    first = cli.run("contacts", "import", file, *options)
    assert first.returncode == 0, first.stderr
    before = stored_contacts(runtime, key="email")
    assert len(before) == 3

    second = cli.run("contacts", "import", file, *options)

    assert second.returncode == 0, second.stderr
    summary = flat(second.stdout)
    assert "3 rows: 0 contacts were created, 0 updated, 3 unchanged, 0 rows rejected." in summary
    assert stored_contacts(runtime, key="email") == before


def test_the_progress_bar_goes_to_stderr_and_leaves_the_summary_intact(
    cli: Cli, runtime: Runtime, tmp_path: Path
) -> None:
    file = write_csv(
        tmp_path / "contacts.csv",
        "email,first_name",
        *(f"person{i}@example.com,P{i}" for i in range(1000)),
    )

    # A terminal as rich sees it, and chunks of 50 rows, so the bar is drawn 20 times.
    result = cli.run(
        "contacts", "import", file, TTY_COMPATIBLE="1", POSTILLON_IMPORT_BATCH_ROWS="50"
    )

    assert result.returncode == 0, result.stderr
    stdout = ANSI.sub("", result.stdout)
    assert stdout.startswith("1,000 rows: 1,000 contacts were created, 0 updated, 0 unchanged")
    assert "importing" not in stdout
    assert "\r" not in stdout
    assert "importing contacts.csv" in result.stderr
    assert "1,000 rows" in result.stderr
    assert len(stored_contacts(runtime, key="email")) == 1000


def test_an_erased_address_is_rejected_as_suppressed_by_the_cli_import(
    cli: Cli, runtime: Runtime, tmp_path: Path
) -> None:
    with runtime.database.transaction() as session:
        gone = runtime.contacts.create(session, ContactIn(email="gone@example.com"))
        runtime.privacy.erase(session, gone.id)
    file = write_csv(tmp_path / "contacts.csv", "email", "GONE@example.com", "new@example.com")
    report = tmp_path / "rejected.csv"

    result = cli.run("contacts", "import", file, "--report", report)

    assert result.returncode == 0, result.stderr
    assert "1 rows rejected" in flat(result.stdout)
    [_, (line, column, reason)] = read_report(report)
    assert (line, column) == ("2", "email")
    assert "erased" in reason
    assert sorted(stored_contacts(runtime, key="email")) == ["new@example.com"]


@pytest.mark.parametrize(
    ("content", "named"),
    [
        pytest.param(XLSX_START, "UTF-8", id="an Excel workbook, not CSV"),
        pytest.param(
            "email,first_name\njuergen@example.com,Jürgen\n".encode("cp1252"),
            "UTF-8",
            id="Windows-1252 text",
        ),
        pytest.param(b"Name;Firma\nAnn;ACME\n", "email or external_id", id="no email column"),
    ],
)
def test_a_file_that_cannot_be_imported_exits_with_2_naming_the_problem(
    cli: Cli, runtime: Runtime, tmp_path: Path, content: bytes, named: str
) -> None:
    file = tmp_path / "upload.csv"
    file.write_bytes(content)

    result = cli.run("contacts", "import", file)

    assert result.returncode == 2
    message = flat(result.stderr)
    assert "error:" in message
    assert named in message
    assert "rows:" not in result.stdout
    assert stored_contacts(runtime, key="email") == {}


def test_a_map_option_for_a_column_the_file_lacks_exits_with_2(
    cli: Cli, runtime: Runtime, tmp_path: Path
) -> None:
    file = write_csv(tmp_path / "contacts.csv", "email", "ann@example.com")

    result = cli.run("contacts", "import", file, "--map", "E-Mail Adresse=email")

    assert result.returncode == 2
    assert "E-Mail Adresse" in flat(result.stderr)
    assert "no such column" in flat(result.stderr)
    assert stored_contacts(runtime, key="email") == {}


def test_a_map_option_without_a_target_exits_with_2(offline_cli: Cli, tmp_path: Path) -> None:
    file = write_csv(tmp_path / "contacts.csv", "email", "ann@example.com")

    result = offline_cli.run("contacts", "import", file, "--map", "E-Mail Adresse")

    assert result.returncode == 2
    assert "HEADER=TARGET" in flat(result.stderr)


def test_a_missing_file_is_a_usage_error(offline_cli: Cli, tmp_path: Path) -> None:
    result = offline_cli.run("contacts", "import", tmp_path / "missing.csv")

    assert result.returncode == 2
    assert "does not exist" in flat(result.stderr)


# --- keys -----------------------------------------------------------------------------------


def create_key(cli: Cli, scope: str) -> str:
    """`postillon keys create`; the key is the last line of its output, alone."""
    result = cli.run("keys", "create", "--scope", scope, "--name", f"{scope} from the cli")
    assert result.returncode == 0, result.stderr
    last_line = result.stdout.rstrip("\n").splitlines()[-1]
    assert last_line.strip() == last_line
    assert " " not in last_line
    return last_line


def test_keys_create_prints_an_admin_key_alone_on_the_last_line_that_opens_the_api(
    cli: Cli, server_url: str
) -> None:
    key = create_key(cli, "admin")

    response = httpx.get(
        f"{server_url}/api/contacts", headers={"Authorization": f"Bearer {key}"}, timeout=30
    )

    assert response.status_code == 200, response.text


def test_a_write_scope_key_from_the_cli_is_refused_by_the_admin_api(
    cli: Cli, server_url: str
) -> None:
    key = create_key(cli, "write")

    response = httpx.get(
        f"{server_url}/api/contacts", headers={"Authorization": f"Bearer {key}"}, timeout=30
    )

    assert response.status_code == 401
    assert "admin" in response.json()["message"]


def test_keys_create_with_an_unknown_scope_is_a_usage_error(offline_cli: Cli) -> None:
    result = offline_cli.run("keys", "create", "--scope", "root")

    assert result.returncode == 2
    assert "root" in flat(result.stderr)
