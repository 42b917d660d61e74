"""Request-scoped dependencies: the runtime, the request's transaction, authentication."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from postillon.auth.service import Scope
from postillon.models import ApiKey
from postillon.runtime import Runtime

_TOUCH_EVERY = timedelta(minutes=1)


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def _write_session(runtime: RuntimeDep) -> Iterator[Session]:
    """The request's transaction: committed when the handler returns, before the response
    is sent, and rolled back if it raises."""
    with runtime.database.transaction() as session:
        yield session


def _read_session(runtime: RuntimeDep) -> Iterator[Session]:
    with runtime.database.transaction(read_only=True) as session:
        yield session


WriteSession = Annotated[Session, Depends(_write_session, scope="function")]
ReadSession = Annotated[Session, Depends(_read_session, scope="function")]


def _bearer_secret(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return secret.strip() or None


def _authenticate(request: Request, runtime: Runtime, scope: Scope) -> ApiKey:
    secret = _bearer_secret(request)
    with runtime.database.transaction(read_only=True) as session:
        key = runtime.api_keys.authenticate(session, secret, scope=scope)
    now = runtime.clock.now()
    if key.last_used_at is None or now - key.last_used_at > _TOUCH_EVERY:
        with runtime.database.transaction() as session:
            runtime.api_keys.record_use(session, key.id)
    return key


def require_admin(request: Request, runtime: RuntimeDep) -> ApiKey:
    return _authenticate(request, runtime, Scope.admin)


AdminKey = Annotated[ApiKey, Depends(require_admin)]
