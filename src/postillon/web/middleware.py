"""Input that no endpoint can store: refused before routing, with a 4xx that says where.

PostgreSQL stores a NUL character neither in text nor in JSON. Rather than guard every
field, requests carrying one (`%00` in the URL, `\\u0000` in a JSON body) are answered here.
The tracking API (`/v1`) checks its own bodies message by message, so one bad message does
not cost the batch.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from postillon.errors import BadRequest, FieldProblem, InvalidInput, PostillonError
from postillon.kit.text import NUL_MESSAGE, nul_location

_MAX_BUFFERED = 20 * 1024 * 1024


class RefuseNulCharacters:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        url = scope.get("raw_path", b"") + b"?" + scope.get("query_string", b"")
        if b"%00" in url or b"\x00" in url:
            await _answer(send, BadRequest("the URL contains a NUL character (%00)"))
            return
        path: str = scope.get("path", "")
        if path.startswith("/v1/") or not _is_json(scope):
            await self.app(scope, receive, send)
            return
        messages: list[Message] = []
        body = b""
        more = True
        while more:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            body += message.get("body", b"")
            more = message.get("more_body", False) and len(body) <= _MAX_BUFFERED
        if b"\\u0000" in body:
            location = _nul_in_json(body)
            if location is not None:
                await _answer(
                    send,
                    InvalidInput(
                        f"{location}: {NUL_MESSAGE}", [FieldProblem(location, NUL_MESSAGE)]
                    ),
                )
                return

        async def replay() -> Message:
            if messages:
                return messages.pop(0)
            return await receive()

        await self.app(scope, replay, send)


def _is_json(scope: Scope) -> bool:
    for name, value in scope.get("headers", []):
        if name == b"content-type":
            return b"json" in value.lower()
    return False


def _nul_in_json(body: bytes) -> str | None:
    try:
        document: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None  # the endpoint reports the syntax error
    return nul_location(document)


async def _answer(send: Send, error: PostillonError) -> None:
    payload = orjson.dumps(error.as_dict())
    await send(
        {
            "type": "http.response.start",
            "status": error.status_code,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
