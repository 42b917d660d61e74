"""Serves the browser snippet, `GET /t.js`: public, cacheable, revalidated by its ETag."""

from __future__ import annotations

import hashlib
from functools import cache
from importlib import resources

from fastapi import APIRouter, Request, Response, status

router = APIRouter(tags=["tracking"])

# Short enough that a new release reaches every site within minutes, long enough that a
# busy shop does not ask on every page view; revalidation is cheap (304 by ETag).
CACHE_CONTROL = "public, max-age=300"
MEDIA_TYPE = "application/javascript; charset=utf-8"


@cache
def snippet() -> tuple[bytes, str]:
    """The snippet's bytes and their strong ETag, read from the package once."""
    body = resources.files("postillon.tracking").joinpath("static", "t.js").read_bytes()
    return body, f'"{hashlib.sha256(body).hexdigest()[:32]}"'


def _etag_matches(if_none_match: str, etag: str) -> bool:
    candidates = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return "*" in candidates or etag in candidates


@router.get(
    "/t.js",
    response_class=Response,
    responses={
        200: {"content": {"application/javascript": {}}, "description": "the snippet"},
        304: {"description": "the copy named by If-None-Match is current"},
    },
)
def tracking_snippet(request: Request) -> Response:
    """The tracking snippet to include in a website with
    `<script async src="…/t.js" data-write-key="pst_write_…"></script>`."""
    body, etag = snippet()
    headers = {"ETag": etag, "Cache-Control": CACHE_CONTROL}
    if _etag_matches(request.headers.get("if-none-match", ""), etag):
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    return Response(content=body, media_type=MEDIA_TYPE, headers=headers)
