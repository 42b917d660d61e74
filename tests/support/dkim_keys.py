"""A DKIM key pair for tests, and the DNS answer `dkim.verify` asks for."""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa


def dkim_key_file(directory: Path, *, key_size: int = 2048) -> tuple[Path, bytes]:
    """The private key as a PEM file, and the TXT record that publishes its public key."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=key_size)
    path = directory / "dkim.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return path, b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)


def dns_answering(name: bytes, record: bytes) -> Callable[..., bytes]:
    """A `dnsfunc` for `dkim.verify` that knows one name."""

    def lookup(asked: bytes, timeout: int = 5) -> bytes:
        return record if asked == name else b""

    return lookup
