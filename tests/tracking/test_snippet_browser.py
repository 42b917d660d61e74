"""The browser snippet in a real (headless) Chromium, against a live Postillon.

A small shop is served from a second HTTP server on loopback, so the shop and Postillon are
different origins, as on the web. Time is controlled on both sides: Playwright's clock for
the browser (dwell times), the runtime's VirtualClock for the server (retention window).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page

from postillon.auth.service import Scope
from postillon.clock import VirtualClock
from postillon.models import Event
from postillon.runtime import Runtime
from postillon.worker.runner import Worker
from tests.tracking.support import stored_events

T = TypeVar("T")

# The visitor's computer clock is a few minutes fast: the server must correct the skew.
BROWSER_SKEW = timedelta(minutes=7)
# Real time that passes while the browser works, on top of the time the test makes pass.
DWELL_SLACK_MS = 10_000

# ---------------------------------------------------------------------------------------
# The shop: three pages with the snippet, one of them a sign-up form.

_LAYOUT = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>{head}</head>
<body><h1>{title}</h1>{body}
<script async src="{postillon}/t.js" data-write-key="{write_key}"></script>
</body></html>"""

_PAGES = {
    "/": ("Tea Shop", "", '<a id="next" href="/teas/sencha">Our sencha</a>'),
    "/teas/sencha": ("Sencha, grüner Tee", "", '<a id="next" href="/signup">Sign up</a>'),
    "/signup": (
        "Sign up to Tea Shop",
        # Calls made before the snippet has loaded wait in the stub's queue.
        """<script>
window.postillon = window.postillon || [];
postillon.push(["track", "Signup form viewed", {"form": "newsletter"}]);
</script>""",
        """<form id="signup">
<input id="email" type="email"> <input id="first_name">
<button type="submit">Sign up</button>
</form>
<script>
document.getElementById("signup").addEventListener("submit", function (event) {
  event.preventDefault();
  postillon.identify(document.getElementById("email").value,
                     {first_name: document.getElementById("first_name").value});
});
</script>""",
    ),
}


class _ShopHandler(BaseHTTPRequestHandler):
    server: _ShopServer

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path not in _PAGES:
            self.send_error(404)
            return
        title, head, body = _PAGES[path]
        html = _LAYOUT.format(
            title=title,
            head=head,
            body=body,
            postillon=self.server.postillon_url,
            write_key=self.server.write_key,
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(html)))
        self.end_headers()
        self.wfile.write(html)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _ShopServer(ThreadingHTTPServer):
    daemon_threads = True
    postillon_url = ""
    write_key = ""


@dataclass
class Shop:
    server: _ShopServer
    thread: threading.Thread

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"


@pytest.fixture
def open_shop(server_url: str) -> Iterator[Callable[[], Shop]]:
    """Starts shops on their own loopback ports (each one an origin) serving the snippet."""
    shops: list[Shop] = []

    def start() -> Shop:
        server = _ShopServer(("127.0.0.1", 0), _ShopHandler)
        server.postillon_url = server_url
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        shops.append(Shop(server, thread))
        return shops[-1]

    yield start
    for shop in shops:
        shop.server.shutdown()
        shop.server.server_close()
        shop.thread.join(timeout=5)


@pytest.fixture
def shop(open_shop: Callable[[], Shop], runtime: Runtime) -> Shop:
    """A shop whose origin, and only it, the write key accepts."""
    started = open_shop()
    with runtime.database.transaction() as session:
        _, secret = runtime.api_keys.create(
            session, scope=Scope.write, name="shop", allowed_origins=[started.url]
        )
    started.server.write_key = secret
    return started


# ---------------------------------------------------------------------------------------
# Helpers: a visitor's browser, waiting for the server, reading what it stored.


@dataclass
class ShopVisitor:
    """One browser profile (its own cookies) whose clock the test moves with the server's."""

    context: BrowserContext
    page: Page
    clock: VirtualClock
    postillon_url: str

    def goto(self, url: str) -> None:
        """Open a shop page and wait until Postillon has answered its page view."""
        with self.page.expect_response(self.answer_to("/v1/p")) as answer:
            self.page.goto(url)
        assert answer.value.status < 300, answer.value.text()

    def follow(self, selector: str) -> None:
        with self.page.expect_response(self.answer_to("/v1/p")) as answer:
            self.page.click(selector)
        assert answer.value.status < 300, answer.value.text()

    def leave(self) -> None:
        """Navigate away: the page's `pagehide` sends its dwell time with sendBeacon."""
        self.page.goto("about:blank")

    def spend(self, duration: timedelta) -> None:
        """Let time pass for the visitor and for the server alike."""
        self.page.clock.fast_forward(int(duration.total_seconds() * 1000))
        self.clock.advance(duration)

    def set_hidden(self, hidden: bool) -> None:
        """What switching to another tab does: visibilityState changes, an event fires."""
        self.page.evaluate(
            """(hidden) => {
                Object.defineProperty(document, "visibilityState", {
                    configurable: true, get: () => (hidden ? "hidden" : "visible"),
                });
                document.dispatchEvent(new Event("visibilitychange"));
            }""",
            hidden,
        )

    def sign_up(self, email: str, first_name: str) -> None:
        self.page.fill("#email", email)
        self.page.fill("#first_name", first_name)
        with self.page.expect_response(self.answer_to("/v1/i")) as answer:
            self.page.click("button[type=submit]")
        assert answer.value.status < 300, answer.value.text()

    def anonymous_id(self) -> str:
        return str(self.page.evaluate("postillon.anonymousId()"))

    def answer_to(self, path: str) -> Callable[[Any], bool]:
        url = self.postillon_url + path
        return lambda response: bool(response.url == url)


@pytest.fixture
def new_visitor(
    browser: Browser, clock: VirtualClock, server_url: str
) -> Iterator[Callable[[], ShopVisitor]]:
    contexts: list[BrowserContext] = []

    def open_browser() -> ShopVisitor:
        context = browser.new_context(locale="en-GB", timezone_id="Europe/Berlin")
        contexts.append(context)
        context.clock.install(time=clock.now() + BROWSER_SKEW)
        return ShopVisitor(context, context.new_page(), clock, server_url)

    yield open_browser
    for context in contexts:
        context.close()


def eventually(check: Callable[[], T | None], *, what: str, timeout: float = 15.0) -> T:
    """Poll `check` until it returns something truthy; the server stores asynchronously."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def contact_by_email(api: httpx.Client, email: str) -> dict[str, Any] | None:
    response = api.get("/api/contacts", params={"email": email})
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items[0] if items else None


def timeline(api: httpx.Client, contact_id: str) -> list[dict[str, Any]]:
    response = api.get(f"/api/contacts/{contact_id}/events", params={"limit": 500})
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def page_views(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The page views in the order they happened (the timeline is newest first)."""
    return [e for e in reversed(events) if e["type"] == "page"]


def run_worker_round(runtime: Runtime, now: datetime) -> int:
    # Playwright's sync API keeps an event loop on this thread; the round gets its own.
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, Worker(runtime, name="test").run_round(now)).result()


def dwell_ms(event: dict[str, Any]) -> int | None:
    value = event["properties"].get("dwell_ms")
    return value if isinstance(value, int) else None


def assert_dwell(event: dict[str, Any], visible: timedelta) -> None:
    low = int(visible.total_seconds() * 1000)
    assert low <= (dwell_ms(event) or -1) <= low + DWELL_SLACK_MS, (event["properties"], visible)


def assert_near(moment: str, expected: datetime) -> None:
    assert abs(datetime.fromisoformat(moment) - expected) < timedelta(seconds=5), (
        moment,
        expected,
    )


# ---------------------------------------------------------------------------------------
# The tests.


def test_the_snippet_is_served_as_cacheable_javascript(anonymous: httpx.Client) -> None:
    response = anonymous.get("/t.js")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/javascript; charset=utf-8"
    assert response.headers["cache-control"] == "public, max-age=300"
    assert "data-write-key" in response.text
    etag = response.headers["etag"]
    again = anonymous.get("/t.js", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    assert anonymous.get("/t.js", headers={"If-None-Match": '"other"'}).status_code == 200


def test_browsing_then_signing_up_puts_the_visit_on_the_contacts_timeline(
    shop: Shop,
    new_visitor: Callable[[], ShopVisitor],
    api: httpx.Client,
    runtime: Runtime,
    clock: VirtualClock,
) -> None:
    visitor = new_visitor()
    start = clock.now()

    # Arrives from a newsletter, reads the home page for 12 s.
    landing = f"{shop.url}/?utm_source=newsletter&utm_medium=email&utm_campaign=spring"
    visitor.goto(landing)
    anonymous_id = visitor.anonymous_id()
    visitor.spend(timedelta(seconds=12))
    visitor.follow("#next")
    # On the product page: 30 s, ten minutes in another tab, 15 s more.
    visitor.spend(timedelta(seconds=30))
    visitor.set_hidden(True)
    visitor.spend(timedelta(minutes=10))
    visitor.set_hidden(False)
    visitor.spend(timedelta(seconds=15))
    visitor.follow("#next")
    # Fills the sign-up form in 90 s, then goes elsewhere.
    visitor.spend(timedelta(seconds=90))
    visitor.sign_up("ann@example.com", "Ann")
    assert visitor.anonymous_id() == anonymous_id
    visitor.leave()

    # The anonymous id lives in a first-party cookie on the shop, mirrored in localStorage.
    cookie = next(c for c in visitor.context.cookies(shop.url) if c["name"] == "pst_aid")
    assert cookie["value"] == anonymous_id
    assert cookie["sameSite"] == "Lax"
    assert cookie["path"] == "/"
    assert 364 * 86400 < cookie["expires"] - time.time() < 366 * 86400
    shop_storage = next(
        o for o in visitor.context.storage_state()["origins"] if o["origin"] == shop.url
    )
    assert {"name": "pst_aid", "value": anonymous_id} in shop_storage["localStorage"]

    contact = eventually(lambda: contact_by_email(api, "ann@example.com"), what="the contact")

    def complete_timeline() -> list[dict[str, Any]] | None:
        events = timeline(api, contact["id"])
        views = page_views(events)
        if len(views) == 3 and all(dwell_ms(v) is not None for v in views):
            return events
        return None

    events = eventually(complete_timeline, what="three page views with their dwell times")
    assert sorted(e["name"] for e in events) == [
        "Signup form viewed",
        "contact_created",
        "identified",
        "page_viewed",
        "page_viewed",
        "page_viewed",
    ]

    home, product, signup = page_views(events)
    assert [v["properties"]["path"] for v in (home, product, signup)] == [
        "/",
        "/teas/sencha",
        "/signup",
    ]
    assert home["properties"]["url"] == landing
    assert [v["properties"]["title"] for v in (home, product, signup)] == [
        "Tea Shop",
        "Sencha, grüner Tee",
        "Sign up to Tea Shop",
    ]
    assert product["properties"]["referrer"] == landing
    assert home["context"]["campaign"] == {
        "source": "newsletter",
        "medium": "email",
        "name": "spring",
    }
    assert "campaign" not in product["context"]
    assert home["context"]["library"] == {"name": "postillon.js", "version": "1"}
    assert (home["context"]["locale"], home["context"]["timezone"]) == ("en-GB", "Europe/Berlin")
    # Time in the other tab does not count.
    assert_dwell(home, timedelta(seconds=12))
    assert_dwell(product, timedelta(seconds=45))
    assert_dwell(signup, timedelta(seconds=90))
    # The server put the events on its own clock, not on the visitor's fast one.
    assert_near(home["occurred_at"], start)
    assert_near(product["occurred_at"], start + timedelta(seconds=12))
    assert_near(signup["occurred_at"], start + timedelta(seconds=12 + 45 + 600))

    queued = next(e for e in events if e["name"] == "Signup form viewed")
    assert queued["type"] == "track"
    assert queued["properties"] == {"form": "newsletter"}
    identified = next(e for e in events if e["name"] == "identified")
    assert identified["type"] == "identify"

    contact = api.get(f"/api/contacts/{contact['id']}").json()
    assert contact["state"] == "monitored"
    assert contact["first_name"] == "Ann"
    assert all(e.contact_id is not None for e in stored_events(runtime, anonymous_id=anonymous_id))


def test_a_visit_older_than_the_retention_window_is_forgotten(
    shop: Shop,
    new_visitor: Callable[[], ShopVisitor],
    api: httpx.Client,
    runtime: Runtime,
    clock: VirtualClock,
) -> None:
    visitor = new_visitor()
    visitor.goto(f"{shop.url}/")
    anonymous_id = visitor.anonymous_id()
    visitor.spend(timedelta(seconds=20))
    visitor.follow("#next")
    visitor.spend(timedelta(seconds=40))
    visitor.leave()

    def both_views_with_dwell() -> list[Event] | None:
        stored = [e for e in stored_events(runtime, anonymous_id=anonymous_id) if e.type == "page"]
        if len(stored) == 2 and all("dwell_ms" in e.properties for e in stored):
            return stored
        return None

    stored = eventually(both_views_with_dwell, what="the anonymous page views")
    assert all(e.contact_id is None for e in stored)

    # The visitor comes back after the window: their earlier visit has been purged.
    retention = runtime.settings.anonymous_retention
    clock.advance(retention + timedelta(minutes=1))
    run_worker_round(runtime, clock.now())
    assert stored_events(runtime, anonymous_id=anonymous_id) == []

    visitor.goto(f"{shop.url}/signup")
    assert visitor.anonymous_id() == anonymous_id
    visitor.spend(timedelta(seconds=25))
    visitor.sign_up("bob@example.com", "Bob")
    visitor.leave()

    contact = eventually(lambda: contact_by_email(api, "bob@example.com"), what="the contact")

    def signup_view_with_dwell() -> list[dict[str, Any]] | None:
        events = timeline(api, contact["id"])
        views = page_views(events)
        return events if views and all(dwell_ms(v) is not None for v in views) else None

    events = eventually(signup_view_with_dwell, what="the sign-up page view with its dwell")
    assert [v["properties"]["path"] for v in page_views(events)] == ["/signup"]
    assert_dwell(page_views(events)[0], timedelta(seconds=25))
    assert sorted(e["name"] for e in events) == [
        "Signup form viewed",
        "contact_created",
        "identified",
        "page_viewed",
    ]
    assert api.get(f"/api/contacts/{contact['id']}").json()["state"] == "monitored"


def test_a_write_key_works_only_from_its_sites(
    shop: Shop,
    open_shop: Callable[[], Shop],
    new_visitor: Callable[[], ShopVisitor],
    anonymous: httpx.Client,
    runtime: Runtime,
) -> None:
    # The same snippet and key, copied onto a site the key does not name, is refused; the
    # refusal grants no CORS access, so the browser reports the request as failed.
    elsewhere = open_shop()
    elsewhere.server.write_key = shop.server.write_key
    visitor = new_visitor()
    with visitor.page.expect_event("requestfailed", visitor.answer_to("/v1/p")):
        visitor.page.goto(f"{elsewhere.url}/")
    assert stored_events(runtime, anonymous_id=visitor.anonymous_id()) == []

    message = {
        "type": "track",
        "writeKey": shop.server.write_key,
        "anonymousId": "c2b7c6b4-6f55-4a59-8f4e-0f2a3a8a7d11",
        "event": "Probe",
    }
    headers = {"Content-Type": "text/plain"}

    def post(**extra: str) -> httpx.Response:
        return anonymous.post("/v1/t", content=json.dumps(message), headers=headers | extra)

    allowed = post(Origin=shop.url)
    assert allowed.status_code < 300, allowed.text
    assert allowed.headers["access-control-allow-origin"] == shop.url
    assert post(Origin=elsewhere.url).status_code == 403
    assert post(Origin="https://evil.example").status_code == 403
    # Without an Origin header the Referer decides.
    assert post(Referer=f"{shop.url}/teas/sencha").status_code < 300
    assert post(Referer="https://evil.example/page").status_code == 403
