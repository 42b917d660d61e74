"""The request bodies of the tracking API as OpenAPI documents them (the routes read and
check bodies themselves, see `segment.py`)."""

from __future__ import annotations

from typing import Any

_OBJECT: dict[str, Any] = {"type": "object", "additionalProperties": True}
_TIME: dict[str, Any] = {"type": "string", "format": "date-time"}

MESSAGE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "type": {
            "type": "string",
            "enum": ["identify", "track", "page", "screen", "group", "alias"],
        },
        "userId": {"type": "string", "maxLength": 255},
        "anonymousId": {"type": "string", "maxLength": 200},
        "messageId": {"type": "string", "maxLength": 200},
        "event": {"type": "string", "maxLength": 200, "description": "track: the event's name"},
        "name": {"type": "string", "description": "page and screen: the page's name"},
        "category": {"type": "string", "description": "page: the page's category"},
        "groupId": {"type": "string", "description": "group: the group's id"},
        "previousId": {"type": "string", "description": "alias: the id being aliased"},
        "properties": _OBJECT,
        "traits": _OBJECT,
        "context": _OBJECT,
        "integrations": _OBJECT,
        "timestamp": _TIME,
        "originalTimestamp": _TIME,
        "sentAt": _TIME,
        "writeKey": {"type": "string"},
    },
    "additionalProperties": True,
}

BATCH_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["batch"],
    "properties": {
        "batch": {"type": "array", "maxItems": 2500, "items": MESSAGE_SCHEMA},
        "context": _OBJECT,
        "integrations": _OBJECT,
        "sentAt": _TIME,
        "writeKey": {"type": "string"},
    },
}


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "required": True,
        "content": {
            "application/json": {"schema": schema},
            "text/plain": {"schema": {"type": "string", "description": "the same JSON"}},
        },
    }


MESSAGE_BODY = _body(MESSAGE_SCHEMA)
BATCH_BODY = _body(BATCH_SCHEMA)
