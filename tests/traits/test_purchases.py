"""The one definition of a purchase's revenue."""

from __future__ import annotations

from postillon.traits.purchases import PURCHASE_REVENUE_PROPERTIES, order_revenue
from postillon.traits.rfm import RFM_CELLS, RFM_GRID, quintile, rfm_cell


def test_revenue_is_revenue_else_total_else_zero() -> None:
    assert PURCHASE_REVENUE_PROPERTIES == ("revenue", "total")
    assert order_revenue({"revenue": 49.9, "total": 60}) == 49.9
    assert order_revenue({"revenue": "49.9", "total": 60}) == 60.0
    assert order_revenue({"revenue": True, "total": 3}) == 3.0
    assert order_revenue({"revenue": None, "total": False}) == 0.0
    assert order_revenue({"total": -5}) == -5.0
    assert order_revenue({}) == 0.0


def test_the_rfm_grid_names_every_cell() -> None:
    assert {cell for row in RFM_GRID.values() for cell in row} == set(RFM_CELLS)
    assert rfm_cell(5, 5, 5) == "champions"
    assert rfm_cell(1, 1, 1) == "lost"
    assert rfm_cell(1, 5, 4) == "cannot_lose"
    assert [quintile(rank, 10) for rank in range(1, 11)] == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
