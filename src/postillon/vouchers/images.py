"""A voucher code drawn as a PNG: a QR code (segno), an EAN-13 or a Code 128 barcode
(python-barcode with Pillow). Pure: the web endpoint serves what this returns."""

from __future__ import annotations

import io
from enum import StrEnum

import segno
from barcode import EAN13, Code128  # type: ignore[import-untyped]
from barcode.writer import ImageWriter  # type: ignore[import-untyped]


class Barcode(StrEnum):
    qr = "qr"
    ean13 = "ean13"
    code128 = "code128"


def ean13_check_digit(first_twelve: str) -> str:
    """The 13th digit of an EAN-13 whose first 12 digits are given."""
    total = sum(int(digit) * (3 if index % 2 else 1) for index, digit in enumerate(first_twelve))
    return str((10 - total % 10) % 10)


def is_valid_ean13(code: str) -> bool:
    return (
        len(code) == 13
        and code.isascii()
        and code.isdigit()
        and ean13_check_digit(code[:12]) == code[12]
    )


def code_problem(barcode: Barcode, code: str) -> str | None:
    """Why `code` cannot be drawn as `barcode`, or None."""
    if not code or len(code) > 100:
        return "must be 1-100 characters"
    if not code.isprintable():
        return "must not hold control characters"
    if barcode is Barcode.ean13 and not is_valid_ean13(code):
        return "is not an EAN-13 (13 digits with a valid check digit)"
    if barcode is Barcode.code128 and not code.isascii():
        return "must be ASCII for Code 128"
    return None


def voucher_png(barcode: Barcode, code: str) -> bytes:
    """The PNG image of `code` (checked by `code_problem` before)."""
    buffer = io.BytesIO()
    if barcode is Barcode.qr:
        segno.make(code, error="m").save(buffer, kind="png", scale=6, border=2)
    else:
        symbol = EAN13(code) if barcode is Barcode.ean13 else Code128(code)
        symbol.writer = ImageWriter(format="PNG")
        symbol.write(buffer)
    return buffer.getvalue()
