"""API keys: created with a scope, shown once, stored as a SHA-256 digest.

Keys carry 256 bits of randomness, so a fast digest is as safe as a slow password hash
and keeps authentication cheap on the ingestion path.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Sequence
from enum import StrEnum
from urllib.parse import urlsplit

from sqlalchemy.orm import Session

from postillon.auth import repository
from postillon.clock import Clock
from postillon.errors import Forbidden, InvalidInput, NotAuthenticated, NotFound
from postillon.kit.ids import new_id
from postillon.models import ApiKey

KEY_PREFIX = "pst_"


class Scope(StrEnum):
    admin = "admin"  # the whole admin API
    write = "write"  # ingestion only: safe to embed in a website or a shop


def digest_of(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def normalise_origin(origin: str) -> str:
    """`https://Shop.example/` → `https://shop.example`; a wildcard only as the first label."""
    text = origin.strip().rstrip("/").lower()
    parsed = urlsplit(text)
    host = parsed.hostname or ""
    if (
        parsed.scheme not in ("http", "https")
        or not host
        or parsed.path
        or parsed.query
        or "*" in host.removeprefix("*.")
    ):
        raise InvalidInput.at("origin", f"{origin!r} is not an origin such as https://shop.example")
    return text


def origin_allowed(allowed: Sequence[str], origin: str | None) -> bool:
    if not origin:
        return False
    candidate = origin.strip().rstrip("/").lower()
    for pattern in allowed:
        if pattern == candidate:
            return True
        if "://*." in pattern:
            scheme, _, suffix = pattern.partition("://*.")
            if candidate.startswith(f"{scheme}://") and candidate.endswith(f".{suffix}"):
                return True
    return False


class ApiKeyService:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock

    def create(
        self,
        session: Session,
        *,
        scope: Scope,
        name: str,
        allowed_origins: Sequence[str] | None = None,
    ) -> tuple[ApiKey, str]:
        """A new key and its secret; the secret is not stored and cannot be shown again.

        With `allowed_origins` the key is *public*: meant to be embedded in web pages, it
        is a write key accepted only from those origins (`https://shop.example`, or
        `https://*.shop.example` for every subdomain).
        """
        if not name.strip():
            raise InvalidInput.at("name", "must not be empty")
        origins = None
        if allowed_origins is not None:
            if scope is not Scope.write:
                raise InvalidInput.at("origin", "only write keys can be public")
            origins = [normalise_origin(o) for o in allowed_origins]
            if not origins:
                raise InvalidInput.at("origin", "a public key needs at least one origin")
        secret = f"{KEY_PREFIX}{scope.value}_{secrets.token_urlsafe(32)}"
        key = ApiKey(
            id=new_id(),
            name=name.strip(),
            scope=scope.value,
            prefix=secret[: len(KEY_PREFIX) + len(scope.value) + 7],
            secret_digest=digest_of(secret),
            allowed_origins=origins,
            created_at=self.clock.now(),
        )
        session.add(key)
        session.flush()
        return key, secret

    def authenticate(self, session: Session, secret: str | None, *, scope: Scope) -> ApiKey:
        """The key behind `secret` if it is valid, not revoked and allowed `scope`."""
        if not secret:
            raise NotAuthenticated("an API key is required: send 'Authorization: Bearer KEY'")
        key = repository.by_digest(session, digest_of(secret))
        if key is None or key.revoked_at is not None:
            raise NotAuthenticated("the API key is not valid or has been revoked")
        if scope is Scope.admin and key.scope != Scope.admin:
            raise NotAuthenticated(
                f"this API key has the scope {key.scope!r}; this route needs an admin key"
            )
        return key

    def authenticate_writer(
        self, session: Session, secret: str | None, *, origin: str | None
    ) -> ApiKey:
        """A key allowed to send tracking data (any scope), from `origin` if it is public."""
        if not secret:
            raise NotAuthenticated(
                "a write key is required: send 'Authorization: Basic base64(KEY:)' "
                "or 'writeKey' in the body"
            )
        key = repository.by_digest(session, digest_of(secret))
        if key is None or key.revoked_at is not None:
            raise NotAuthenticated("the write key is not valid or has been revoked")
        if key.allowed_origins is not None and not origin_allowed(key.allowed_origins, origin):
            shown = origin or "no Origin header"
            raise Forbidden(f"this write key is not allowed from {shown}")
        return key

    def record_use(self, session: Session, key_id: uuid.UUID) -> None:
        repository.touch(session, key_id, self.clock.now())

    def list(self, session: Session) -> list[ApiKey]:
        return repository.all_keys(session)

    def revoke(self, session: Session, reference: str) -> ApiKey:
        matches = repository.by_prefix_or_id(session, reference)
        if not matches:
            raise NotFound(f"no API key with id or prefix {reference!r}")
        if len(matches) > 1:
            raise Forbidden(f"{reference!r} names several keys; use the key's id")
        key = matches[0]
        if key.revoked_at is None:
            key.revoked_at = self.clock.now()
        return key

    def has_admin_key(self, session: Session) -> bool:
        return repository.count_active(session, Scope.admin.value) > 0
