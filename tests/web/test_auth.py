"""Every /api/ route wants an admin key; write keys are for ingestion only."""

from __future__ import annotations

import re

import httpx
import pytest

from postillon.auth.service import Scope
from postillon.runtime import Runtime
from postillon.web.app import create_app

SOME_ID = "01a20368-2f16-7142-9eef-ef47e9a8a22c"


def _api_routes() -> list[tuple[str, str]]:
    """Every method and path of /api/ that the OpenAPI spec lists, with ids filled in."""
    spec = create_app(_NoRuntime(), run_worker=False).openapi()  # type: ignore[arg-type]
    routes = []
    for path, operations in spec["paths"].items():
        if not path.startswith("/api/"):
            continue
        concrete = path.replace("{channel}", "email")
        concrete = re.sub(r"\{[^}]+\}", SOME_ID, concrete)
        routes.extend((method.upper(), concrete) for method in sorted(operations))
    return routes


class _NoRuntime:
    class settings:
        run_worker = False


API_ROUTES = _api_routes()


def test_the_api_has_routes_to_check() -> None:
    assert len(API_ROUTES) >= 15


@pytest.mark.parametrize(("method", "path"), API_ROUTES)
def test_every_api_route_refuses_requests_without_an_admin_key(
    anonymous: httpx.Client, runtime: Runtime, method: str, path: str
) -> None:
    with runtime.database.transaction() as session:
        _, write_key = runtime.api_keys.create(session, scope=Scope.write, name="site")
    for headers in (
        {},
        {"Authorization": "Bearer pst_admin_forged"},
        {"Authorization": f"Bearer {write_key}"},
        {"Authorization": f"Basic {write_key}"},
    ):
        response = anonymous.request(method, path, headers=headers, json={})
        assert response.status_code == 401, (method, path, headers, response.text)
        assert response.json()["error"] == "not_authenticated"


def test_a_revoked_key_stops_working(
    anonymous: httpx.Client, runtime: Runtime, admin_key: str
) -> None:
    headers = {"Authorization": f"Bearer {admin_key}"}
    assert anonymous.get("/api/contacts", headers=headers).status_code == 200
    with runtime.database.transaction() as session:
        key = runtime.api_keys.list(session)[0]
        runtime.api_keys.revoke(session, str(key.id))
    assert anonymous.get("/api/contacts", headers=headers).status_code == 401


def test_keys_are_stored_only_as_digests(runtime: Runtime, admin_key: str) -> None:
    with runtime.database.transaction(read_only=True) as session:
        stored = runtime.api_keys.list(session)
    assert len(stored) == 1
    assert admin_key not in (stored[0].secret_digest, stored[0].prefix)
    assert admin_key.startswith(stored[0].prefix)
