"""A schemathesis run against /openapi.json: no request to /v1 or /api gets a 5xx.

Every operation under /v1 and /api is fuzzed against the live server with schemathesis'
examples, coverage and fuzzing phases, valid and invalid input, authenticated with an admin
key (which /v1 accepts too). No answer may be a 5xx (bad input is a 4xx here), and answers
with a status the document declares must match its schema, media type and headers.
The run is bounded and seeded, so it generates the same inputs every time.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import strategies as st
from schemathesis import Case, HookContext
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
)

from postillon.runtime import Runtime

_EXAMPLES_PER_OPERATION = 20
_SEED = 20260105
# No 5xx; and where the document declares a status, the answer matches it. Not checked:
# statuses the document leaves out (FastAPI declares only 200 and 422; the API also answers
# 400, 401, 404, 409 and 429) and schemathesis' stricter opinions on 405s and `Allow`.
_CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    content_type_conformance,
    response_headers_conformance,
]
_OPERATIONS = r"^/(v1|api)/"


# These remove their contact; they get contacts of their own, so the others still find theirs.
_DESTRUCTIVE = {"DELETE /api/contacts/{contact_id}", "POST /api/contacts/{contact_id}/erase"}
_MERGE = "POST /api/contacts/{contact_id}/merge"


@dataclass
class KnownIds:
    """Ids that exist, so that generated requests reach the handlers behind the 404."""

    contacts: list[str]
    expendable: list[str]
    absorbable: list[str]
    imports: list[str]
    visitors: list[str]

    def for_parameter(self, name: str, operation: str) -> list[str]:
        if name == "contact_id":
            return self.expendable if operation in _DESTRUCTIVE else self.contacts
        known = {"import_id": self.imports, "anonymous_id": self.visitors, "key": ["main"]}
        return known.get(name, [])


@pytest.fixture
def known_ids(api: httpx.Client) -> KnownIds:
    """Contacts with tags, consent, attributes, events and a visitor; and an import."""
    contacts = []
    for n in range(5):
        created = api.post(
            "/api/contacts",
            json={
                "external_id": f"fuzz-{n}",
                "email": f"fuzz-{n}@example.com",
                "tags": ["fuzz"],
                "attributes": {"plan": "pro"},
                "consent": {"email": "subscribed"},
            },
        )
        assert created.status_code == 201, created.text
        contacts.append(created.json()["id"])
    tracked = api.post(
        "/v1/batch",
        json={
            "batch": [
                {"type": "track", "userId": "fuzz-0", "anonymousId": "fuzz-1", "event": "Seen"},
                {"type": "page", "anonymousId": "fuzz-1", "name": "Home"},
            ]
        },
    )
    assert tracked.status_code == 200, tracked.text
    imported = api.post(
        "/api/imports",
        files={"file": ("fuzz.csv", b"email,first_name\nfuzz-import@example.com,Ada\n")},
    )
    assert imported.status_code == 200, imported.text
    return KnownIds(
        contacts=contacts[:2],
        expendable=contacts[2:4],
        absorbable=contacts[4:],
        imports=[imported.json()["id"]],
        visitors=["fuzz-1"],
    )


@pytest.fixture
def sent(anonymous: httpx.Client) -> Iterator[Counter[str]]:
    """The operations called; after the run, every /v1 and /api operation must be among them."""
    document = anonymous.get("/openapi.json").json()
    documented = {
        f"{method.upper()} {path}"
        for path, operations in document["paths"].items()
        for method in operations
        if path.startswith(("/v1/", "/api/"))
    }
    calls: Counter[str] = Counter()
    yield calls
    if calls:  # else the run failed before it began, and that is the news
        assert not documented - calls.keys(), f"never called: {sorted(documented - calls.keys())}"


@pytest.fixture
def api_schema(
    request: pytest.FixtureRequest,
    server_url: str,
    admin_key: str,
    runtime: Runtime,
    known_ids: KnownIds,
) -> schemathesis.BaseSchema:
    """The app's own OpenAPI document, fetched from the server serving this test's runtime."""
    # schemathesis 4.32's lazy schemas read `node._nodeid`, which pytest 9.2 no longer has.
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid
    # The rate limit would answer 429 once the fuzzer has spent the burst; lift it so every
    # generated message reaches the parser and the database.
    runtime.ingest_limiter.rate = 0
    schema = schemathesis.openapi.from_url(f"{server_url}/openapi.json")
    schema.config.update(headers={"Authorization": f"Bearer {admin_key}"}, request_timeout=30)
    schema.config.generation.update(
        max_examples=_EXAMPLES_PER_OPERATION, deterministic=True, database="none"
    )
    # A fixed seed (mixed with each operation's name), so the requests do not change
    # whenever this file does, as they would with Hypothesis' derandomisation alone.
    schema.config.seed = _SEED

    @schema.hook
    def flatmap_path_parameters(
        context: HookContext, path_parameters: dict[str, Any] | None
    ) -> st.SearchStrategy[dict[str, Any] | None]:
        """Each id parameter: the generated value, or one that exists."""
        if not path_parameters or context.operation is None:
            return st.just(path_parameters)
        label = context.operation.label
        return st.fixed_dictionaries(
            {
                name: st.sampled_from([value, *known_ids.for_parameter(name, label)])
                for name, value in path_parameters.items()
            }
        )

    @schema.hook
    def flatmap_body(context: HookContext, body: Any) -> st.SearchStrategy[Any]:
        """A merge may absorb a contact that exists."""
        if context.operation is None or context.operation.label != _MERGE:
            return st.just(body)
        if not isinstance(body, dict) or "contact_id" not in body:
            return st.just(body)
        absorbed = st.sampled_from([body["contact_id"], *known_ids.absorbable])
        return absorbed.map(lambda contact_id: {**body, "contact_id": contact_id})

    return schema


schema = schemathesis.pytest.from_fixture("api_schema").include(path_regex=_OPERATIONS)


@schema.parametrize()
def test_no_request_gets_a_server_error(case: Case, sent: Counter[str]) -> None:
    sent[case.operation.label] += 1
    case.call_and_validate(checks=_CHECKS)
