"""HTTP routes for voucher pools (admin) and voucher images (public, signed links)."""

from __future__ import annotations

import csv
import io

import orjson
from fastapi import APIRouter, Depends, Request, Response, status

from postillon.errors import BadRequest, InvalidInput
from postillon.vouchers.schemas import (
    CodesAdded,
    CodesIn,
    GenerateIn,
    VoucherPoolIn,
    VoucherPoolOut,
)
from postillon.web.dependencies import ReadSession, RuntimeDep, WriteSession, require_admin

router = APIRouter(prefix="/api", tags=["vouchers"], dependencies=[Depends(require_admin)])
image_router = APIRouter(tags=["vouchers"])

_MAX_IMPORT_BYTES = 20 * 1024 * 1024


@router.get("/voucher-pools")
def list_pools(runtime: RuntimeDep, session: ReadSession) -> list[VoucherPoolOut]:
    """The pools with their counts of free and assigned codes."""
    return runtime.vouchers.list_pools(session)


@router.post("/voucher-pools", status_code=status.HTTP_201_CREATED)
def create_pool(data: VoucherPoolIn, runtime: RuntimeDep, session: WriteSession) -> VoucherPoolOut:
    return runtime.vouchers.create_pool(session, data)


@router.get("/voucher-pools/{key}")
def get_pool(key: str, runtime: RuntimeDep, session: ReadSession) -> VoucherPoolOut:
    return runtime.vouchers.get_pool(session, key)


@router.post("/voucher-pools/{key}/codes")
async def import_codes(key: str, request: Request, runtime: RuntimeDep) -> CodesAdded:
    """Add codes: JSON `{"codes": [...]}` (errors name `codes[3]`) or a CSV body
    (`text/csv`, the first column of each line; errors name the line)."""
    body = await request.body()
    if len(body) > _MAX_IMPORT_BYTES:
        raise BadRequest("the body is larger than 20 MB")
    if request.headers.get("content-type", "").startswith("text/csv"):
        codes, locations = _csv_codes(body)
    else:
        try:
            codes = CodesIn.model_validate(orjson.loads(body)).codes
        except (orjson.JSONDecodeError, ValueError) as error:
            raise InvalidInput.at("body", f'expected {{"codes": [...]}}: {error}') from error
        locations = None
    with runtime.database.transaction() as session:
        return runtime.vouchers.import_codes(session, key, codes, locations=locations)


@router.post("/voucher-pools/{key}/generate")
def generate_codes(
    key: str, data: GenerateIn, runtime: RuntimeDep, session: WriteSession
) -> CodesAdded:
    """Add `count` random codes from the pool's pattern."""
    return runtime.vouchers.generate_codes(session, key, data.count)


@image_router.get("/e/v/{token}", response_class=Response)
def voucher_image(token: str, runtime: RuntimeDep) -> Response:
    """The PNG of a voucher code; 404 for a link Postillon did not sign."""
    png = runtime.vouchers.image(token)
    return Response(
        png, media_type="image/png", headers={"Cache-Control": "public, max-age=31536000"}
    )


def _csv_codes(body: bytes) -> tuple[list[str], list[str]]:
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise InvalidInput.at("body", "is not UTF-8") from error
    codes: list[str] = []
    locations: list[str] = []
    reader = csv.reader(io.StringIO(text))
    for row in reader:
        if not row or not row[0].strip():
            continue
        if reader.line_num == 1 and row[0].strip().lower() == "code":
            continue  # a header
        codes.append(row[0])
        locations.append(f"line {reader.line_num}")
    return codes, locations
