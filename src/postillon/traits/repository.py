"""Every query about computed traits: the refresh is one INSERT … SELECT … ON CONFLICT DO
UPDATE for any number of contacts, which writes only the rows that changed."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Float,
    Integer,
    Select,
    String,
    and_,
    case,
    cast,
    extract,
    func,
    literal,
    not_,
    or_,
    select,
    text,
    true,
    union_all,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from postillon.events.service import DONE_TO_CONTACT
from postillon.filters.json_path import JsonPath
from postillon.kit.repository import one_of, table_of
from postillon.kit.types import UTCDateTime
from postillon.models import Contact, ContactTrait, Event
from postillon.traits.purchases import revenue_sql
from postillon.traits.rfm import rfm_cell_sql

# Any number, the same in every process: the key of the traits refresh lock.
_REFRESH_LOCK = 0x74726169  # "trai"

# Engagement: email engagement or web activity within these windows.
EMAIL_ENGAGEMENT_EVENTS = ("email_opened", "email_clicked")
WEB_ACTIVITY_TYPES = ("page", "screen", "track")
ACTIVE_WITHIN = timedelta(days=30)
MODERATE_WITHIN = timedelta(days=90)

# Purchase frequency counts purchases per this many days, over at least this many.
FREQUENCY_PERIOD_DAYS = 30

# Float traits are compared with this relative tolerance: a sum added up in another
# order is not a change.
_TOLERANCE = 1e-9

traits_table = table_of(ContactTrait)
_TRAIT_COLUMNS = tuple(c.name for c in traits_table.columns)
_FLOAT_COLUMNS = ("clv", "average_order_value", "purchase_frequency")


def serialize_refreshes(session: Session, *, wait: bool = True) -> bool:
    """One traits refresh at a time (PostgreSQL: a transaction-scoped advisory lock;
    SQLite's write lock does it already). Without `wait`, False if another one runs."""
    if session.get_bind().dialect.name != "postgresql":
        return True
    if wait:
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _REFRESH_LOCK})
        return True
    got = session.scalar(text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": _REFRESH_LOCK})
    return bool(got)


def traits_of(session: Session, contact_id: uuid.UUID) -> ContactTrait | None:
    return session.get(ContactTrait, contact_id)


def refresh(
    session: Session,
    *,
    now: datetime,
    purchase_event: str,
    contact_ids: Sequence[uuid.UUID] | None,
) -> list[uuid.UUID]:
    """Compute the traits of every contact (`contact_ids` None) or of those given, write
    the rows that differ from the stored ones, and return whose they are.

    For some contacts only, RFM scores rank their fresh values among the stored values of
    every other purchaser: they get the scores a full refresh would give them, while the
    others keep theirs until the next full refresh.
    """
    dialect = session.get_bind().dialect.name

    def targeted(column: Any) -> ColumnElement[bool]:
        return true() if contact_ids is None else one_of(session, column, contact_ids)

    now_value = literal(now, UTCDateTime())
    purchases = (
        select(
            Event.contact_id.label("contact_id"),
            func.count().label("purchase_count"),
            func.sum(revenue_sql(Event.properties, dialect)).label("clv"),
            func.min(Event.occurred_at).label("first_at"),
            func.max(Event.occurred_at).label("last_at"),
        )
        .where(
            Event.name == purchase_event, Event.contact_id.is_not(None), targeted(Event.contact_id)
        )
        .group_by(Event.contact_id)
        .cte("purchases")
    )
    parts: list[Select[Any]] = [
        select(
            purchases.c.contact_id,
            purchases.c.purchase_count,
            purchases.c.clv,
            purchases.c.last_at,
        )
    ]
    if contact_ids is not None:
        stored = traits_table
        parts.append(
            select(
                stored.c.contact_id,
                stored.c.purchase_count,
                stored.c.clv,
                stored.c.last_purchase_at,
            ).where(
                stored.c.purchase_count > 0,
                not_(one_of(session, stored.c.contact_id, contact_ids)),
            )
        )
    population = union_all(*parts).cte("population")
    ranked = select(
        population.c.contact_id,
        _quintile(population.c.last_at).label("r"),
        _quintile(population.c.purchase_count).label("f"),
        _quintile(population.c.clv).label("m"),
    ).cte("ranked")
    machine = JsonPath(dialect, Event.properties, ["machine"])
    activity = (
        select(
            Event.contact_id.label("contact_id"),
            func.max(Event.occurred_at).label("last_active_at"),
        )
        .where(
            Event.contact_id.is_not(None),
            Event.occurred_at >= now - MODERATE_WITHIN,
            or_(Event.name.in_(EMAIL_ENGAGEMENT_EVENTS), Event.type.in_(WEB_ACTIVITY_TYPES)),
            Event.name.not_in(DONE_TO_CONTACT),
            # Opens and clicks by machines (privacy proxies, link scanners) are no sign of life.
            or_(
                Event.name.not_in(EMAIL_ENGAGEMENT_EVENTS),
                not_(func.coalesce(machine.boolean(), False)),
            ),
            targeted(Event.contact_id),
        )
        .group_by(Event.contact_id)
        .cte("activity")
    )
    contacts = table_of(Contact)
    days = _whole_days(purchases.c.first_at, now_value, dialect)
    span = case((days < FREQUENCY_PERIOD_DAYS, FREQUENCY_PERIOD_DAYS), else_=days)
    active_since = literal(now - ACTIVE_WITHIN, UTCDateTime())
    fresh = (
        select(
            contacts.c.id.label("contact_id"),
            ranked.c.r.label("rfm_recency"),
            ranked.c.f.label("rfm_frequency"),
            ranked.c.m.label("rfm_monetary"),
            rfm_cell_sql(ranked.c.r, ranked.c.f, ranked.c.m).label("rfm_cell"),
            case(
                (activity.c.last_active_at >= active_since, literal("active", String)),
                (activity.c.last_active_at.is_not(None), literal("moderate", String)),
                else_=literal("passive", String),
            ).label("engagement"),
            func.coalesce(purchases.c.purchase_count, 0).label("purchase_count"),
            func.coalesce(purchases.c.clv, literal(0.0, Float)).label("clv"),
            (purchases.c.clv / cast(purchases.c.purchase_count, Float)).label(
                "average_order_value"
            ),
            (
                cast(purchases.c.purchase_count, Float) * FREQUENCY_PERIOD_DAYS / cast(span, Float)
            ).label("purchase_frequency"),
            purchases.c.first_at.label("first_purchase_at"),
            purchases.c.last_at.label("last_purchase_at"),
            now_value.label("computed_at"),
        )
        .select_from(
            contacts.outerjoin(purchases, purchases.c.contact_id == contacts.c.id)
            .outerjoin(ranked, ranked.c.contact_id == contacts.c.id)
            .outerjoin(activity, activity.c.contact_id == contacts.c.id)
        )
        .where(targeted(contacts.c.id))
        .cte("fresh")
    )
    stored = traits_table
    differs = [
        _float_differs(stored.c[name], fresh.c[name])
        if name in _FLOAT_COLUMNS
        else stored.c[name].is_distinct_from(fresh.c[name])
        for name in _TRAIT_COLUMNS
        if name not in ("contact_id", "computed_at")
    ]
    changed = (
        select(*(fresh.c[name] for name in _TRAIT_COLUMNS))
        .select_from(fresh.outerjoin(stored, stored.c.contact_id == fresh.c.contact_id))
        .where(or_(stored.c.contact_id.is_(None), *differs))
    )
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(traits_table).from_select(list(_TRAIT_COLUMNS), changed)
    statement = statement.on_conflict_do_update(
        index_elements=[traits_table.c.contact_id],
        set_={name: statement.excluded[name] for name in _TRAIT_COLUMNS if name != "contact_id"},
    )
    return list(session.scalars(statement.returning(traits_table.c.contact_id)))


def _quintile(value: ColumnElement[Any]) -> ColumnElement[int]:
    """1 + 5 * (rank - 1) // n, ascending: see `rfm`."""
    rank = func.rank().over(order_by=value)
    count = func.count().over()
    return 1 + (5 * (rank - 1)) // count


def _whole_days(
    start: ColumnElement[Any], end: ColumnElement[Any], dialect: str
) -> ColumnElement[int]:
    if dialect == "postgresql":
        seconds = extract("epoch", end - start)
        return cast(func.floor(seconds / 86400), Integer)
    return cast(func.julianday(end) - func.julianday(start), Integer)


def _float_differs(stored: ColumnElement[Any], fresh: ColumnElement[Any]) -> ColumnElement[bool]:
    return or_(
        and_(stored.is_(None), fresh.is_not(None)),
        and_(stored.is_not(None), fresh.is_(None)),
        func.abs(stored - fresh) > _TOLERANCE * (1 + func.abs(fresh)),
    )
