"""Concurrent writers: one contact per email, and never a 500."""

from __future__ import annotations

import threading
from collections import Counter

import httpx


def test_concurrent_creates_of_one_email_make_one_contact(
    server_url: str, admin_key: str, api: httpx.Client
) -> None:
    barrier = threading.Barrier(8)
    statuses: list[int] = []

    def create() -> None:
        with httpx.Client(
            base_url=server_url, headers={"Authorization": f"Bearer {admin_key}"}, timeout=60
        ) as client:
            barrier.wait()
            for index in range(5):
                response = client.post(
                    "/api/contacts/batch",
                    json={"contacts": [{"email": f"race{index}@example.com", "tags": ["t"]}]},
                )
                statuses.append(response.status_code)

    threads = [threading.Thread(target=create) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert set(statuses) <= {200, 409}, Counter(statuses)
    for index in range(5):
        found = api.get("/api/contacts", params={"email": f"race{index}@example.com"})
        assert len(found.json()["items"]) == 1
