"""`machine_reason`: who made an open or a click, by a table of cases."""

from __future__ import annotations

from datetime import timedelta

import pytest

from postillon.messages.tracking import Hit, HitKind, machine_reason
from tests.messages.email_support import BROWSER_AGENT

OPEN, CLICK = HitKind.open, HitKind.click
LATER = timedelta(minutes=30)
APPLE_MAIL = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15"
GMAIL_PROXY = (
    "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
)
YAHOO_PROXY = "YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html"

CASES = [
    # (kind, method, user agent, since sent, other links in the last second) → reason
    (OPEN, "GET", BROWSER_AGENT, LATER, 0, None),
    (OPEN, "GET", APPLE_MAIL, LATER, 0, None),
    (OPEN, "GET", GMAIL_PROXY, LATER, 0, None),
    (OPEN, "GET", YAHOO_PROXY, LATER, 0, None),
    (OPEN, "GET", "Mozilla/5.0", LATER, 0, "privacy_proxy"),
    (OPEN, "GET", " mozilla/5.0 ", LATER, 0, "privacy_proxy"),
    (OPEN, "GET", "", LATER, 0, "no_user_agent"),
    (OPEN, "HEAD", BROWSER_AGENT, LATER, 0, "head_request"),
    (OPEN, "GET", BROWSER_AGENT, timedelta(seconds=1), 0, "too_soon_after_sending"),
    (OPEN, "GET", BROWSER_AGENT, timedelta(seconds=3), 0, None),
    (OPEN, "GET", BROWSER_AGENT, None, 0, None),
    (CLICK, "GET", BROWSER_AGENT, LATER, 0, None),
    (CLICK, "GET", "Mozilla/5.0", LATER, 0, None),  # a bare agent is Apple's rule for opens
    (CLICK, "HEAD", BROWSER_AGENT, LATER, 0, "head_request"),
    (CLICK, "GET", BROWSER_AGENT, timedelta(seconds=4), 0, "too_soon_after_sending"),
    (CLICK, "GET", BROWSER_AGENT, timedelta(seconds=11), 0, None),
    (CLICK, "GET", BROWSER_AGENT, LATER, 1, None),
    (CLICK, "GET", BROWSER_AGENT, LATER, 2, "click_burst"),
    (CLICK, "GET", "Mozilla/5.0 (compatible; Barracuda Sentinel)", LATER, 0, "scanner_user_agent"),
    (CLICK, "GET", "Proofpoint URL Defense", LATER, 0, "scanner_user_agent"),
    (CLICK, "GET", "Mozilla/5.0 (compatible; Googlebot/2.1)", LATER, 0, "scanner_user_agent"),
    (CLICK, "GET", "python-httpx/0.28.1", LATER, 0, "scanner_user_agent"),
    (CLICK, "GET", "curl/8.5.0", LATER, 0, "scanner_user_agent"),
    (CLICK, "GET", "Mozilla/5.0 HeadlessChrome/131.0", LATER, 0, "scanner_user_agent"),
    (OPEN, "GET", "Microsoft Office Protection Service", LATER, 0, "scanner_user_agent"),
]


@pytest.mark.parametrize(("kind", "method", "agent", "since", "others", "reason"), CASES)
def test_machine_reason(
    kind: HitKind,
    method: str,
    agent: str,
    since: timedelta | None,
    others: int,
    reason: str | None,
) -> None:
    hit = Hit(kind, method, agent, since, others)
    found = machine_reason(
        hit, open_window=timedelta(seconds=2), click_window=timedelta(seconds=10)
    )
    assert found == reason
