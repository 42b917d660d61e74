"""Webhooks that rules and journeys call: an outbox (`webhook_deliveries`) like the
messages', delivered by the worker's `WebhookTask`, signed, retried, never repeated
blindly.

- **queue** (`WebhookOutbox.queue`, in the action's transaction): one row per target with
  the body `{"id", "automation", "contact": <card>, "event", "sent_at"}` as JSON text
  (what is signed is what was stored), keyed `<target key>:webhook:<action index>` so a
  replayed action queues nothing twice.
- **claim** (committed before any call): rows left `sending` longer than
  `POSTILLON_WEBHOOK_LEASE` become `unknown` — a worker stopped during the call, which the
  receiver may have had, so it is not made again; then up to
  `POSTILLON_WEBHOOK_BATCH_SIZE` due `queued` rows become `sending` (`FOR UPDATE SKIP
  LOCKED` on PostgreSQL, so workers share them), `attempts + 1`.
- **call**: a POST with httpx, concurrently, `POSTILLON_WEBHOOK_TIMEOUT_SECONDS` each,
  redirects not followed, headers `Content-Type: application/json`, `User-Agent`,
  `Postillon-Delivery: <id>` (the receiver's idempotency key: a call whose answer was
  lost may arrive twice) and `Postillon-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of
  "<t>.<body>">` with the webhook secret (`webhook_secret`, derived from
  `POSTILLON_SECRET_KEY`; `postillon webhooks secret` prints it), plus the action's own
  headers.
- **record**: 2xx → `delivered`; 5xx, 408, 429, a connection error or a timeout → `queued`
  again after 30 s * 2^(attempts - 1) (at most an hour), until
  `POSTILLON_WEBHOOK_MAX_ATTEMPTS`, then `failed`; any other status → `failed`.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx
from sqlalchemy.orm import Session

from postillon.automations import actions_repository as repository
from postillon.automations import model as am
from postillon.automations.cards import contact_cards
from postillon.automations.definitions import Published
from postillon.kit.ids import new_id
from postillon.settings import Settings

if TYPE_CHECKING:
    from postillon.automations.actions import ActionTarget
    from postillon.runtime import Runtime

logger = logging.getLogger("postillon.webhooks")

SIGNATURE_HEADER = "Postillon-Signature"
DELIVERY_HEADER = "Postillon-Delivery"
_FIRST_RETRY = timedelta(seconds=30)
_LONGEST_RETRY = timedelta(hours=1)
_CONCURRENT_CALLS = 16
_ERROR_LENGTH = 500


def webhook_secret(secret_key: str) -> str:
    """The key webhooks are signed with (receivers verify with it)."""
    return hmac.new(secret_key.encode(), b"postillon webhook signatures", "sha256").hexdigest()


def signature(secret: str, timestamp: int, body: str) -> str:
    """The `Postillon-Signature` header's value for a body sent at `timestamp`."""
    mac = hmac.new(secret.encode(), f"{timestamp}.{body}".encode(), "sha256").hexdigest()
    return f"t={timestamp},v1={mac}"


def verify_signature(secret: str, header: str, body: str, *, now: int, tolerance: int) -> bool:
    """What a receiver does: the MAC matches and the time is within `tolerance` seconds."""
    parts = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    expected = signature(secret, timestamp, body).split("v1=", 1)[1]
    return abs(now - timestamp) <= tolerance and hmac.compare_digest(expected, parts.get("v1", ""))


class WebhookOutbox:
    """Queues webhook calls (the `webhook` action)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def queue(
        self,
        session: Session,
        automation: Published,
        action: am.WebhookAction,
        targets: Sequence[ActionTarget],
        *,
        now: datetime,
        index: int,
    ) -> list[uuid.UUID | None]:
        """One delivery per target (None: the contact no longer exists)."""
        cards = contact_cards(
            session, {t.contact_id for t in targets}, public_url=self.settings.public_url
        )
        rows: list[dict[str, Any]] = []
        keys: list[str | None] = []
        for target in targets:
            card = cards.get(target.contact_id)
            if card is None:
                keys.append(None)
                continue
            key = f"{target.key}:webhook:{index}"
            keys.append(key)
            delivery_id = new_id()
            body = {
                "id": str(delivery_id),
                "automation": automation.key,
                "contact": card,
                "event": target.event,
                "sent_at": now.isoformat(),
            }
            rows.append(
                {
                    "id": delivery_id,
                    "contact_id": target.contact_id,
                    "automation_id": automation.id,
                    "dedupe_key": key,
                    "url": action.url,
                    "headers": dict(action.headers),
                    "body": json.dumps(body, separators=(",", ":"), ensure_ascii=False),
                    "state": "queued",
                    "attempts": 0,
                    "due_at": now,
                    "claimed_at": None,
                    "queued_at": now,
                    "delivered_at": None,
                    "response_status": None,
                    "last_error": None,
                }
            )
        repository.insert_deliveries(session, rows)
        ids = repository.delivery_ids_by_key(session, [k for k in keys if k])
        return [ids.get(key) if key else None for key in keys]


@dataclass(frozen=True)
class _Call:
    id: uuid.UUID
    url: str
    headers: dict[str, str]
    body: str
    attempts: int


@dataclass(frozen=True)
class _Answer:
    status: int | None  # None: no answer (connection error, timeout)
    error: str | None


class WebhookTask:
    """The worker task: claim due deliveries, call them, record the answers."""

    name = "webhooks"

    def run_due(self, runtime: Runtime, now: datetime) -> int:
        settings = runtime.settings
        with runtime.database.transaction() as session:
            expired = repository.expire_leases(session, claimed_before=now - settings.webhook_lease)
            for delivery in expired:
                logger.warning(
                    "webhook delivery %s to %s is unknown: a worker stopped during the call",
                    delivery.id,
                    delivery.url,
                )
            claimed = repository.claim_due(session, now=now, limit=settings.webhook_batch_size)
            calls = [
                _Call(d.id, d.url, dict(d.headers or {}), d.body, d.attempts + 1) for d in claimed
            ]
            repository.update_deliveries(
                session,
                [
                    {"id": c.id, "state": "sending", "claimed_at": now, "attempts": c.attempts}
                    for c in calls
                ],
            )
        if not calls:
            return len(expired)
        answers = asyncio.run(_call_all(calls, settings, now))
        with runtime.database.transaction() as session:
            repository.update_deliveries(
                session,
                [
                    _recorded(call, answer, settings, now)
                    for call, answer in zip(calls, answers, strict=True)
                ],
            )
        return len(calls) + len(expired)


async def _call_all(calls: Sequence[_Call], settings: Settings, now: datetime) -> list[_Answer]:
    secret = webhook_secret(settings.secret_key)
    timestamp = int(now.timestamp())
    limit = asyncio.Semaphore(_CONCURRENT_CALLS)
    timeout = httpx.Timeout(settings.webhook_timeout_seconds)
    async with httpx.AsyncClient(timeout=timeout, follow_redirects=False) as client:

        async def call(one: _Call) -> _Answer:
            headers = {
                **one.headers,
                "Content-Type": "application/json",
                "User-Agent": "Postillon-Webhooks/1",
                DELIVERY_HEADER: str(one.id),
                SIGNATURE_HEADER: signature(secret, timestamp, one.body),
            }
            async with limit:
                try:
                    response = await client.post(
                        one.url, content=one.body.encode(), headers=headers
                    )
                except httpx.TimeoutException as error:
                    return _Answer(None, f"timed out: {type(error).__name__}")
                except httpx.HTTPError as error:
                    return _Answer(None, f"{type(error).__name__}: {error}"[:_ERROR_LENGTH])
            text = response.text[:_ERROR_LENGTH] if not response.is_success else None
            return _Answer(response.status_code, text)

        return await asyncio.gather(*(call(one) for one in calls))


def _recorded(call: _Call, answer: _Answer, settings: Settings, now: datetime) -> dict[str, Any]:
    """The delivery's row after this answer (every row the same keys: one executemany)."""
    row: dict[str, Any] = {
        "id": call.id,
        "state": "failed",
        "due_at": now,
        "claimed_at": None,
        "delivered_at": None,
        "response_status": answer.status,
        "last_error": None,
    }
    status = answer.status
    if status is not None and 200 <= status < 300:
        row.update(state="delivered", delivered_at=now)
        return row
    retryable = status is None or status >= 500 or status in (408, 429)
    reason = answer.error or ""
    if status is not None:
        reason = f"HTTP {status}" + (f": {answer.error}" if answer.error else "")
    if retryable and call.attempts < settings.webhook_max_attempts:
        row.update(state="queued", due_at=now + retry_delay(call.attempts), last_error=reason)
    else:
        tried = f" (after {call.attempts} attempts)" if retryable else ""
        row.update(last_error=f"{reason}{tried}"[:_ERROR_LENGTH])
    return row


def retry_delay(attempts: int) -> timedelta:
    """30 s, 1 min, 2 min … at most an hour, after the `attempts`-th failed call."""
    delay: timedelta = _FIRST_RETRY * 2 ** max(attempts - 1, 0)
    return min(delay, _LONGEST_RETRY)
