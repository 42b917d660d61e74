"""The shapes of voucher pools on the API (pydantic); codes are checked in `service.py`."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from postillon.vouchers.images import Barcode


class VoucherPoolIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str = Field(description='what templates call it by: voucher("key"); a-z, 0-9, - and _')
    name: str | None = Field(default=None, max_length=200)
    kind: Literal["imported", "generated"] = "generated"
    prefix: str = Field(default="", max_length=50, description="generated codes start with it")
    code_length: int = Field(default=10, ge=4, le=40, description="characters after the prefix")
    alphabet: str = Field(
        default="ABCDEFGHJKLMNPQRSTUVWXYZ23456789",
        min_length=2,
        max_length=100,
        description="what generated codes are drawn from (no 0/O, 1/I by default)",
    )
    barcode: Barcode = Barcode.qr


class VoucherPoolOut(BaseModel):
    id: uuid.UUID
    key: str
    name: str
    kind: str
    prefix: str
    code_length: int
    alphabet: str
    barcode: str
    created_at: datetime
    free: int
    assigned: int


class CodesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    codes: list[str] = Field(max_length=100_000)


class GenerateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    count: int = Field(ge=1, le=100_000)


class CodesAdded(BaseModel):
    added: int
    duplicates: int
    pool: VoucherPoolOut
