from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Float, ForeignKey, Index, Integer, SmallInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from postillon.kit.types import UTCDateTime, Uuid
from postillon.models.base import Base


class ContactTrait(Base):
    """Traits the worker computes from a contact's events, usable in filters.

    Purchases are the `Order Completed` events (their `revenue`, else `total`)."""

    __tablename__ = "contact_traits"
    __table_args__ = (Index("ix_contact_traits_rfm_cell", "rfm_cell"),)

    contact_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True
    )
    # RFM quintiles, 1 (worst) to 5 (best), over contacts who purchased; none otherwise.
    rfm_recency: Mapped[int | None] = mapped_column(SmallInteger)
    rfm_frequency: Mapped[int | None] = mapped_column(SmallInteger)
    rfm_monetary: Mapped[int | None] = mapped_column(SmallInteger)
    # champions, loyal, potential_loyalists, new_customers, promising, need_attention,
    # about_to_sleep, at_risk, cannot_lose, hibernating, lost
    rfm_cell: Mapped[str | None] = mapped_column(String(30))
    # active, moderate, passive (email and web activity over 30 / 90 days)
    engagement: Mapped[str] = mapped_column(String(20))
    purchase_count: Mapped[int] = mapped_column(Integer, default=0)
    # Historic customer lifetime value: the sum of the revenue of all purchases.
    clv: Mapped[float] = mapped_column(Float, default=0.0)
    average_order_value: Mapped[float | None] = mapped_column(Float)
    # Purchases per 30 days between the first purchase and the computation.
    purchase_frequency: Mapped[float | None] = mapped_column(Float)
    first_purchase_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_purchase_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime)
