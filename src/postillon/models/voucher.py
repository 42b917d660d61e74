from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from postillon.kit.types import UTCDateTime, Uuid
from postillon.models.base import Base


class VoucherPool(Base):
    """Codes to hand out, one per contact: imported, or generated from a pattern."""

    __tablename__ = "voucher_pools"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    key: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    # "imported" or "generated".
    kind: Mapped[str] = mapped_column(String(20))
    # Generated codes: prefix + `code_length` characters drawn from `alphabet`.
    prefix: Mapped[str] = mapped_column(String(50), default="")
    code_length: Mapped[int] = mapped_column(Integer, default=10)
    alphabet: Mapped[str] = mapped_column(String(100))
    # How the code is drawn as an image: "qr", "ean13" or "code128".
    barcode: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class VoucherCode(Base):
    """One code of a pool; free while `contact_id` is empty. The unique index on (pool,
    contact) makes "one code per contact and pool" hold whatever two senders do."""

    __tablename__ = "voucher_codes"
    __table_args__ = (
        Index("uq_voucher_codes_pool_code", "pool_id", "code", unique=True),
        Index("uq_voucher_codes_pool_contact", "pool_id", "contact_id", unique=True),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    pool_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("voucher_pools.id", ondelete="CASCADE")
    )
    code: Mapped[str] = mapped_column(String(100))
    # An erased contact's code goes with it: it is never handed to someone else.
    contact_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("contacts.id", ondelete="CASCADE")
    )
    # The message it was first rendered into.
    message_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    assigned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
