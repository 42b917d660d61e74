"""HTTP routes for CSV imports. The upload is imported while the request waits, streamed
in chunks; the answer is the report (and stays available under /api/imports/{id})."""

from __future__ import annotations

import json
import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, UploadFile

from postillon.contacts.fields import ConsentStatus
from postillon.errors import InvalidInput
from postillon.imports.schemas import AutomationRunOut, ImportOut, RowProblemOut
from postillon.imports.service import ImportOptions
from postillon.models import ContactImport
from postillon.web.dependencies import ReadSession, RuntimeDep, WriteSession, require_admin

router = APIRouter(prefix="/api", tags=["imports"], dependencies=[Depends(require_admin)])


@router.post("/imports")
def import_contacts(
    runtime: RuntimeDep,
    file: Annotated[UploadFile, File(description="a CSV file with a header line, UTF-8")],
    mapping: Annotated[
        str | None, Form(description='JSON: {"column header": "email" | "skip" | "name:type"}')
    ] = None,
    tags: Annotated[str | None, Form(description="comma-separated tags for every row")] = None,
    email_consent: Annotated[ConsentStatus | None, Form()] = None,
    phone_region: Annotated[str | None, Form(description="e.g. DE, for local numbers")] = None,
    dry_run: Annotated[bool, Form()] = False,
    run_automations: Annotated[bool, Form()] = False,
) -> ImportOut:
    """Import contacts from CSV: upsert by email; bad rows are reported, good rows go in."""
    options = ImportOptions(
        mapping=_parse_mapping(mapping),
        tags=tuple(t for t in (tags or "").split(",") if t.strip()),
        email_consent=email_consent,
        phone_region=phone_region.upper() if phone_region else None,
        dry_run=dry_run,
        run_automations=run_automations,
    )
    report = runtime.imports.run(
        runtime.database, file.file, filename=file.filename or "upload.csv", options=options
    )
    with runtime.database.transaction(read_only=True) as session:
        return _import_out(runtime.imports.get(session, report.import_id))


@router.get("/imports")
def list_imports(runtime: RuntimeDep, session: ReadSession) -> list[ImportOut]:
    """The 50 most recent imports."""
    return [_import_out(i) for i in runtime.imports.recent(session, limit=50)]


@router.get("/imports/{import_id}")
def get_import(import_id: uuid.UUID, runtime: RuntimeDep, session: ReadSession) -> ImportOut:
    return _import_out(runtime.imports.get(session, import_id))


@router.post("/imports/{import_id}/automations")
def run_import_automations(
    import_id: uuid.UUID, runtime: RuntimeDep, session: WriteSession
) -> AutomationRunOut:
    """Hand the contacts an import created to the automations for "contact created"."""
    count = runtime.imports.run_automations(session, import_id)
    return AutomationRunOut(import_id=import_id, contacts=count)


def _parse_mapping(raw: str | None) -> dict[str, str]:
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InvalidInput.at("mapping", f"not valid JSON ({exc.msg})") from None
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise InvalidInput.at("mapping", 'must be a JSON object of strings: {"header": "target"}')
    return value


def _import_out(record: ContactImport) -> ImportOut:
    return ImportOut(
        id=record.id,
        filename=record.filename,
        status=record.status,
        dry_run=record.dry_run,
        rows=record.rows_total,
        created=record.created_count,
        updated=record.updated_count,
        unchanged=record.unchanged_count,
        failed=record.error_count,
        problems=[RowProblemOut(**p) for p in record.errors],
        started_at=record.started_at,
        finished_at=record.finished_at,
    )
