"""Signed links in messages: opens, clicks, unsubscribe, preferences, opt-in, voucher images.

Every link a recipient can follow carries a token signed with the installation's secret
(HMAC-SHA256 through itsdangerous), one salt per kind, so a token made for one purpose is
worthless for another. Nothing in a link can be guessed or enumerated, and a click link
carries its target inside the signed token: changing the target breaks the signature, so
Postillon never redirects anywhere it did not write into the message itself.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from enum import StrEnum
from functools import lru_cache
from typing import Any

import orjson
from itsdangerous import BadSignature, URLSafeSerializer


class LinkKind(StrEnum):
    """The kinds of link, each also the path segment under `/e/`."""

    open = "o"
    click = "c"
    unsubscribe = "u"
    preferences = "p"
    confirm = "k"
    voucher = "v"


class LinkSigner:
    """Makes and reads the tokens of links; the web endpoints under `/e/` read them."""

    def __init__(self, secret_key: str, public_url: str) -> None:
        self._base = public_url.rstrip("/")
        self._verp_key = hashlib.sha256(f"postillon.verp:{secret_key}".encode()).digest()
        self._serializers = {
            kind: URLSafeSerializer(
                secret_key,
                salt=f"postillon.link.{kind.name}",
                signer_kwargs={"digest_method": hashlib.sha256},
            )
            for kind in LinkKind
        }
        self._keys = {
            kind: serializer.make_signer().derive_key()
            for kind, serializer in self._serializers.items()
        }
        self._unsubscribe_url = lru_cache(maxsize=4096)(self._make_unsubscribe_url)

    def token(self, kind: LinkKind, payload: Any) -> str:
        """The token itsdangerous would make (base64 of compact JSON, ".", base64
        HMAC-SHA256 under the serializer's derived key), and that `read` reads, made
        directly: a message carries a dozen links, and the serializer's per-call signer
        set-up and zlib attempt cost more than composing the rest of the message."""
        body = base64.urlsafe_b64encode(orjson.dumps(payload)).rstrip(b"=")
        signature = hmac.digest(self._keys[kind], body, "sha256")
        return (body + b"." + base64.urlsafe_b64encode(signature).rstrip(b"=")).decode("ascii")

    def read(self, kind: LinkKind, token: str) -> Any | None:
        """The payload of a token of this kind, or None if it was not made by us for it."""
        try:
            return self._serializers[kind].loads(token)
        except (BadSignature, UnicodeDecodeError, ValueError):
            return None

    def url(self, kind: LinkKind, payload: Any, suffix: str = "") -> str:
        return f"{self._base}/e/{kind.value}/{self.token(kind, payload)}{suffix}"

    # The links a message carries, by what they are for.

    def open_pixel_url(self, message_id: uuid.UUID) -> str:
        return self.url(LinkKind.open, message_id.hex, ".gif")

    def click_url(self, message_id: uuid.UUID, target: str) -> str:
        return self.url(LinkKind.click, [message_id.hex, target])

    def unsubscribe_url(self, message_id: uuid.UUID) -> str:
        """Asked twice per marketing message (the template's link and the
        List-Unsubscribe header): the last thousands are remembered."""
        return self._unsubscribe_url(message_id)

    def _make_unsubscribe_url(self, message_id: uuid.UUID) -> str:
        return self.url(LinkKind.unsubscribe, message_id.hex)

    def preferences_url(self, contact_id: uuid.UUID) -> str:
        return self.url(LinkKind.preferences, contact_id.hex)

    def read_message_id(self, kind: LinkKind, token: str) -> uuid.UUID | None:
        """For open and unsubscribe tokens (and any other whose payload is a message id)."""
        return _as_uuid(self.read(kind, token))

    def read_click(self, token: str) -> tuple[uuid.UUID, str] | None:
        payload = self.read(LinkKind.click, token)
        if not (isinstance(payload, list) and len(payload) == 2):
            return None
        message_id, target = _as_uuid(payload[0]), payload[1]
        if message_id is None or not isinstance(target, str):
            return None
        return message_id, target

    # Bounce attribution (VERP): the Return-Path of a message names it, so a bounce sent
    # back to that address says which message (and so which contact) failed. Lower-case
    # hex only, 56 characters: it survives MTAs that fold the case of local parts and fits
    # the 64 a local part may have.

    def verp_local_part(self, message_id: uuid.UUID) -> str:
        return f"bounce+{message_id.hex}.{self._verp_digest(message_id.hex)}"

    def read_verp_local_part(self, local_part: str) -> uuid.UUID | None:
        """The message a bounce address names, or None if we did not make it."""
        prefix, _, token = local_part.lower().partition("+")
        message_hex, _, digest = token.partition(".")
        if prefix != "bounce" or not hmac.compare_digest(digest, self._verp_digest(message_hex)):
            return None
        return _as_uuid(message_hex)

    def _verp_digest(self, message_hex: str) -> str:
        return hmac.new(self._verp_key, message_hex.encode(), hashlib.sha256).hexdigest()[:16]


def _as_uuid(value: Any) -> uuid.UUID | None:
    if not isinstance(value, str):
        return None
    try:
        return uuid.UUID(hex=value)
    except ValueError:
        return None
