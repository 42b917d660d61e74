"""One place where errors become responses: 4xx with a message that says what and where."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from postillon.errors import (
    Conflict,
    FieldProblem,
    InvalidInput,
    NotAuthenticated,
    PostillonError,
    ServiceUnavailable,
    TooManyRequests,
)
from postillon.kit.db import is_transient

logger = logging.getLogger("postillon.web")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(PostillonError, _domain_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(IntegrityError, _concurrent_change)  # type: ignore[arg-type]
    app.add_exception_handler(OperationalError, _database_busy)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _unexpected_error)


def error_response(error: PostillonError) -> JSONResponse:
    headers: dict[str, str] | None = None
    if isinstance(error, NotAuthenticated):
        headers = {"WWW-Authenticate": "Bearer"}
    elif isinstance(error, TooManyRequests | ServiceUnavailable):
        headers = {"Retry-After": str(error.retry_after_seconds)}
    return JSONResponse(error.as_dict(), status_code=error.status_code, headers=headers)


async def _domain_error(_request: Request, error: PostillonError) -> JSONResponse:
    return error_response(error)


async def _validation_error(_request: Request, error: RequestValidationError) -> JSONResponse:
    problems = [_problem(item) for item in error.errors()]
    return error_response(InvalidInput.of(problems))


def _problem(item: dict[str, Any]) -> FieldProblem:
    location = _location(item.get("loc", ()))
    message = str(item.get("msg", "is not valid"))
    if item.get("type") == "json_invalid":
        context = item.get("ctx") or {}
        message = f"the body is not valid JSON ({context.get('error', 'parse error')})"
    elif item.get("type") == "extra_forbidden":
        message = "is not a known field"
    elif item.get("type") == "missing":
        message = "is required"
    return FieldProblem(location or "body", message)


def _location(parts: Any) -> str:
    """`("body", "contacts", 3, "email")` → `contacts[3].email`; query and path keep a prefix."""
    parts = list(parts)
    if parts and parts[0] == "body":
        parts = parts[1:]
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


async def _http_error(_request: Request, error: StarletteHTTPException) -> JSONResponse:
    code = {404: "not_found", 405: "method_not_allowed"}.get(error.status_code, "http_error")
    detail = error.detail if isinstance(error.detail, str) else "request failed"
    if error.status_code == 404 and detail == "Not Found":
        detail = "no such route"
    return JSONResponse(
        {"error": code, "message": detail},
        status_code=error.status_code,
        headers=getattr(error, "headers", None),
    )


async def _concurrent_change(request: Request, error: IntegrityError) -> JSONResponse:
    """Checks run before writes, so a unique key taken here was taken by a concurrent
    request between our check and our write; the client may simply retry."""
    logger.info("concurrent change on %s %s: %s", request.method, request.url.path, error.orig)
    return error_response(
        Conflict("another request changed the same contact at the same time; retry the request")
    )


async def _database_busy(request: Request, error: OperationalError) -> JSONResponse:
    """A deadlock or lock timeout between concurrent transactions: retrying will do."""
    if not is_transient(error):
        return await _unexpected_error(request, error)
    logger.info("database busy on %s %s: %s", request.method, request.url.path, error.orig)
    return error_response(
        ServiceUnavailable("the database is busy with concurrent changes; retry", 1)
    )


async def _unexpected_error(request: Request, error: Exception) -> JSONResponse:
    logger.exception("unexpected error on %s %s", request.method, request.url.path, exc_info=error)
    return JSONResponse(
        {"error": "internal_error", "message": "an unexpected error occurred; see the server log"},
        status_code=500,
    )
