"""What a purchase is and what it is worth, in one place for everything that needs it
(computed traits, segment filters).

A purchase is an event named by the setting `purchase_event` (`Order Completed` by
default, Segment's e-commerce spec). Its revenue is `properties.revenue` if that is a
number, else `properties.total` if that is a number, else 0. Booleans are not numbers
(JSON `true` is not 1), and neither are numeric strings ("49.90").
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from sqlalchemy import ColumnElement, Float, case, cast, func, literal
from sqlalchemy.orm import QueryableAttribute

# In order of preference: the first of them that holds a number is the revenue.
PURCHASE_REVENUE_PROPERTIES = ("revenue", "total")


def order_revenue(properties: Mapping[str, Any]) -> float:
    """The revenue of one purchase, from its event properties."""
    for name in PURCHASE_REVENUE_PROPERTIES:
        value = properties.get(name)
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if math.isfinite(value):
            return float(value)
    return 0.0


def revenue_sql(
    properties: ColumnElement[Any] | QueryableAttribute[Any], dialect_name: str
) -> ColumnElement[float]:
    """`order_revenue` as SQL over an `events.properties` column (JSONB on PostgreSQL,
    JSON text on SQLite), for use in any query."""
    branches: list[tuple[ColumnElement[bool], ColumnElement[float]]] = []
    for name in PURCHASE_REVENUE_PROPERTIES:
        if dialect_name == "postgresql":
            is_number = func.jsonb_typeof(properties.op("->")(literal(name))) == "number"
            value = cast(properties.op("->>")(literal(name)), Float)
        else:
            path = literal(f'$."{name}"')
            # JSON true/false are 'true'/'false' here, text is 'text': only these are numbers.
            is_number = func.json_type(properties, path).in_(("integer", "real"))
            value = cast(func.json_extract(properties, path), Float)
        branches.append((is_number, value))
    return case(*branches, else_=literal(0.0, Float))
