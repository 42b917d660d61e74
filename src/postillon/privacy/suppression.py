"""Addresses Postillon must not take in again, kept only as keyed hashes (HMAC-SHA256).

The key is the installation's secret, so the list can be checked but not reversed or
compared across installations.
"""

from __future__ import annotations

import hashlib
import hmac
from enum import StrEnum


class SuppressionReason(StrEnum):
    erased = "erased"
    bounced = "bounced"
    complained = "complained"


REASON_MESSAGES = {
    SuppressionReason.erased: "this address was erased on request (GDPR) and is suppressed",
    SuppressionReason.bounced: "this address bounced and is suppressed",
    SuppressionReason.complained: "this address reported spam and is suppressed",
}


def address_digest(secret_key: str, channel: str, address: str) -> str:
    message = f"{channel}:{address}".encode()
    return hmac.new(secret_key.encode(), message, hashlib.sha256).hexdigest()
