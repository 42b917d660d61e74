"""API keys: created with a scope, shown once, stored as a SHA-256 digest.

Keys carry 256 bits of randomness, so a fast digest is as safe as a slow password hash
and keeps authentication cheap on the ingestion path.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from enum import StrEnum

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


class ApiKeyService:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock

    def create(self, session: Session, *, scope: Scope, name: str) -> tuple[ApiKey, str]:
        """A new key and its secret; the secret is not stored and cannot be shown again."""
        if not name.strip():
            raise InvalidInput.at("name", "must not be empty")
        secret = f"{KEY_PREFIX}{scope.value}_{secrets.token_urlsafe(32)}"
        key = ApiKey(
            id=new_id(),
            name=name.strip(),
            scope=scope.value,
            prefix=secret[: len(KEY_PREFIX) + len(scope.value) + 7],
            secret_digest=digest_of(secret),
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
