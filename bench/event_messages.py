"""The messages the event-ingest benchmark sends: a shop's users and visitors, and
batches of Segment messages encoded before the clock starts."""

from __future__ import annotations

import base64
import itertools
import random
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson

from bench.common import Person, people
from postillon.tracking.segment import MAX_BATCH_BYTES, MAX_BATCH_MESSAGES

BATCH_SIZE = MAX_BATCH_MESSAGES
KNOWN_USERS = 5_000
VISITORS = 20_000  # the first KNOWN_USERS are the users' own browsers

USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (iPad; CPU OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.6 Mobile/15E148 Safari/604.1",
)
# Public addresses that the country database places in DE, GB, US, SE, IE, US and GB.
PUBLIC_IPS = (
    "193.99.144.80", "81.2.69.160", "8.8.8.8", "89.160.20.112", "185.60.216.35",
    "151.101.1.69", "212.58.244.20",
)  # fmt: skip
LIBRARY = {"name": "analytics-python", "version": "2.3.3"}
TRACKED_EVENTS = (
    ("Product Viewed", 45), ("Product Searched", 10), ("Added to Cart", 20),
    ("Checkout Started", 10), ("Order Completed", 10), ("Coupon Applied", 5),
)  # fmt: skip
EVENT_NAMES = [name for name, _ in TRACKED_EVENTS]
EVENT_WEIGHTS = list(itertools.accumulate(weight for _, weight in TRACKED_EVENTS))
PAGES = (("Home", "/"), ("Category", "/c/"), ("Product", "/p/"), ("Cart", "/cart"))
QUERIES = ("sneakers", "rain jacket", "wool socks", "tote bag", "linen shirt")
PLANS = ("free", "plus", "pro")
# Dropped from the largest messages first if a batch would pass the size limit.
OPTIONAL_PROPERTIES = ("currency", "quantity", "path")


@dataclass(frozen=True)
class Audience:
    """The users (userId and traits) and the anonymous visitors the messages are about."""

    user_ids: list[str]
    persons: list[Person]
    visitor_ids: list[str]


def make_audience(rng: random.Random) -> Audience:
    return Audience(
        user_ids=[f"cus_{number:05d}" for number in range(KNOWN_USERS)],
        persons=list(people(KNOWN_USERS)),
        visitor_ids=[str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(VISITORS)],
    )


def iso_milliseconds(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def message_id(rng: random.Random) -> str:
    return base64.urlsafe_b64encode(rng.randbytes(12)).decode()


def track_properties(event: str, rng: random.Random) -> dict[str, Any]:
    price = round(rng.uniform(5, 150), 2)
    product = f"p{rng.randrange(2000)}"
    if event == "Product Viewed":
        return {"product_id": product, "price": price}
    if event == "Added to Cart":
        return {"product_id": product, "price": price, "quantity": rng.randint(1, 3)}
    if event == "Product Searched":
        return {"query": rng.choice(QUERIES)}
    if event == "Coupon Applied":
        return {"coupon": rng.choice(("WELCOME10", "SUMMER", "VIP20"))}
    revenue = round(price * rng.randint(1, 4), 2)
    if event == "Order Completed":
        return {"order_id": f"o{rng.randrange(10**7)}", "revenue": revenue, "currency": "EUR"}
    return {"revenue": revenue, "currency": "EUR"}


def make_message(
    rng: random.Random, audience: Audience, timestamp: str, kind: float
) -> dict[str, Any]:
    """One Segment call: 3% identify, 22% page (half anonymous), 75% track (a fifth anonymous)."""
    user = rng.randrange(KNOWN_USERS)
    if kind < 0.03:
        person = audience.persons[user]
        return {
            "type": "identify",
            "userId": audience.user_ids[user],
            "anonymousId": audience.visitor_ids[user],  # the user's own browser
            "messageId": message_id(rng),
            "timestamp": timestamp,
            "traits": {
                "email": person.email,
                "firstName": person.first_name,
                "lastName": person.last_name,
                "city": person.city,
                "plan": PLANS[user % len(PLANS)],
            },
        }
    page = kind < 0.25
    who: dict[str, Any]
    if rng.random() < (0.5 if page else 0.2):
        # An anonymous visitor; page views carry their browser's own address.
        visitor = rng.randrange(VISITORS)
        who = {"anonymousId": audience.visitor_ids[visitor]}
        if page:
            who["context"] = {"ip": PUBLIC_IPS[visitor % len(PUBLIC_IPS)]}
    else:
        who = {"userId": audience.user_ids[user]}
    if page:
        page_name, path = rng.choice(PAGES)
        if path.endswith("/") and path != "/":
            path += str(rng.randrange(2000))
        return {
            "type": "page",
            **who,
            "name": page_name,
            "messageId": message_id(rng),
            "timestamp": timestamp,
            "properties": {"path": path},
        }
    event = rng.choices(EVENT_NAMES, cum_weights=EVENT_WEIGHTS)[0]
    return {
        "type": "track",
        **who,
        "event": event,
        "messageId": message_id(rng),
        "timestamp": timestamp,
        "properties": track_properties(event, rng),
    }


def encode_batch(messages: list[dict[str, Any]], context: dict[str, Any]) -> tuple[bytes, int]:
    """The request body, and how many messages lost optional properties so that it fits
    the server's size limit (the largest messages lose theirs first)."""
    body = orjson.dumps({"batch": messages, "context": context})
    excess = len(body) - MAX_BATCH_BYTES
    if excess <= 0:
        return body, 0
    shrunk = 0
    for message in sorted(messages, key=lambda m: len(orjson.dumps(m)), reverse=True):
        if excess <= 0:
            break
        before = len(orjson.dumps(message))
        for name in OPTIONAL_PROPERTIES:
            message.get("properties", {}).pop(name, None)
        excess -= before - len(orjson.dumps(message))
        shrunk += 1
    body = orjson.dumps({"batch": messages, "context": context})
    if len(body) > MAX_BATCH_BYTES:
        raise SystemExit(f"bench: a batch of {len(messages)} messages does not fit in 500 KB")
    return body, shrunk


@dataclass
class PreparedPass:
    bodies: list[bytes]
    message_ids: list[str]
    mix: dict[str, int] = field(default_factory=dict)
    anonymous: int = 0
    shrunk: int = 0


def prepare_pass(audience: Audience, batches: int, *, seed: int, start: datetime) -> PreparedPass:
    """`batches` request bodies of new messages, timestamped one millisecond apart from
    `start`; each batch has one of the user agents, addresses and the library as context."""
    rng = random.Random(seed)
    prepared = PreparedPass(bodies=[], message_ids=[])
    moment = start
    for number in range(batches):
        messages = []
        for _ in range(BATCH_SIZE):
            moment += timedelta(milliseconds=1)
            message = make_message(rng, audience, iso_milliseconds(moment), rng.random())
            messages.append(message)
            prepared.message_ids.append(message["messageId"])
            prepared.mix[message["type"]] = prepared.mix.get(message["type"], 0) + 1
            prepared.anonymous += "userId" not in message
        context = {
            "library": LIBRARY,
            "userAgent": USER_AGENTS[number % len(USER_AGENTS)],
            "ip": PUBLIC_IPS[number % len(PUBLIC_IPS)],
        }
        body, shrunk = encode_batch(messages, context)
        prepared.bodies.append(body)
        prepared.shrunk += shrunk
    return prepared
