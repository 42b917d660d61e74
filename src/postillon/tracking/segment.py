"""The Segment HTTP Tracking API's messages: checked and normalised, before any storage.

Pure functions over parsed JSON. A batch is checked message by message, so that one bad
message is reported by its index while the others go in.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from postillon.errors import BadRequest, FieldProblem, summarise
from postillon.kit.text import NUL_MESSAGE, nul_location

MAX_MESSAGE_BYTES = 32 * 1024
MAX_BATCH_BYTES = 500 * 1024
MAX_BATCH_MESSAGES = 2500

MESSAGE_TYPES = ("identify", "track", "page", "screen", "group", "alias")
SHORT_PATHS = {
    "i": "identify",
    "t": "track",
    "p": "page",
    "s": "screen",
    "g": "group",
    "a": "alias",
}

# What a message of each type is called on the timeline (`events.name`); track keeps its own.
EVENT_NAMES = {
    "identify": "identified",
    "page": "page_viewed",
    "screen": "screen_viewed",
    "group": "group_joined",
    "alias": "aliased",
}

_MAX_ID = 200
_MAX_USER_ID = 255
_MAX_EVENT_NAME = 200


@dataclass(slots=True)
class Message:
    """One checked Segment call."""

    index: int
    type: str
    message_id: str
    user_id: str | None
    anonymous_id: str | None
    name: str
    properties: dict[str, Any]
    traits: dict[str, Any]
    context: dict[str, Any]
    integrations: dict[str, Any] | None
    occurred_at: datetime
    previous_id: str | None = None
    group_id: str | None = None


@dataclass
class Rejected:
    index: int
    problems: list[FieldProblem]

    def as_dict(self) -> dict[str, Any]:
        return {"index": self.index, "problems": [p.as_dict() for p in self.problems]}


@dataclass
class ParsedBatch:
    messages: list[Message] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)


def parse_body(raw: bytes) -> Any:
    """The JSON document of a request body (already decompressed and size-checked)."""
    if not raw.strip():
        raise BadRequest("the body is empty; send a JSON object")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(
            f"the body is not valid JSON: {exc}", [FieldProblem("body", str(exc))]
        ) from None


def may_contain_nul(raw: bytes) -> bool:
    """JSON can carry a NUL character only as the escape `\\u0000`: a cheap test on the
    raw body spares walking every message when (as almost always) there is none."""
    return b"\\u0000" in raw


def parse_single(
    document: Any, message_type: str, *, received_at: datetime, check_nul: bool = True
) -> ParsedBatch:
    """`POST /v1/track` and the other single-message routes: the path names the type."""
    if not isinstance(document, dict):
        raise BadRequest("the body must be a JSON object", [FieldProblem("body", "not an object")])
    batch = ParsedBatch()
    _check_size(document, "body", MAX_MESSAGE_BYTES)
    message, problems = check_message(
        document,
        0,
        received_at=received_at,
        forced_type=message_type,
        where="",
        check_nul=check_nul,
    )
    if problems:
        raise BadRequest(summarise(problems), problems)
    assert message is not None
    batch.messages.append(message)
    return batch


def parse_batch(document: Any, *, received_at: datetime, check_nul: bool = True) -> ParsedBatch:
    """`POST /v1/batch`: batch-level `context`, `integrations` and `sentAt` apply to every
    message; invalid messages are rejected by index, the others kept."""
    if not isinstance(document, dict):
        raise BadRequest("the body must be a JSON object", [FieldProblem("body", "not an object")])
    items = document.get("batch")
    if not isinstance(items, list):
        raise BadRequest(
            "the body needs a 'batch' array of messages",
            [FieldProblem("batch", "is required and must be an array")],
        )
    if len(items) > MAX_BATCH_MESSAGES:
        raise BadRequest(
            f"a batch holds at most {MAX_BATCH_MESSAGES} messages; this one has {len(items)}",
            [FieldProblem("batch", f"more than {MAX_BATCH_MESSAGES} messages")],
        )
    shared_context = document.get("context")
    if shared_context is not None and not isinstance(shared_context, dict):
        raise BadRequest("context: must be an object", [FieldProblem("context", "not an object")])
    shared_integrations = document.get("integrations")
    if shared_integrations is not None and not isinstance(shared_integrations, dict):
        raise BadRequest(
            "integrations: must be an object", [FieldProblem("integrations", "not an object")]
        )
    batch = ParsedBatch()
    batch_sent_at = document.get("sentAt")
    for index, item in enumerate(items):
        where = f"batch[{index}]"
        if not isinstance(item, dict):
            batch.rejected.append(Rejected(index, [FieldProblem(where, "must be an object")]))
            continue
        size = _size(item)
        if size > MAX_MESSAGE_BYTES:
            message = f"is {size} bytes; a message may have at most {MAX_MESSAGE_BYTES}"
            batch.rejected.append(Rejected(index, [FieldProblem(where, message)]))
            continue
        if shared_context:
            item = {**item, "context": {**shared_context, **(_object_or_empty(item, "context"))}}
        if shared_integrations:
            integrations = {**shared_integrations, **_object_or_empty(item, "integrations")}
            item = {**item, "integrations": integrations}
        if batch_sent_at is not None and "sentAt" not in item:
            item = {**item, "sentAt": batch_sent_at}
        checked, problems = check_message(
            item, index, received_at=received_at, where=where, check_nul=check_nul
        )
        if problems:
            batch.rejected.append(Rejected(index, problems))
        else:
            assert checked is not None
            batch.messages.append(checked)
    return batch


def check_message(
    item: dict[str, Any],
    index: int,
    *,
    received_at: datetime,
    where: str,
    forced_type: str | None = None,
    check_nul: bool = True,
) -> tuple[Message | None, list[FieldProblem]]:
    problems: list[FieldProblem] = []

    def at(name: str) -> str:
        return f"{where}.{name}" if where else name

    def problem(name: str, message: str) -> None:
        problems.append(FieldProblem(at(name), message))

    nul_at = nul_location(item, where) if check_nul else None
    if nul_at is not None:
        return None, [FieldProblem(nul_at, NUL_MESSAGE)]
    message_type = forced_type or item.get("type")
    if message_type not in MESSAGE_TYPES:
        problem("type", f"must be one of {', '.join(MESSAGE_TYPES)}")
        return None, problems
    assert isinstance(message_type, str)
    user_id = _identifier(item.get("userId"), "userId", _MAX_USER_ID, problem)
    anonymous_id = _identifier(item.get("anonymousId"), "anonymousId", _MAX_ID, problem)
    message_id = _identifier(item.get("messageId"), "messageId", _MAX_ID, problem)
    properties = _object(item, "properties", problem)
    traits = _object(item, "traits", problem)
    context = _object(item, "context", problem)
    integrations = _object(item, "integrations", problem) if "integrations" in item else None
    occurred_at = _occurred_at(item, received_at, problem)

    name = EVENT_NAMES.get(message_type, "")
    previous_id = group_id = None
    if message_type == "track":
        event = item.get("event")
        if not isinstance(event, str) or not event.strip():
            problem("event", "is required for a track call: the name of the event")
        elif len(event) > _MAX_EVENT_NAME:
            problem("event", f"is longer than {_MAX_EVENT_NAME} characters")
        else:
            name = event.strip()
    elif message_type in ("page", "screen"):
        page_name = item.get("name")
        category = item.get("category")
        if page_name is not None and not isinstance(page_name, str):
            problem("name", "must be a string")
        elif category is not None and not isinstance(category, str):
            problem("category", "must be a string")
        else:
            named = {"name": page_name, "category": category}
            properties = {**{k: v for k, v in named.items() if v}, **properties}
        if message_type == "page":
            page = context.get("page")
            if isinstance(page, dict):
                defaults = {
                    key: page[key]
                    for key in ("url", "path", "title", "referrer", "search")
                    if key in page
                }
                properties = {**defaults, **properties}
    elif message_type == "group":
        group_id = _identifier(item.get("groupId"), "groupId", _MAX_USER_ID, problem)
        if group_id is None:
            problem("groupId", "is required for a group call")
        properties = {"group_id": group_id, **traits}
    elif message_type == "alias":
        previous_id = _identifier(item.get("previousId"), "previousId", _MAX_USER_ID, problem)
        if previous_id is None:
            problem("previousId", "is required for an alias call")
        if user_id is None:
            problem("userId", "is required for an alias call")
        properties = {"previous_id": previous_id}

    if message_type != "alias" and user_id is None and anonymous_id is None:
        problem("userId", "a userId or an anonymousId is required")
    if problems:
        return None, problems
    if message_type == "identify":
        properties = traits
    return (
        Message(
            index=index,
            type=message_type,
            message_id=message_id or f"postillon-{uuid.uuid4()}",
            user_id=user_id,
            anonymous_id=anonymous_id,
            name=name,
            properties=properties,
            traits=traits,
            context=context,
            integrations=integrations,
            occurred_at=occurred_at,
            previous_id=previous_id,
            group_id=group_id,
        ),
        [],
    )


def _identifier(value: Any, name: str, max_length: int, problem: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        problem(name, "must be a string")
        return None
    text = str(value).strip()
    if not text:
        return None
    if len(text) > max_length:
        problem(name, f"is longer than {max_length} characters")
        return None
    return text


def _object(item: dict[str, Any], name: str, problem: Any) -> dict[str, Any]:
    value = item.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        problem(name, "must be an object")
        return {}
    return value


def _object_or_empty(item: dict[str, Any], name: str) -> dict[str, Any]:
    value = item.get(name)
    return value if isinstance(value, dict) else {}


def _occurred_at(item: dict[str, Any], received_at: datetime, problem: Any) -> datetime:
    """Segment's rule: an explicit `timestamp` is kept; otherwise the device's
    `originalTimestamp` is corrected by the skew between its clock and ours:
    timestamp = receivedAt - (sentAt - originalTimestamp)."""
    timestamp = _moment(item.get("timestamp"), "timestamp", problem)
    original = _moment(item.get("originalTimestamp"), "originalTimestamp", problem)
    sent_at = _moment(item.get("sentAt"), "sentAt", problem)
    if timestamp is not None:
        return timestamp
    if original is not None and sent_at is not None:
        try:
            return received_at - (sent_at - original)
        except OverflowError:
            problem("sentAt", "is too far from originalTimestamp to correct the clock skew")
            return received_at
    return original or received_at


def _moment(value: Any, name: str, problem: Any) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        problem(name, "must be an ISO 8601 date-time string")
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        problem(name, f"{value!r} is not an ISO 8601 date-time")
        return None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        problem(name, f"{value!r} is outside the years 1 to 9999 in UTC")
        return None


def _size(item: Any) -> int:
    return len(orjson.dumps(item))


def _check_size(item: Any, where: str, limit: int) -> None:
    size = _size(item)
    if size > limit:
        message = f"is {size} bytes; a message may have at most {limit}"
        raise BadRequest(f"{where}: {message}", [FieldProblem(where, message)])
