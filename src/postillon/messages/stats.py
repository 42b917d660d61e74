"""Message statistics: what became of the messages of a template, a broadcast and its
variants (and, later, a journey step), as counts and rates from one aggregate query.

Unique opens and clicks are people's (`opened_at` / `clicked_at`, which tracking sets for
humans only); opens by privacy proxies and scanners are counted apart (`machine_opens`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy.orm import Session

from postillon.errors import InvalidInput, NotFound
from postillon.messages import stats_repository


@dataclass(frozen=True)
class Figures:
    """The counts of a set of messages; rates are derived from them."""

    sent: int = 0
    delivered: int = 0
    bounced_hard: int = 0
    bounced_soft: int = 0
    unique_opens: int = 0
    unique_clicks: int = 0
    machine_opens: int = 0
    unsubscribes: int = 0
    complaints: int = 0

    def __add__(self, other: Figures) -> Figures:
        return Figures(
            **{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)}
        )

    @property
    def open_rate(self) -> float:
        return _ratio(self.unique_opens, self.delivered)

    @property
    def click_rate(self) -> float:
        """CTR: unique clicks per delivered message."""
        return _ratio(self.unique_clicks, self.delivered)

    @property
    def click_to_open(self) -> float:
        return _ratio(self.unique_clicks, self.unique_opens)

    def out(self) -> FiguresOut:
        return FiguresOut(
            **asdict(self),
            bounced=self.bounced_hard + self.bounced_soft,
            open_rate=self.open_rate,
            click_rate=self.click_rate,
            click_to_open=self.click_to_open,
        )


class FiguresOut(BaseModel):
    sent: int
    delivered: int
    bounced: int
    bounced_hard: int
    bounced_soft: int
    unique_opens: int
    unique_clicks: int
    machine_opens: int
    unsubscribes: int
    complaints: int
    open_rate: float
    click_rate: float
    click_to_open: float


class TemplateStats(BaseModel):
    template: str
    since: datetime | None
    until: datetime | None
    totals: FiguresOut


def _ratio(part: int, whole: int) -> float:
    return round(part / whole, 6) if whole else 0.0


def figures_by(
    session: Session,
    *,
    where: Mapping[str, Any],
    group_by: Sequence[str] = (),
    since: datetime | None = None,
    until: datetime | None = None,
) -> dict[tuple[Any, ...], Figures]:
    """Figures of the messages matching `where` (column → value), per group of the
    `group_by` columns' values (one entry under () without grouping), sent in
    [since, until)."""
    unknown = [name for name in [*where, *group_by] if name not in stats_repository.GROUPABLE]
    if unknown:
        raise InvalidInput.at("group_by", f"cannot group messages by {', '.join(unknown)}")
    for location, moment in (("since", since), ("until", until)):
        # Far years cannot be converted to UTC (year 1 at +05:00 is before datetime.min).
        if moment is not None and not 1900 <= moment.year <= 9000:
            raise InvalidInput.at(location, "must be a time between the years 1900 and 9000")
    if since is not None and until is not None and until <= since:
        raise InvalidInput.at("until", "must be after since")
    width = len(group_by)
    names = [f.name for f in fields(Figures)]
    result: dict[tuple[Any, ...], Figures] = {}
    rows = stats_repository.figures(
        session, where=where, group_by=group_by, since=since, until=until
    )
    for row in rows:
        values = row
        counts = {name: int(value or 0) for name, value in zip(names, values[width:], strict=True)}
        result[values[:width]] = Figures(**counts)
    return result


def template_stats(
    session: Session, key: str, *, since: datetime | None, until: datetime | None
) -> TemplateStats:
    """Every message rendered from the template, whoever sent it."""
    template_id = stats_repository.template_id_by_key(session, key)
    if template_id is None:
        raise NotFound(f"no template {key!r}")
    found = figures_by(session, where={"template_id": template_id}, since=since, until=until)
    return TemplateStats(
        template=key, since=since, until=until, totals=found.get((), Figures()).out()
    )
