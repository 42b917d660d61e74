"""Who among listed contacts matches each of several filters, in one SQL statement.

The journey engine (branch cases, goals, exit criteria, entry conditions) and rules ask
this for a batch of a thousand contacts at a time, many times a second. The statement is
the correlated form of the filters (`filters.sql.listed_conditions`): a UNION ALL of one
`SELECT position, contacts.id … WHERE condition AND contacts.id IN (listed)` per filter,
built once per (filters, catalog, dialect) and kept, since building it costs more than
running it. The catalog's time is left out of the key: the values that follow it are
parameters.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import Integer, Select, literal, select, union_all
from sqlalchemy.orm import Session

from postillon.filters import model as m
from postillon.filters.sql import (
    Catalog,
    ListedQuery,
    contacts,
    is_listed,
    listed_conditions,
)
from postillon.kit.ids import sorted_ids
from postillon.kit.repository import chunked

_KEPT = 256
_STATEMENTS: dict[str, ListedQuery] = {}
# SQLite repeats the list of contacts in each filter's part and allows 32,766 parameters.
_SQLITE_PARAMETERS = 30_000


def matching(
    session: Session,
    nodes: Sequence[m.Filter],
    contact_ids: Collection[uuid.UUID],
    catalog: Catalog,
) -> list[set[uuid.UUID]]:
    """For each filter, the contacts among `contact_ids` that match it now."""
    found: list[set[uuid.UUID]] = [set() for _ in nodes]
    if not nodes or not contact_ids:
        return found
    dialect = session.get_bind().dialect.name
    query = _statement(nodes, catalog, dialect)
    size = 1000
    if dialect == "sqlite":
        size = max(1, min(size, _SQLITE_PARAMETERS // len(nodes)))
    for chunk in chunked(sorted_ids(contact_ids), size):
        rows = session.execute(query.statement, query.parameters(catalog.now, chunk))
        for position, contact_id in rows:
            found[position].add(contact_id)
    return found


def statement_key(nodes: Sequence[m.Filter], catalog: Catalog, dialect: str) -> str:
    """What a statement compiled from these filters depends on, as text. The filters are
    written out by `repr`, which keeps types apart where equality does not: `true == 1`
    and `hash(True) == hash(1)` in Python, but `= true` and `= 1` are different tests."""
    return repr(
        (
            tuple(nodes),
            dialect,
            catalog.stages,
            sorted(catalog.score_models.items()),
            sorted(catalog.segments.items()),
            catalog.purchase_event,
        )
    )


def _statement(nodes: Sequence[m.Filter], catalog: Catalog, dialect: str) -> ListedQuery:
    key = statement_key(nodes, catalog, dialect)
    found = _STATEMENTS.get(key)
    if found is None:
        if len(_STATEMENTS) >= _KEPT:
            _STATEMENTS.clear()
        found = _STATEMENTS[key] = _build(nodes, catalog, dialect)
    return found


def _build(nodes: Sequence[m.Filter], catalog: Catalog, dialect: str) -> ListedQuery:
    conditions, timed = listed_conditions(nodes, catalog, dialect)
    parts: list[Select[Any]] = [
        select(literal(position, Integer).label("position"), contacts.c.id).where(
            condition, is_listed(contacts.c.id, dialect)
        )
        for position, condition in enumerate(conditions)
    ]
    statement = parts[0] if len(parts) == 1 else union_all(*parts)
    return ListedQuery(statement, timed)
