"""The filter language as a service: check a document, list or count who matches."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from postillon.clock import Clock
from postillon.filters import listed, repository
from postillon.filters import model as m
from postillon.filters.parsing import References, parse_filter
from postillon.filters.sql import Catalog, select_members
from postillon.settings import Settings


class FilterService:
    def __init__(self, settings: Settings, clock: Clock) -> None:
        self.settings = settings
        self.clock = clock

    def catalog(self, session: Session) -> Catalog:
        return Catalog(
            now=self.clock.now(),
            stages=repository.stage_keys(session),
            score_models=repository.score_model_ids(session),
            segments=repository.segment_ids(session),
            purchase_event=self.settings.purchase_event,
        )

    def parse(
        self, session: Session, doc: Any, *, where: str = "filter", catalog: Catalog | None = None
    ) -> m.Filter:
        """A checked filter whose stages, score models and segments exist."""
        catalog = catalog or self.catalog(session)
        references = References(
            stages=catalog.stages,
            score_models=(*catalog.score_models, "main"),
            segments=tuple(catalog.segments),
        )
        return parse_filter(doc, where=where, references=references)

    def members(
        self,
        session: Session,
        node: m.Filter,
        *,
        catalog: Catalog | None = None,
        contact_ids: Collection[uuid.UUID] | None = None,
    ) -> set[uuid.UUID]:
        """Who matches, in SQL: everyone, or among `contact_ids`."""
        catalog = catalog or self.catalog(session)
        dialect = session.get_bind().dialect.name
        query = select_members(node, catalog, dialect, contact_ids=contact_ids)
        return set(session.scalars(query))

    def count(self, session: Session, node: m.Filter, *, catalog: Catalog | None = None) -> int:
        catalog = catalog or self.catalog(session)
        query = select_members(node, catalog, session.get_bind().dialect.name)
        return int(session.scalar(select(func.count()).select_from(query.subquery())) or 0)

    def evaluate(
        self,
        session: Session,
        node: m.Filter,
        contact_ids: Collection[uuid.UUID],
        *,
        catalog: Catalog | None = None,
    ) -> set[uuid.UUID]:
        """Who matches among `contact_ids`, in SQL (`filters.listed`)."""
        [found] = self.evaluate_each(session, [node], contact_ids, catalog=catalog)
        return found

    def evaluate_each(
        self,
        session: Session,
        nodes: Sequence[m.Filter],
        contact_ids: Collection[uuid.UUID],
        *,
        catalog: Catalog | None = None,
    ) -> list[set[uuid.UUID]]:
        """For each filter, who matches among `contact_ids`: one statement for them all
        (a branch's cases, a journey's goal and exits), built once and kept."""
        if not nodes or not contact_ids:
            return [set() for _ in nodes]
        return listed.matching(session, nodes, contact_ids, catalog or self.catalog(session))

    def matches(self, session: Session, node: m.Filter, contact_id: uuid.UUID) -> bool:
        return contact_id in self.evaluate(session, node, [contact_id])
