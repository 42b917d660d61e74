"""RFM: recency, frequency and monetary value, scored 1 (worst) to 5 (best) among the
contacts who purchased, and the named cell each contact falls in.

Scores are quintiles by rank: a contact's score is `1 + 5 * (rank - 1) // n`, where `n`
is the number of purchasers and `rank` the SQL `RANK()` of the contact's value, ascending
(1 + how many purchasers have a smaller value). That is `NTILE(5)` except that equal
values always share a score (the lowest of their group), so a value many contacts share
(one purchase) does not split them arbitrarily and a refresh gives the same answer twice.

- recency: the time of the last purchase (later is better; ordering by it is ordering by
  the time since it, reversed, and does not change as the clock moves on);
- frequency: the number of purchases;
- monetary: the sum of their revenue (`clv`).

The cell comes from R and FM, the mean of F and M rounded half up (`(F + M + 1) // 2`),
in this grid (rows R, columns FM):

    R \\ FM  1               2                     3                     4            5
    5       new_customers   potential_loyalists   potential_loyalists   champions    champions
    4       promising       potential_loyalists   potential_loyalists   loyal        champions
    3       about_to_sleep  about_to_sleep        need_attention        loyal        loyal
    2       hibernating     hibernating           at_risk               at_risk      cannot_lose
    1       lost            hibernating           at_risk               at_risk      cannot_lose

Contacts without a purchase have no scores and no cell.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, String, case, literal

RFM_CELLS = (
    "champions",
    "loyal",
    "potential_loyalists",
    "new_customers",
    "promising",
    "need_attention",
    "about_to_sleep",
    "at_risk",
    "cannot_lose",
    "hibernating",
    "lost",
)

# R → the cells for FM = 1 … 5. The one table of the grid above.
RFM_GRID: dict[int, tuple[str, str, str, str, str]] = {
    5: ("new_customers", "potential_loyalists", "potential_loyalists", "champions", "champions"),
    4: ("promising", "potential_loyalists", "potential_loyalists", "loyal", "champions"),
    3: ("about_to_sleep", "about_to_sleep", "need_attention", "loyal", "loyal"),
    2: ("hibernating", "hibernating", "at_risk", "at_risk", "cannot_lose"),
    1: ("lost", "hibernating", "at_risk", "at_risk", "cannot_lose"),
}


def fm_score(frequency: int, monetary: int) -> int:
    return (frequency + monetary + 1) // 2


def rfm_cell(recency: int, frequency: int, monetary: int) -> str:
    """The cell of one contact's scores."""
    return RFM_GRID[recency][fm_score(frequency, monetary) - 1]


def quintile(rank: int, count: int) -> int:
    """The score of the `rank`-th smallest value (1-based, ties sharing the lowest rank)
    among `count`; the same arithmetic as the SQL."""
    return 1 + 5 * (rank - 1) // count


def rfm_cell_sql(
    recency: ColumnElement[Any], frequency: ColumnElement[Any], monetary: ColumnElement[Any]
) -> ColumnElement[str]:
    """`rfm_cell` as SQL; NULL scores give NULL."""
    fm = (frequency + monetary + 1) // 2
    return case(
        *(
            ((recency == r) & (fm == position + 1), literal(cell, String))
            for r, cells in RFM_GRID.items()
            for position, cell in enumerate(cells)
        ),
        else_=literal(None, String),
    )
