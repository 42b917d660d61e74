"""The demo shop's segments: the questions a marketer asks of it, in the filter language."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from postillon.segments.schemas import SegmentIn
from postillon.segments.service import SegmentService

DEMO_SEGMENTS: tuple[dict[str, Any], ...] = (
    {
        "key": "young-sports-fans",
        "name": "Sports fans aged 20 to 35",
        "filter": {
            "all": [
                {"tag": "sports-fan"},
                {"attribute": "birthday", "op": "age_between", "value": [20, 35]},
            ]
        },
    },
    {
        "key": "running-browsers",
        "name": "Viewed running 3+ times this month, bought nothing",
        "filter": {
            "all": [
                {
                    "performed": "Product Viewed",
                    "where": {"property": "category", "op": "=", "value": "running"},
                    "times": {"at_least": 3},
                    "within_last_days": 30,
                },
                {"never_performed": "Order Completed", "within_last_days": 30},
            ]
        },
    },
    {
        "key": "champions",
        "name": "Champions (RFM)",
        "filter": {"trait": "rfm_cell", "op": "=", "value": "champions"},
    },
    {
        "key": "at-risk",
        "name": "At risk or can't lose (RFM)",
        "filter": {"trait": "rfm_cell", "op": "in", "value": ["at_risk", "cannot_lose"]},
    },
    {
        "key": "birthdays-this-week",
        "name": "Birthday within a week, mailable",
        "filter": {
            "all": [
                {"attribute": "birthday", "op": "anniversary_within_days", "value": 7},
                {"consent": "email", "status": "subscribed"},
            ]
        },
    },
    {
        "key": "passive",
        "name": "Passive for 90 days",
        "filter": {"trait": "engagement", "op": "=", "value": "passive"},
    },
    {
        "key": "big-spenders",
        "name": "Spent 500 EUR or more in a year",
        "filter": {"purchases": "revenue", "op": ">=", "value": 500, "within_last_days": 365},
    },
    {
        "key": "abandoned-carts",
        "name": "Added to cart this week, no order since",
        "filter": {
            "all": [
                {"performed": "Product Added", "within_last_days": 7},
                {"never_performed": "Order Completed", "within_last_days": 7},
            ]
        },
    },
)


def create_demo_segments(session: Session, segments: SegmentService) -> int:
    """Create the demo segments that do not exist yet (with their members); how many."""
    existing = {s.key for s in segments.list_segments(session)}
    created = 0
    for definition in DEMO_SEGMENTS:
        if definition["key"] not in existing:
            segments.create(session, SegmentIn.model_validate(definition))
            created += 1
    return created
