"""A year in the life of one demo contact: visits, product views, carts, orders and emails.

Pure and seeded: the same random generator, person and window give the same timeline.
Times are seconds since the start of the window (floats) until the generator turns them
into datetimes; nothing happens after the end of the window.

Contacts follow one of a few personas, so that behaviour is as uneven as in a real shop:
most people come rarely and buy little, a minority are loyal buyers, some bought and then
stopped coming a few months ago, and some are new customers of the last weeks.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from postillon.demo.catalogue import (
    CATEGORIES,
    CATEGORY_BY_KEY,
    COUPONS,
    CURRENCY,
    SEASON,
    SHOP_NAME,
    SHOP_URL,
    Campaign,
    Product,
    campaigns,
)
from postillon.demo.people import Person

DAY = 86_400.0
HOUR = 3_600.0


@dataclass(frozen=True)
class Persona:
    name: str
    share: float
    created: tuple[float, float]  # when they signed up, as fractions of the window
    sessions_per_month: float
    cart_rate: float  # sessions that put something in the cart
    buy_rate: float  # carts that become orders
    open_rate: float
    click_rate: float  # opened emails that are clicked
    buys: bool  # at least one order
    churns: bool  # stops coming between a quarter and 60 % of the way from signup to now


PERSONAS: tuple[Persona, ...] = (
    Persona("browser", 0.42, (0.0, 0.98), 0.3, 0.10, 0.12, 0.12, 0.12, False, False),
    Persona("occasional", 0.25, (0.0, 0.85), 0.8, 0.25, 0.45, 0.30, 0.20, True, False),
    Persona("loyal", 0.08, (0.0, 0.30), 2.4, 0.40, 0.60, 0.55, 0.30, True, False),
    Persona("churned", 0.10, (0.0, 0.35), 1.2, 0.30, 0.50, 0.35, 0.20, True, True),
    Persona("new", 0.08, (0.84, 0.995), 2.5, 0.35, 0.55, 0.50, 0.30, True, False),
    Persona("newsletter", 0.07, (0.0, 0.98), 0.0, 0.0, 0.0, 0.20, 0.08, False, False),
)
_PERSONA_WEIGHTS = tuple(p.share for p in PERSONAS)

# (device, os, browser) of the browsers people shop with; mobile first.
_DEVICES = (
    ("mobile", "iOS 18.1", "Mobile Safari 18"),
    ("mobile", "Android 14", "Chrome Mobile 131"),
    ("desktop", "Windows 10", "Chrome 131"),
    ("desktop", "Mac OS X 10.15.7", "Safari 18"),
    ("desktop", "Windows 10", "Edge 131"),
    ("tablet", "iOS 17.6", "Mobile Safari 17"),
    ("desktop", "Ubuntu", "Firefox 133"),
)
_DEVICE_WEIGHTS = (30, 25, 20, 12, 6, 4, 3)
# Where visits come from: (referrer, UTM source, medium, campaign) and how often.
_CHANNELS = (
    ("", None, None, None),
    ("https://www.google.com/", None, None, None),
    ("https://www.google.com/", "google", "cpc", "brand-search"),
    ("https://www.instagram.com/", "instagram", "paid_social", "season-looks"),
    ("https://www.facebook.com/", "facebook", "paid_social", "retargeting"),
    ("https://www.bing.com/", None, None, None),
    ("https://duckduckgo.com/", None, None, None),
)
_CHANNEL_WEIGHTS = (30, 33, 10, 9, 5, 8, 5)
# Local hour of the day → how likely a visit starts then.
_HOURS = (0.2, 0.1, 0.05, 0.05, 0.05, 0.1, 0.3, 0.6, 0.8, 0.9, 1.0, 1.1, 1.4, 1.2, 1.0, 1.0,
          1.1, 1.3, 1.6, 1.9, 2.1, 1.9, 1.3, 0.6)  # fmt: skip
_WELCOME = ("welcome", f"Welcome to {SHOP_NAME}: 10% off your first order")
_REMINDER = ("abandoned-cart", "Still thinking it over? Your cart is waiting")
_NO_CONTEXT: dict[str, Any] = {}


@dataclass(frozen=True)
class Window:
    """The period the demo covers and what is the same for every contact in it."""

    start: datetime
    end: datetime
    span: float  # seconds
    first_midnight: float  # seconds from `start` to the first midnight (UTC), ≤ 0
    day_months: tuple[int, ...]  # the month of each day, from the first midnight
    campaigns: tuple[Campaign, ...]

    @classmethod
    def ending(cls, end: datetime, days: int) -> Window:
        start = end - timedelta(days=days)
        midnight = datetime.combine(start.date(), datetime.min.time(), tzinfo=start.tzinfo)
        months = tuple((midnight + timedelta(days=d)).month for d in range(days + 2))
        return cls(
            start=start,
            end=end,
            span=(end - start).total_seconds(),
            first_midnight=(midnight - start).total_seconds(),
            day_months=months,
            campaigns=campaigns(start, end),
        )

    def month_at(self, t: float) -> int:
        day = int((t - self.first_midnight) // DAY)
        return self.day_months[min(max(day, 0), len(self.day_months) - 1)]


@dataclass
class Timeline:
    """What one contact did (`events`: time, type, name, properties, context) and what
    the contact's fields are derived from."""

    persona: Persona
    created: float
    events: list[tuple[float, int, str, str, dict[str, Any], dict[str, Any]]] = field(
        default_factory=list
    )
    # Email: subscribed, unsubscribed or bounced (and when), or None (never asked).
    email_status: str | None = None
    email_changed: float = 0.0
    orders: int = 0
    revenue: float = 0.0
    sessions: int = 0
    carts: int = 0
    clicks: int = 0
    coupon_orders: int = 0
    # Tag → when the contact earned it.
    tags: dict[str, float] = field(default_factory=dict)
    last_active: float | None = None
    last_device: dict[str, str] | None = None

    def add(
        self, t: float, kind: str, name: str, properties: dict[str, Any], context: dict[str, Any]
    ) -> None:
        self.events.append((t, len(self.events), kind, name, properties, context))


@dataclass
class _Cart:
    at: float
    items: list[dict[str, Any]]
    cart_id: str


class ContactStory:
    """Builds one contact's timeline; one instance per contact."""

    def __init__(
        self, rng: random.Random, person: Person, window: Window, *, wholesale: bool
    ) -> None:
        self.rng = rng
        self.person = person
        self.window = window
        self.wholesale = wholesale
        self.persona = rng.choices(PERSONAS, weights=_PERSONA_WEIGHTS)[0]
        low, high = self.persona.created
        created = window.span * rng.uniform(low, high)
        self.timeline = Timeline(self.persona, created)
        self.active_until = window.span
        if self.persona.churns:
            self.active_until = created + (window.span - created) * rng.uniform(0.25, 0.6)
        chosen = rng.sample(range(len(_DEVICES)), k=2)
        country = person.country.code
        self.devices = [
            {"postillon": dict(zip(("device", "os", "browser"), _DEVICES[i], strict=True))
             | {"country": country}}
            for i in (rng.choices(chosen, weights=[_DEVICE_WEIGHTS[i] for i in chosen], k=2))
        ]  # fmt: skip
        self.email_until = window.span
        self.carts_left: list[_Cart] = []
        self.order_number = 0
        self.cart_number = 0

    # --- the whole story ------------------------------------------------------------------

    def tell(self) -> Timeline:
        timeline = self.timeline
        timeline.tags["newsletter"] = timeline.created
        self._consent()
        clicks = self._emails()
        starts: list[tuple[float, str, str | None]] = [(timeline.created, "signup", None)]
        months = max(0.0, self.active_until - timeline.created) / (30 * DAY)
        for _ in range(_poisson(self.rng, self.persona.sessions_per_month * months)):
            starts.append((self._visit_time(), "visit", None))
        starts.extend(clicks)
        if self.persona.buys:
            starts.append((self._visit_time(), "purchase", None))
        starts.sort(key=lambda start: start[0])
        for at, reason, landing in starts:
            self._session(at, reason, landing)
        for cart in self.carts_left:
            self._remind(cart)
        if timeline.email_status != "subscribed":
            del timeline.tags["newsletter"]
        timeline.events.sort()
        while timeline.events and timeline.events[-1][0] >= self.window.span:
            timeline.events.pop()
        return timeline

    # --- email ----------------------------------------------------------------------------

    def _consent(self) -> None:
        timeline = self.timeline
        draw = self.rng.random()
        if self.persona.name == "newsletter":
            draw *= 0.8  # they came for the newsletter
        if draw < 0.08 and self.persona.name != "newsletter":
            return
        timeline.email_status = "subscribed"
        timeline.email_changed = timeline.created
        if draw > 0.97:
            timeline.email_status = "bounced"
        elif draw > 0.82:
            timeline.email_status = "unsubscribed"

    def _emails(self) -> list[tuple[float, str, str | None]]:
        """Newsletters, opens and clicks; returns the visits the clicks start."""
        timeline = self.timeline
        if timeline.email_status is None:
            return []
        key, subject = _WELCOME
        welcome_at = timeline.created + 120.0
        link = f"{SHOP_URL}/c/{self.person.favourite_category}"
        if timeline.email_status == "bounced":
            timeline.add(welcome_at, "track", "email_bounced",
                         {"campaign": key, "subject": subject, "bounce_type": "hard"},
                         _NO_CONTEXT)  # fmt: skip
            timeline.email_changed = self.email_until = welcome_at
            return []
        received = [c for c in self.window.campaigns if c.at > welcome_at]
        leave_at = len(received) + 1
        if timeline.email_status == "unsubscribed":
            leave_at = self.rng.randrange(len(received) + 1)
        clicks: list[tuple[float, str, str | None]] = []
        mails = [(welcome_at, key, subject, link, f"/c/{self.person.favourite_category}")]
        mails += [(c.at + self.rng.uniform(0, 900), c.key, c.subject, c.link, c.path)
                  for c in received]  # fmt: skip
        for index, (at, key, subject, link, path) in enumerate(mails):
            properties = {"campaign": key, "subject": subject}
            timeline.add(at, "track", "email_delivered", properties, _NO_CONTEXT)
            active = at < self.active_until
            open_rate = self.persona.open_rate if active else 0.02
            if index == leave_at or self.rng.random() < open_rate:
                opened = at + min(3 * DAY, self.rng.expovariate(1 / (2 * HOUR)))
                timeline.add(opened, "track", "email_opened", properties, _NO_CONTEXT)
                self._seen(opened, None)
                if index == leave_at:
                    timeline.email_changed = self.email_until = opened + 40.0
                    break
                if active and self.rng.random() < self.persona.click_rate:
                    clicked = opened + self.rng.uniform(3, 90)
                    timeline.add(clicked, "track", "email_clicked",
                                 {**properties, "link": link}, _NO_CONTEXT)  # fmt: skip
                    timeline.clicks += 1
                    clicks.append((clicked + 2.0, f"email:{key}", path))
        return clicks

    def _remind(self, cart: _Cart) -> None:
        """The abandoned-cart email, a day later, to subscribers; it wins some carts back."""
        at = cart.at + DAY + self.rng.uniform(0, HOUR)
        if self.timeline.email_status is None or at >= self.email_until:
            return
        key, subject = _REMINDER
        properties = {"campaign": key, "subject": subject}
        self.timeline.add(at, "track", "email_delivered", properties, _NO_CONTEXT)
        if self.rng.random() >= self.persona.open_rate + 0.15:
            return
        opened = at + self.rng.expovariate(1 / HOUR)
        self.timeline.add(opened, "track", "email_opened", properties, _NO_CONTEXT)
        self._seen(opened, None)
        if self.rng.random() >= 0.35:
            return
        clicked = opened + self.rng.uniform(3, 60)
        link = f"{SHOP_URL}/cart?utm_source=newsletter&utm_medium=email&utm_campaign={key}"
        self.timeline.add(clicked, "track", "email_clicked", {**properties, "link": link},
                          _NO_CONTEXT)  # fmt: skip
        self.timeline.clicks += 1
        t = self._page(clicked + 2.0, self.devices[0], "/cart", "Your cart", "", key)
        if self.rng.random() < 0.45:
            self._checkout(t, self.devices[0], cart, recovered=True)

    # --- visits ---------------------------------------------------------------------------

    def _visit_time(self) -> float:
        """A moment between signup and the end of activity: busier months and evenings."""
        low = self.timeline.created + HOUR
        high = min(self.active_until, self.window.span - 600)
        if high <= low:
            return low
        offset = -self.person.country.utc_offset * HOUR
        for _ in range(8):
            t = self.rng.uniform(low, high)
            if self.rng.random() * 1.4 > SEASON[self.window.month_at(t)][0]:
                continue
            day = math.floor((t - self.window.first_midnight - offset) / DAY)
            hour = self.rng.choices(range(24), weights=_HOURS)[0]
            moved = (
                self.window.first_midnight + offset + day * DAY + (hour + self.rng.random()) * HOUR
            )
            if low <= moved <= high:
                return moved
        return self.rng.uniform(low, high)

    def _session(self, at: float, reason: str, landing: str | None) -> None:
        rng = self.rng
        timeline = self.timeline
        device = self.devices[0] if rng.random() < 0.7 else self.devices[1]
        timeline.sessions += 1
        referrer, source, medium, campaign = rng.choices(_CHANNELS, weights=_CHANNEL_WEIGHTS)[0]
        if reason.startswith("email:"):
            referrer, source, medium, campaign = "", "newsletter", "email", reason[6:]
        utm = (source, medium, campaign) if source else None
        if reason == "signup":
            path, title = "/newsletter", "Newsletter"
            if self.persona.name != "newsletter" and rng.random() < 0.5:
                path, title = "/account/register", "Create your account"
        elif landing is not None:
            path, title = landing, _title_of(landing)
        else:
            path, title = rng.choice((("/", "Sports & fashion"), ("/sale", "Sale"),
                                      *((f"/c/{c.key}", c.title) for c in CATEGORIES)))  # fmt: skip
        t = self._page(at, device, path, title, referrer, campaign if utm else None, utm)
        if reason == "signup":
            method = "newsletter form" if path == "/newsletter" else "account"
            timeline.add(t, "track", "Signed Up", {"method": method}, device)
            t += rng.uniform(5, 40)
            if self.persona.name == "newsletter":
                return
        viewed: list[Product] = []
        wanted = 1 + min(7, int(rng.expovariate(1 / (1.5 if self.persona.buys else 0.8))))
        for _ in range(wanted):
            product = self._pick_product(t)
            t = self._page(t, device, f"/p/{product.slug}", product.name, SHOP_URL + path)
            timeline.add(t + 0.4, "track", "Product Viewed", product.properties, device)
            path = f"/p/{product.slug}"
            viewed.append(product)
        buying = reason == "purchase" and timeline.orders == 0
        if not buying and rng.random() >= self.persona.cart_rate:
            self._seen(t, device)
            return
        cart = self._fill_cart(t, device, viewed)
        t = cart.at
        if buying or rng.random() < self.persona.buy_rate:
            self._checkout(t, device, cart, recovered=False)
            return
        timeline.carts += 1
        if rng.random() < 0.4:
            t = self._page(
                t + rng.uniform(10, 60), device, "/checkout", "Checkout", SHOP_URL + "/cart"
            )
            timeline.add(
                t + 0.4, "track", "Checkout Started", self._checkout_properties(cart), device
            )
        self._seen(t, device)
        self.carts_left.append(cart)

    def _page(
        self,
        at: float,
        device: dict[str, Any],
        path: str,
        title: str,
        referrer: str,
        campaign: str | None = None,
        utm: tuple[str | None, str | None, str | None] | None = None,
    ) -> float:
        """A page view at `at` (or a little later); returns when the visitor moves on."""
        properties: dict[str, Any] = {
            "url": SHOP_URL + path, "path": path, "title": f"{title} | {SHOP_NAME}",
            "referrer": referrer,
        }  # fmt: skip
        context = device
        if utm is not None and campaign is not None:
            source, medium, _ = utm
            search = f"?utm_source={source}&utm_medium={medium}&utm_campaign={campaign}"
            properties["url"] += search
            properties["search"] = search
            context = {**device, "campaign": {"source": source, "medium": medium, "name": campaign}}
        self.timeline.add(at, "page", "page_viewed", properties, context)
        return at + self.rng.uniform(15, 150)

    def _pick_product(self, t: float) -> Product:
        rng = self.rng
        draw = rng.random()
        if draw < 0.5:
            key = self.person.favourite_category
        elif draw < 0.75:
            key = rng.choice(SEASON[self.window.month_at(t)][1])
        else:
            key = rng.choice(CATEGORIES).key
        category = CATEGORY_BY_KEY[key]
        return rng.choices(category.products, cum_weights=category.cumulative)[0]

    # --- carts and orders -----------------------------------------------------------------

    def _fill_cart(self, t: float, device: dict[str, Any], viewed: list[Product]) -> _Cart:
        rng = self.rng
        self.cart_number += 1
        cart_id = f"cart-{self.person.number}-{self.cart_number}"
        picked = rng.sample(viewed, k=min(len(viewed), 1 + int(rng.random() < 0.35)))
        items = []
        for product in dict.fromkeys(picked):
            quantity = rng.randint(3, 10) if self.wholesale else 1 + int(rng.random() < 0.12)
            self.timeline.add(t + 1.0, "track", "Product Added",
                              {**product.properties, "cart_id": cart_id, "quantity": quantity},
                              device)  # fmt: skip
            items.append({**product.properties, "quantity": quantity})
            t += rng.uniform(5, 40)
        t = self._page(t, device, "/cart", "Your cart", SHOP_URL + "/p/" + picked[-1].slug)
        self.timeline.add(
            t + 0.4, "track", "Cart Viewed", {"cart_id": cart_id, "products": items}, device
        )
        return _Cart(t, items, cart_id)

    def _checkout_properties(self, cart: _Cart) -> dict[str, Any]:
        value = round(sum(item["price"] * item["quantity"] for item in cart.items), 2)
        return {
            "cart_id": cart.cart_id,
            "value": value,
            "currency": CURRENCY,
            "products": cart.items,
        }

    def _checkout(self, t: float, device: dict[str, Any], cart: _Cart, *, recovered: bool) -> None:
        rng = self.rng
        timeline = self.timeline
        t = self._page(t + rng.uniform(10, 60), device, "/checkout", "Checkout", SHOP_URL + "/cart")
        timeline.add(t + 0.4, "track", "Checkout Started", self._checkout_properties(cart), device)
        t += rng.uniform(60, 400)
        self.order_number += 1
        order_id = f"SS-{self.person.number:05d}-{self.order_number:02d}"
        subtotal = sum(item["price"] * item["quantity"] for item in cart.items)
        coupon = self._coupon(t, recovered)
        rate = {"BLACKFRIDAY25": 0.25, "SUMMER20": 0.2, "SPRING15": 0.15, "FRIENDS15": 0.15,
                "VIP20": 0.2}.get(coupon or "", 0.1)  # fmt: skip
        discount = round(subtotal * rate, 2) if coupon else 0.0
        revenue = round(subtotal - discount, 2)
        shipping = 0.0 if revenue >= 50 or self.wholesale else 4.95
        properties: dict[str, Any] = {
            "order_id": order_id, "cart_id": cart.cart_id, "total": round(revenue + shipping, 2),
            "revenue": revenue, "shipping": shipping, "tax": round(revenue - revenue / 1.19, 2),
            "discount": discount, "currency": CURRENCY, "products": cart.items,
        }  # fmt: skip
        if coupon:
            properties["coupon"] = coupon
            timeline.coupon_orders += 1
            if timeline.coupon_orders >= 2:
                timeline.tags.setdefault("bargain-hunter", t)
        timeline.add(t, "track", "Order Completed", properties, device)
        self._page(t + 1.0, device, "/checkout/thank-you", "Thank you", SHOP_URL + "/checkout")
        timeline.orders += 1
        timeline.revenue = round(timeline.revenue + revenue, 2)
        for item in cart.items:
            tag = {"running": "runner", "outdoor": "outdoor", "kids": "family"}.get(
                item["category"]
            )
            if tag:
                timeline.tags.setdefault(tag, t)
        if timeline.orders >= 5 or timeline.revenue >= 750:
            timeline.tags.setdefault("vip", t)
        self._seen(t, device)
        # The order confirmation is transactional: it is sent whatever the consent.
        confirmation = {"campaign": "order-confirmation", "subject": f"Your order {order_id}"}
        timeline.add(t + 60.0, "track", "email_delivered", confirmation, _NO_CONTEXT)
        if rng.random() < 0.7:
            opened = t + 60.0 + rng.expovariate(1 / HOUR)
            timeline.add(opened, "track", "email_opened", confirmation, _NO_CONTEXT)

    def _coupon(self, t: float, recovered: bool) -> str | None:
        rng = self.rng
        month = self.window.month_at(t)
        if "vip" in self.timeline.tags and rng.random() < 0.3:
            return "VIP20"
        if self.timeline.orders == 0 and self.timeline.email_status and rng.random() < 0.4:
            return "WELCOME10"
        if month == 11 and rng.random() < 0.6:
            return "BLACKFRIDAY25"
        if recovered and rng.random() < 0.3:
            return "RUNNING10"
        if rng.random() < 0.12:
            return rng.choice(COUPONS[1:])
        return None

    def _seen(self, t: float, device: dict[str, Any] | None) -> None:
        """Remember the latest activity of the person (opening an email counts)."""
        timeline = self.timeline
        if t >= self.window.span:
            return
        if timeline.last_active is None or t > timeline.last_active:
            timeline.last_active = t
            if device is not None:
                timeline.last_device = device["postillon"]


def _title_of(path: str) -> str:
    if path.startswith("/c/"):
        return CATEGORY_BY_KEY[path[3:]].title
    return {"/sale": "Sale", "/cart": "Your cart"}.get(path, "Sports & fashion")


def _poisson(rng: random.Random, mean: float) -> int:
    if mean <= 0:
        return 0
    if mean > 30:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, count, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count
