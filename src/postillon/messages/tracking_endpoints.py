"""The open pixel and click redirects (`/e/o/…`, `/e/c/…`): public, the signed token is
the credential. A token we did not sign, or one naming no message, answers 404 and never
redirects."""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from postillon.errors import NotFound
from postillon.messages.links import LinkKind
from postillon.messages.tracking import HitKind
from postillon.web.dependencies import RuntimeDep, WriteSession

router = APIRouter(tags=["email tracking"], include_in_schema=False)

# The smallest transparent GIF: 1 by 1 pixel, one transparent colour.
_PIXEL = bytes.fromhex(
    "47494638396101000100800000000000ffffff21f90401000000002c00000000010001000002024401003b"
)
_NO_CACHE = {
    "Cache-Control": "no-store, no-cache, must-revalidate, max-age=0",
    "Pragma": "no-cache",
    "Expires": "0",
}


@router.api_route("/e/o/{token}.gif", methods=["GET", "HEAD"])
def open_pixel(
    token: str, request: Request, runtime: RuntimeDep, session: WriteSession
) -> Response:
    """Record an open; answer the pixel."""
    message_id = runtime.links.read_message_id(LinkKind.open, token)
    if message_id is None:
        raise NotFound("no such image")
    recorded = runtime.email_tracking.record(
        session,
        message_id,
        kind=HitKind.open,
        method=request.method,
        user_agent=request.headers.get("user-agent", ""),
    )
    if recorded is None:
        raise NotFound("no such image")
    return Response(_PIXEL, media_type="image/gif", headers=_NO_CACHE)


@router.api_route("/e/c/{token}", methods=["GET", "HEAD"])
def click(token: str, request: Request, runtime: RuntimeDep, session: WriteSession) -> Response:
    """Record a click and redirect to the link's target, which only the token carries."""
    found = runtime.links.read_click(token)
    if found is None or urlsplit(found[1]).scheme not in ("http", "https"):
        raise NotFound("no such link")
    message_id, target = found
    recorded = runtime.email_tracking.record(
        session,
        message_id,
        kind=HitKind.click,
        method=request.method,
        user_agent=request.headers.get("user-agent", ""),
        url=target,
    )
    if recorded is None:
        raise NotFound("no such link")
    return RedirectResponse(target, status_code=302, headers=_NO_CACHE)
