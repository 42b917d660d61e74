"""The demo shop's generator, without a database: deterministic, and plausible."""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from postillon.contacts.fields import Channel, normalise_email, normalise_phone
from postillon.contacts.schemas import ConsentIn
from postillon.demo.behaviour import Window
from postillon.demo.catalogue import CATEGORY_KEYS, PRODUCTS, campaigns
from postillon.demo.generator import DemoContact, DemoOptions, generate, generate_contact
from postillon.demo.people import COUNTRIES

END = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
EVENT_NAMES = {
    "page_viewed", "Signed Up", "Product Viewed", "Product Added", "Cart Viewed",
    "Checkout Started", "Order Completed", "email_delivered", "email_opened", "email_clicked",
    "email_bounced",
}  # fmt: skip
TAGS = {"newsletter", "vip", "wholesale", "sports-fan", "runner", "outdoor", "family",
        "bargain-hunter"}  # fmt: skip
LOCALES = {country.code: country.locale for country in COUNTRIES}
TIMEZONES = {country.code: {city.timezone for city in country.cities} for country in COUNTRIES}


def contacts_of(options: DemoOptions, end: datetime = END) -> list[DemoContact]:
    return [contact for chunk in generate(options, end) for contact in chunk.contacts]


@pytest.fixture(scope="module")
def shop() -> list[DemoContact]:
    return contacts_of(DemoOptions(contacts=600, seed=1))


def email_status(demo: DemoContact) -> str | None:
    consent = demo.contact.consent.get(Channel.email)
    return None if consent is None else ConsentIn.model_validate(consent).status.value


def comparable(contact: DemoContact) -> dict[str, Any]:
    return {
        "contact": contact.contact.model_dump(),
        "events": contact.events,
        "times": (contact.created_at, contact.consent_changed_at, contact.tags_added_at),
        "seen": (contact.last_seen_at, contact.last_seen),
    }


def test_the_same_seed_gives_the_same_shop() -> None:
    first = contacts_of(DemoOptions(contacts=40, seed=7))
    again = contacts_of(DemoOptions(contacts=40, seed=7))
    assert [comparable(c) for c in first] == [comparable(c) for c in again]
    other = contacts_of(DemoOptions(contacts=40, seed=8))
    assert [c.contact.email for c in other] != [c.contact.email for c in first]


def test_a_contact_is_the_same_whatever_else_is_generated() -> None:
    window = Window.ending(END, 365)
    alone = generate_contact(7, 30, window)
    among = contacts_of(DemoOptions(contacts=40, seed=7))[29]
    assert comparable(alone) == comparable(among)


def test_contacts_look_like_people_of_the_shops_countries(shop: list[DemoContact]) -> None:
    emails = [c.contact.email for c in shop]
    assert len(set(emails)) == len(shop)
    today = END.date()
    stages: Counter[str] = Counter()
    for demo in shop:
        contact = demo.contact
        assert contact.email is not None and normalise_email(contact.email) == contact.email
        assert contact.email.rsplit("@", 1)[1] in {"example.com", "example.org", "example.net"}
        assert contact.first_name and contact.last_name
        attributes = contact.attributes
        country = attributes["country"]
        assert contact.locale == LOCALES[country]
        assert contact.timezone in TIMEZONES[country]
        assert isinstance(attributes["city"], str)
        assert isinstance(attributes["loyalty_member"], bool)
        if "birthday" in attributes:
            born = date.fromisoformat(attributes["birthday"])
            assert 18 <= (today - born).days // 365.25 <= 75
        if "gender" in attributes:
            assert attributes["gender"] in {"female", "male", "diverse"}
        if "favourite_category" in attributes:
            assert attributes["favourite_category"] in CATEGORY_KEYS
        if "shoe_size" in attributes:
            assert 34 <= attributes["shoe_size"] <= 48
        if "newsletter_topics" in attributes:
            assert isinstance(attributes["newsletter_topics"], list)
            assert email_status(demo) == "subscribed"
        if contact.phone is not None:
            assert country == "US"
            assert re.fullmatch(r"\+1\d{3}55501\d{2}", contact.phone)
            assert normalise_phone(contact.phone) == contact.phone
        assert set(contact.tags) <= TAGS
        assert ("newsletter" in contact.tags) == (email_status(demo) == "subscribed")
        assert contact.lifecycle_stage in _DEFAULT_PIPELINE
        stages[contact.lifecycle_stage] += 1
    countries = Counter(c.contact.attributes["country"] for c in shop)
    assert countries["DE"] > countries["PL"] > countries["CH"] > 0
    consent = Counter(str(email_status(c)) for c in shop)
    assert consent["subscribed"] > consent["unsubscribed"] > consent["bounced"] > 0
    assert consent["None"] > 0
    assert {"subscriber", "lead", "mql", "customer", "churned"} <= set(stages)
    assert sum(c.contact.phone is not None for c in shop) > 10


def test_timelines_are_ordered_within_the_window_and_after_signup(
    shop: list[DemoContact],
) -> None:
    start = END - timedelta(days=365)
    message_ids: set[str] = set()
    for demo in shop:
        times = [row["occurred_at"] for row in demo.events]
        assert times, "every contact has at least their signup"
        assert times == sorted(times)
        assert start <= demo.created_at <= times[0]
        assert times[-1] < END
        assert all(row["received_at"] == row["occurred_at"] for row in demo.events)
        assert demo.events[0]["message_id"] == f"demo-1-{demo.number}-0"
        message_ids.update(row["message_id"] for row in demo.events)
        assert {row["name"] for row in demo.events} <= EVENT_NAMES
        assert all(row["source"] == "demo" for row in demo.events)
        assert all(start <= t < END for t in demo.tags_added_at.values())
        assert all(start <= t < END for t in demo.consent_changed_at.values())
        if demo.last_seen_at is not None:
            assert start <= demo.last_seen_at < END
    events = sum(len(demo.events) for demo in shop)
    assert len(message_ids) == events
    assert 50 <= events / len(shop) <= 150


def test_behaviour_is_uneven_with_buyers_loyal_customers_and_abandoned_carts(
    shop: list[DemoContact],
) -> None:
    buyers = [demo for demo in shop if demo.orders]
    assert 0.3 < len(buyers) / len(shop) < 0.7
    orders_per_buyer = sorted(demo.orders for demo in buyers)
    assert orders_per_buyer[len(buyers) // 2] <= 2  # most buy once or twice …
    assert orders_per_buyer[-1] >= 8  # … a few are loyal
    assert sum(demo.orders for demo in shop) == sum(
        row["name"] == "Order Completed" for demo in shop for row in demo.events
    )
    known = {product.product_id for product in PRODUCTS}
    abandoned = 0
    for demo in shop:
        added = {r["properties"]["cart_id"] for r in demo.events if r["name"] == "Product Added"}
        ordered = {
            r["properties"]["cart_id"] for r in demo.events if r["name"] == "Order Completed"
        }
        assert ordered <= added
        abandoned += len(added - ordered)
        for row in demo.events:
            properties = row["properties"]
            if row["name"] == "Order Completed":
                assert properties["currency"] == "EUR"
                assert properties["revenue"] > 0
                assert properties["total"] == round(
                    properties["revenue"] + properties["shipping"], 2
                )
                assert properties["products"]
                assert {p["product_id"] for p in properties["products"]} <= known
            elif row["name"] == "Product Viewed":
                assert set(properties) == {"product_id", "sku", "name", "category", "price"}
            elif row["name"] == "email_clicked":
                assert properties["link"].startswith("https://shop.example.com/")
                assert {"campaign", "subject"} <= set(properties)
            elif row["type"] == "page":
                assert {"url", "path", "title", "referrer"} <= set(properties)
        assert demo.revenue == pytest.approx(
            sum(r["properties"]["revenue"] for r in demo.events if r["name"] == "Order Completed")
        )
    assert abandoned > len(shop) / 20
    with_utm = [
        row
        for demo in shop
        for row in demo.events
        if row["type"] == "page" and "campaign" in row["context"]
    ]
    assert with_utm and all("utm_source=" in row["properties"]["url"] for row in with_utm)
    assert {row["context"]["campaign"]["source"] for row in with_utm} >= {"newsletter", "google"}


def test_who_unsubscribed_or_bounced_gets_no_newsletter_afterwards(
    shop: list[DemoContact],
) -> None:
    checked = 0
    for demo in shop:
        status = email_status(demo)
        newsletters = [
            row["occurred_at"]
            for row in demo.events
            if row["name"] == "email_delivered"
            and row["properties"]["campaign"] != "order-confirmation"
        ]
        if status is None:
            assert not newsletters
        elif status in ("unsubscribed", "bounced"):
            assert all(t <= demo.consent_changed_at["email"] for t in newsletters)
            checked += 1
        else:
            assert newsletters
    assert checked > 0


def test_newsletters_go_out_twice_a_week_or_so() -> None:
    sent = campaigns(END - timedelta(days=365), END)
    assert 70 <= len(sent) <= 82
    assert len({c.key for c in sent}) == len(sent)
    assert all(0 <= c.at < 365 * 86_400 for c in sent)


def test_options_are_checked() -> None:
    with pytest.raises(ValueError):
        DemoOptions(contacts=0)
    with pytest.raises(ValueError):
        DemoOptions(days=0)


# The pipeline the 0003 migration installs; the demo uses only its stages.
_DEFAULT_PIPELINE = ("subscriber", "lead", "mql", "sql", "opportunity", "customer", "churned")
