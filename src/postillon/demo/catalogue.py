"""The demo shop: its name, categories, products, pages and email campaigns. Pure data."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

SHOP_NAME = "Stride & Summit"
SHOP_URL = "https://shop.example.com"
CURRENCY = "EUR"


@dataclass(frozen=True, eq=False)  # compared and hashed by identity: one object a product
class Product:
    product_id: str
    sku: str
    name: str
    category: str
    price: float
    slug: str
    popularity: float
    # The properties every product event carries; shared, never mutated.
    properties: dict[str, Any]


@dataclass(frozen=True)
class Category:
    key: str
    title: str
    products: tuple[Product, ...]
    # Cumulative popularity of `products`, for `random.choices(..., cum_weights=…)`.
    cumulative: tuple[float, ...]


# Category key, title, SKU prefix, price range, and its products (name, colours).
_RANGE: tuple[tuple[str, str, str, tuple[float, float], tuple[str, ...]], ...] = (
    ("shoes", "Shoes", "SHO", (59.0, 179.0), (
        "Everyday Sneaker", "Court Classic", "Leather Loafer", "Canvas Low", "Chelsea Boot",
        "City Walker", "Retro Trainer", "Slip-On Knit",
    )),
    ("running", "Running", "RUN", (19.0, 199.0), (
        "Road Runner 5", "Tempo Racer", "Trail Runner GTX", "Marathon Pro", "Running Shorts",
        "Running Tights", "Windbreaker Jacket", "Seamless Running Tee", "Hydration Vest",
        "Cushion Running Socks",
    )),
    ("outdoor", "Outdoor", "OUT", (24.0, 289.0), (
        "Hiking Boot Mid", "Rain Jacket 2.5L", "Down Jacket", "Fleece Pullover",
        "Trekking Pants", "Daypack 22L", "Trekking Poles", "Softshell Jacket",
        "Merino Base Layer",
    )),
    ("fitness", "Fitness", "FIT", (9.0, 129.0), (
        "Yoga Mat", "Training Tee", "Sports Bra", "Gym Shorts", "Resistance Bands Set",
        "Kettlebell 12 kg", "Foam Roller", "Cross Training Shoe", "Speed Jump Rope",
    )),
    ("kids", "Kids", "KID", (14.0, 89.0), (
        "Kids Sneaker", "Kids Rain Jacket", "Kids Football Boot", "Kids Hoodie",
        "Kids Backpack", "Kids Swim Shorts", "Kids Running Shoe", "Kids Ski Gloves",
    )),
    ("accessories", "Accessories", "ACC", (7.0, 79.0), (
        "Sports Cap", "Merino Beanie", "Water Bottle 750 ml", "Gym Bag", "Sport Sunglasses",
        "Running Belt", "Headband", "Wool Socks 3-Pack",
    )),
)  # fmt: skip
_COLOURS = ("Black", "White", "Navy", "Sand", "Olive", "Grey", "Red", "Blue")


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _price(low: float, high: float, position: float) -> float:
    """A shop price (…,95 or …,99) `position` (0…1) of the way from `low` to `high`."""
    whole = int(low + (high - low) * position)
    return whole + (0.95 if whole % 2 else 0.99)


def _build_categories() -> tuple[Category, ...]:
    categories = []
    number = 1000
    for key, title, prefix, (low, high), names in _RANGE:
        products = []
        for rank, base in enumerate(names):
            # Two colours of the first half of the range, one of the rest; the same
            # (name-derived) price for both colours.
            colours = _COLOURS[rank % 4 : rank % 4 + (2 if rank < len(names) // 2 else 1)]
            position = ((rank * 7) % len(names)) / max(1, len(names) - 1)
            for colour in colours:
                number += 1
                name = f"{base} {colour}"
                product_id = f"P{number}"
                sku = f"{prefix}-{number}-{colour[:3].upper()}"
                price = _price(low, high, position)
                popularity = 1.0 / (rank + 1) ** 0.8 * (1.0 if colour == colours[0] else 0.5)
                products.append(
                    Product(
                        product_id=product_id,
                        sku=sku,
                        name=name,
                        category=key,
                        price=price,
                        slug=_slug(name),
                        popularity=popularity,
                        properties={
                            "product_id": product_id,
                            "sku": sku,
                            "name": name,
                            "category": key,
                            "price": price,
                        },
                    )
                )
        cumulative: list[float] = []
        total = 0.0
        for product in products:
            total += product.popularity
            cumulative.append(total)
        categories.append(Category(key, title, tuple(products), tuple(cumulative)))
    return tuple(categories)


CATEGORIES = _build_categories()
CATEGORY_KEYS = tuple(category.key for category in CATEGORIES)
CATEGORY_BY_KEY = {category.key: category for category in CATEGORIES}
PRODUCTS = tuple(product for category in CATEGORIES for product in category.products)

NEWSLETTER_TOPICS = ("new-arrivals", "sale", "running", "outdoor", "fitness", "kids", "events")

# Month (1-12) → how busy the shop is, and which categories are in season.
SEASON: dict[int, tuple[float, tuple[str, ...]]] = {
    1: (1.1, ("outdoor", "fitness")), 2: (0.8, ("fitness", "running")),
    3: (0.9, ("running", "shoes")), 4: (1.0, ("running", "outdoor")),
    5: (1.0, ("outdoor", "running")), 6: (1.0, ("shoes", "accessories")),
    7: (0.9, ("accessories", "shoes")), 8: (0.9, ("kids", "shoes")),
    9: (1.0, ("kids", "running")), 10: (1.0, ("outdoor", "shoes")),
    11: (1.3, ("outdoor", "accessories")), 12: (1.4, ("accessories", "outdoor")),
}  # fmt: skip

# Month → the themes of that month's newsletters: subject and the category (or None: the
# sale page) their main link points to.
_THEMES: dict[int, tuple[tuple[str, str | None], ...]] = {
    1: (("Winter sale: up to 40% off", None), ("New year, new goals: running plans", "running"),
        ("Last chance: winter sale", None)),
    2: (("Fresh running shoes for spring", "running"),
        ("Gym essentials under 30 euros", "fitness")),
    3: (("The spring running collection", "running"), ("Trail season starts", "outdoor")),
    4: (("Easter offers for the whole family", "kids"), ("New hiking boots are in", "outdoor")),
    5: (("Weekend ideas for the outdoors", "outdoor"), ("Your marathon training guide", "running")),
    6: (("Summer sale starts now", None), ("Sneakers for the summer", "shoes")),
    7: (("Summer sale: final reductions", None), ("Travel and festival kit", "accessories")),
    8: (("Back to school: kids' shoes", "kids"), ("A first look at autumn", "shoes")),
    9: (("Back to school: backpacks and more", "kids"), ("Autumn running collection", "running")),
    10: (("Rain jackets, tested in the rain", "outdoor"), ("Boots for the colder days", "shoes")),
    11: (("Black Friday: 25% off everything", None), ("Warm layers for winter", "outdoor"),
         ("Cyber week deals", None)),
    12: (("The gift guide", "accessories"), ("Order by Friday for Christmas", None),
         ("Gift cards: the last-minute present", "accessories")),
}  # fmt: skip

# Newsletters go out every Tuesday and every other Friday, at this time (UTC).
_TUESDAY, _FRIDAY = 1, 4
_SEND_TIME = time(8, 30)


@dataclass(frozen=True)
class Campaign:
    """A newsletter sent to every subscribed contact."""

    at: float  # seconds since the start of the window
    key: str
    subject: str
    path: str

    @property
    def link(self) -> str:
        return (
            f"{SHOP_URL}{self.path}?utm_source=newsletter&utm_medium=email&utm_campaign={self.key}"
        )


def campaigns(start: datetime, end: datetime) -> tuple[Campaign, ...]:
    """The newsletters sent between `start` and `end`, oldest first."""
    sent: list[Campaign] = []
    day: date = start.date()
    while day <= end.date():
        moment = datetime.combine(day, _SEND_TIME, tzinfo=UTC)
        sends = day.weekday() == _TUESDAY or (
            day.weekday() == _FRIDAY and day.isocalendar().week % 2 == 0
        )
        if sends and start <= moment < end:
            themes = _THEMES[day.month]
            subject, category = themes[(day.day // 4 + day.weekday()) % len(themes)]
            sent.append(
                Campaign(
                    at=(moment - start).total_seconds(),
                    key=f"{day:%Y-%m-%d}-{_slug(subject)}",
                    subject=subject,
                    path=f"/c/{category}" if category else "/sale",
                )
            )
        day += timedelta(days=1)
    return tuple(sent)


COUPONS = ("WELCOME10", "SPRING15", "SUMMER20", "RUNNING10", "FRIENDS15")
