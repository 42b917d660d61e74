"""The Segment-compatible HTTP Tracking API (`/v1/…`) and the visitor lookup (`/api/visitors`).

Bodies are read here, by hand, because clients send them as `application/json` or (the
browser, to avoid a CORS preflight) `text/plain`, possibly gzip-compressed, with the write
key in an `Authorization: Basic` header or in the body.
"""

from __future__ import annotations

import base64
import binascii
import logging
import random
import time
import uuid
import zlib
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError, OperationalError

from postillon.errors import (
    BadRequest,
    FieldProblem,
    ServiceUnavailable,
    TooManyRequests,
    summarise,
)
from postillon.kit.db import is_transient
from postillon.models import ApiKey
from postillon.runtime import Runtime
from postillon.tracking import segment
from postillon.tracking.limits import retry_after_header
from postillon.tracking.openapi import BATCH_BODY, MESSAGE_BODY
from postillon.tracking.schemas import IngestResponse, VisitorOut
from postillon.tracking.segment import ParsedBatch
from postillon.tracking.service import IngestResult, Sender
from postillon.web.dependencies import AdminKey, ReadSession, RuntimeDep

logger = logging.getLogger("postillon.tracking")

router = APIRouter(prefix="/v1", tags=["tracking"])
admin_router = APIRouter(prefix="/api", tags=["visitors"])

_RETRIES_ON_RACE = 5
_CORS_HEADERS = {
    "Access-Control-Allow-Methods": "POST, OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type, Content-Encoding, Authorization",
    "Access-Control-Max-Age": "86400",
}


async def _accept(request: Request, runtime: Runtime, message_type: str | None) -> Response:
    limit = segment.MAX_BATCH_BYTES if message_type is None else segment.MAX_MESSAGE_BYTES
    raw = await _read_body(request, limit)
    received_at = runtime.clock.now()
    document = segment.parse_body(raw)
    check_nul = segment.may_contain_nul(raw)
    origin = _origin(request)
    client_ip = request.client.host if request.client else None
    result = await run_in_threadpool(
        _accept_sync,
        runtime,
        document,
        check_nul,
        message_type,
        _header_secret(request),
        origin,
        client_ip,
        received_at,
    )
    response = JSONResponse(result.as_dict())
    if origin:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Vary"] = "Origin"
    return response


def _accept_sync(
    runtime: Runtime,
    document: Any,
    check_nul: bool,
    message_type: str | None,
    header_secret: str | None,
    origin: str | None,
    client_ip: str | None,
    received_at: datetime,
) -> IngestResult:
    body_secret = document.get("writeKey") if isinstance(document, dict) else None
    secret = header_secret or (body_secret if isinstance(body_secret, str) else None)
    with runtime.database.transaction(read_only=True) as session:
        key = runtime.api_keys.authenticate_writer(session, secret, origin=origin)
    _check_rate(runtime, key, client_ip, received_at)

    if message_type is None:
        parsed = segment.parse_batch(document, received_at=received_at, check_nul=check_nul)
        where = "batch"
    else:
        parsed = segment.parse_single(
            document, message_type, received_at=received_at, check_nul=check_nul
        )
        where = ""
    if not parsed.messages and parsed.rejected:
        problems = [p for r in parsed.rejected for p in r.problems]
        raise BadRequest("no message in the batch is valid: " + summarise(problems), problems[:100])
    sender = Sender(
        source=key.prefix, client_ip=client_ip if key.allowed_origins is not None else None
    )
    result = _ingest_with_retry(runtime, parsed, sender, received_at, where)
    result.rejected.extend(parsed.rejected)
    if message_type is not None and result.rejected:
        problems = [p for r in result.rejected for p in r.problems]
        raise BadRequest(summarise(problems), problems)
    _record_use(runtime, key, received_at)
    return result


def _ingest_with_retry(
    runtime: Runtime, parsed: ParsedBatch, sender: Sender, received_at: datetime, where: str
) -> IngestResult:
    """Concurrent batches can collide: a unique key (a messageId, a new contact's userId)
    taken between our check and our write, or a deadlock between two transactions that
    touch the same contacts. The batch then runs again in a new transaction, and sees what
    the other one wrote. If it keeps colliding, the client is told to retry (503): Segment's
    libraries drop a batch answered with most 4xx, but retry a 503."""
    for attempt in range(1, _RETRIES_ON_RACE + 1):
        try:
            with runtime.database.transaction(read_only=True) as session:
                batch = runtime.tracking.prepare(
                    session, parsed.messages, sender=sender, received_at=received_at
                )
            if not batch.writes:
                return IngestResult(duplicates=batch.duplicates)
            with runtime.database.transaction() as session:
                return runtime.tracking.ingest(session, batch, received_at=received_at, where=where)
        except (IntegrityError, OperationalError) as exc:
            if isinstance(exc, OperationalError) and not is_transient(exc):
                raise
            logger.info(
                "tracking batch collided (%s); attempt %d", type(exc.orig).__name__, attempt
            )
            time.sleep(random.uniform(0.005, 0.05) * attempt)
    raise ServiceUnavailable(
        "the database is busy with concurrent writes to the same contacts; retry shortly",
        retry_after_seconds=1,
    )


def _check_rate(runtime: Runtime, key: ApiKey, client_ip: str | None, now: datetime) -> None:
    wait = runtime.ingest_limiter.acquire((str(key.id), client_ip or ""), now)
    if wait is not None:
        seconds = int(retry_after_header(wait))
        raise TooManyRequests(
            f"too many requests for this write key from {client_ip or 'this client'}; "
            f"retry after {seconds} s",
            retry_after_seconds=seconds,
        )


def _record_use(runtime: Runtime, key: ApiKey, now: datetime) -> None:
    if key.last_used_at is not None and (now - key.last_used_at).total_seconds() < 60:
        return
    with runtime.database.transaction() as session:
        runtime.api_keys.record_use(session, key.id)


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, decompressed if gzip, refused once it passes `limit` bytes either way."""
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("identity", "gzip", ""):
        raise BadRequest(f"Content-Encoding {encoding!r} is not supported; use gzip or none")
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    raw = b"".join(chunks)
    if encoding != "gzip":
        return raw
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        body = inflater.decompress(raw, limit + 1)
    except zlib.error as exc:
        raise BadRequest(f"the body is not valid gzip: {exc}") from None
    if len(body) > limit or inflater.unconsumed_tail:
        raise _too_large(limit)
    if not inflater.eof:
        raise BadRequest("the gzip body is truncated")
    return body


def _too_large(limit: int) -> BadRequest:
    what = "a batch" if limit == segment.MAX_BATCH_BYTES else "a single message"
    message = f"the body is larger than {limit // 1024} KB, the limit for {what}"
    return BadRequest(message, [FieldProblem("body", message)])


def _header_secret(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise BadRequest("the Authorization header is not valid Basic credentials") from None
        return decoded.partition(":")[0] or None
    if scheme.lower() == "bearer":
        return value.strip() or None
    return None


def _origin(request: Request) -> str | None:
    origin = request.headers.get("origin")
    if origin and origin != "null":
        return origin
    referer = request.headers.get("referer")
    if referer:
        parts = urlsplit(referer)
        if parts.scheme and parts.netloc:
            return f"{parts.scheme}://{parts.netloc}"
    return None


_DESCRIPTION = (
    "Segment-compatible. Authenticate with `Authorization: Basic base64(WRITEKEY:)` or "
    "`writeKey` in the body; send JSON as `application/json` or `text/plain`, optionally "
    "gzip-compressed. Answers once the messages are stored."
)


def _message_route(path: str, message_type: str) -> None:
    async def accept(request: Request, runtime: RuntimeDep) -> Response:
        return await _accept(request, runtime, message_type)

    accept.__name__ = f"{message_type}_{path}"
    router.add_api_route(
        f"/{path}",
        accept,
        methods=["POST"],
        response_model=IngestResponse,
        summary=f"{message_type} (one message)",
        description=_DESCRIPTION,
        openapi_extra={"requestBody": MESSAGE_BODY},
    )


for _long in segment.MESSAGE_TYPES:
    _message_route(_long, _long)
for _short, _long in segment.SHORT_PATHS.items():
    _message_route(_short, _long)


@router.post(
    "/batch",
    response_model=IngestResponse,
    summary="batch (up to 2,500 messages, 500 KB)",
    description=_DESCRIPTION + " Invalid messages are reported by index; the others are stored.",
    openapi_extra={"requestBody": BATCH_BODY},
)
async def batch(request: Request, runtime: RuntimeDep) -> Response:
    return await _accept(request, runtime, None)


@router.post(
    "/b",
    response_model=IngestResponse,
    summary="batch (short path)",
    description=_DESCRIPTION,
    openapi_extra={"requestBody": BATCH_BODY},
)
async def batch_short(request: Request, runtime: RuntimeDep) -> Response:
    return await _accept(request, runtime, None)


@router.options("/{path}", include_in_schema=False)
async def preflight(request: Request, path: str) -> Response:
    """Browsers sending JSON ask first; the key and origin are checked on the real request."""
    origin = request.headers.get("origin") or "*"
    return Response(
        status_code=204, headers={**_CORS_HEADERS, "Access-Control-Allow-Origin": origin}
    )


@admin_router.get("/visitors/{anonymous_id}", response_model=VisitorOut)
def get_visitor(
    anonymous_id: str, runtime: RuntimeDep, session: ReadSession, _key: AdminKey
) -> VisitorOut:
    """A visitor by anonymous id: `anonymous` until linked to a contact, then `monitored`."""
    return runtime.tracking.visitor(session, anonymous_id)


@admin_router.get("/contacts/{contact_id}/visitors", response_model=list[VisitorOut])
def contact_visitors(
    contact_id: uuid.UUID, runtime: RuntimeDep, session: ReadSession, _key: AdminKey
) -> list[VisitorOut]:
    """The browsers and devices linked to a contact."""
    runtime.contacts.get(session, contact_id)
    return runtime.tracking.visitors_of(session, contact_id)
