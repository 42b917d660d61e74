"""Opens and clicks: recorded as events on the contact's timeline, counted when a person
made them.

A hit (the open pixel fetched, a click link followed) whose token verified becomes an
`email_opened` or `email_clicked` event (`source` email) with the message, its template,
broadcast and variant, the link, the user agent and `machine: true|false`. Only a person's
first open and click set `messages.opened_at` / `clicked_at` (a click implies an open) and
make the contact *monitored*; machine hits are kept for the record but excluded from
unique rates. `machine_reason` is the one place that decides.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy.orm import Session

from postillon.clock import Clock
from postillon.contacts import repository as contacts_repository
from postillon.events.service import store_events
from postillon.kit.ids import new_id
from postillon.messages import repository
from postillon.settings import Settings

EMAIL_SOURCE = "email"
OPENED = "email_opened"
CLICKED = "email_clicked"

# Security gateways and link checkers that fetch links to inspect them, and HTTP
# libraries no person clicks with (lower case, matched as substrings).
_SCANNER_AGENTS = re.compile(
    r"bot\b|bot/|spider|crawl|scanner|preview|python-|aiohttp|httpx|curl/|wget|"
    r"go-http-client|java/|okhttp|libwww|httpclient|headlesschrome|phantomjs|barracuda|"
    r"proofpoint|mimecast|symantec|messagelabs|trendmicro|forcepoint|fireeye|zscaler|"
    r"sophos|ironport|safelinks|microsoft office protection"
)
# Apple Mail Privacy Protection fetches every image through Apple's proxy when the mail
# is delivered, whether or not it is ever read, with this bare user agent and nothing else.
_APPLE_PRIVACY_PROXY = "mozilla/5.0"
# Clicks on this many different links of one message within a second are a scanner
# following every link, not a reader.
_BURST_LINKS = 3
BURST_WINDOW = timedelta(seconds=1)


class HitKind(StrEnum):
    open = "open"
    click = "click"


@dataclass(frozen=True)
class Hit:
    kind: HitKind
    method: str
    user_agent: str
    # Time since the message was handed over; None if it has no `sent_at`.
    since_sent: timedelta | None
    # Different links of the same message clicked in the second before (clicks only).
    other_links_just_clicked: int = 0


def machine_reason(hit: Hit, *, open_window: timedelta, click_window: timedelta) -> str | None:
    """Why a hit was made by a machine, or None if a person made it.

    In order: a HEAD request (scanners check links without fetching them); no user agent;
    a scanner's or HTTP library's user agent; Apple's privacy proxy (exactly `Mozilla/5.0`)
    for opens; an open within `open_window` or a click within `click_window` of sending
    (gateways prefetch and scan on delivery); a click that completes a burst of
    `_BURST_LINKS` different links within a second. Google's and Yahoo's image proxies
    (`GoogleImageProxy`, `YahooMailProxy`) are people: they fetch the image when the
    recipient opens the message, so they pass when nothing else applies."""
    agent = hit.user_agent.strip().lower()
    if hit.method.upper() == "HEAD":
        return "head_request"
    if not agent:
        return "no_user_agent"
    if _SCANNER_AGENTS.search(agent):
        return "scanner_user_agent"
    if hit.kind is HitKind.open and agent == _APPLE_PRIVACY_PROXY:
        return "privacy_proxy"
    window = open_window if hit.kind is HitKind.open else click_window
    if hit.since_sent is not None and hit.since_sent < window:
        return "too_soon_after_sending"
    if hit.kind is HitKind.click and hit.other_links_just_clicked >= _BURST_LINKS - 1:
        return "click_burst"
    return None


def email_event_row(
    contact_id: uuid.UUID, name: str, properties: dict[str, Any], now: datetime
) -> dict[str, Any]:
    """An event about an email (opened, clicked, unsubscribed, bounced …) for `store_events`."""
    return {
        "contact_id": contact_id,
        "anonymous_id": None,
        "user_id": None,
        "message_id": f"postillon-{new_id()}",
        "type": "track",
        "name": name,
        "properties": {**properties, "source": EMAIL_SOURCE},
        "context": {},
        "integrations": None,
        "source": EMAIL_SOURCE,
        "occurred_at": now,
        "received_at": now,
    }


@dataclass(frozen=True)
class Recorded:
    machine: bool
    reason: str | None


class EmailTracking:
    """Records opens and clicks of messages whose link tokens verified."""

    def __init__(self, settings: Settings, clock: Clock) -> None:
        self.clock = clock
        self.open_window = timedelta(seconds=settings.email_machine_open_seconds)
        self.click_window = timedelta(seconds=settings.email_machine_click_seconds)

    def record(
        self,
        session: Session,
        message_id: uuid.UUID,
        *,
        kind: HitKind,
        method: str,
        user_agent: str,
        url: str | None = None,
    ) -> Recorded | None:
        """Record one hit in the caller's transaction; None if the message does not exist."""
        found = repository.message_for_tracking(session, message_id)
        if found is None:
            return None
        message, template_key = found
        now = self.clock.now()
        others = 0
        if kind is HitKind.click:
            recent = repository.recent_clicked_urls(
                session, message.contact_id, str(message_id), since=now - BURST_WINDOW
            )
            others = len(recent - {url})
        hit = Hit(
            kind=kind,
            method=method,
            user_agent=user_agent,
            since_sent=None if message.sent_at is None else now - message.sent_at,
            other_links_just_clicked=others,
        )
        reason = machine_reason(hit, open_window=self.open_window, click_window=self.click_window)
        properties: dict[str, Any] = {
            "message_id": str(message.id),
            "template": template_key,
            "broadcast_id": None if message.broadcast_id is None else str(message.broadcast_id),
            "variant": message.variant,
            "machine": reason is not None,
            "machine_reason": reason,
            "user_agent": user_agent,
        }
        if url is not None:
            properties["url"] = url
        name = OPENED if kind is HitKind.open else CLICKED
        store_events(session, [email_event_row(message.contact_id, name, properties, now)], now=now)
        if reason is None:
            repository.record_first_hits(
                session, message.id, clicked=kind is HitKind.click, now=now
            )
            contacts_repository.mark_monitored(session, [message.contact_id], now)
        elif kind is HitKind.open:
            # Counted on the message, so statistics need no scan of the events.
            repository.count_machine_open(session, message.id)
        return Recorded(machine=reason is not None, reason=reason)
