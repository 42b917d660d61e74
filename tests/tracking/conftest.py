"""Fixtures of the tracking tests: a headless Chromium, launched once per test module.

Not once per session: between its calls, Playwright's sync API leaves its asyncio loop
marked as running on the main thread, so any later test that calls `asyncio.run()` (a
worker round, for instance) would fail with "cannot be called from a running event loop".
Closing the browser with its module keeps that confined to the browser tests, which run
their worker rounds in a thread of their own.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser

from tests.support.browser import headless_chromium


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with headless_chromium() as launched:
        yield launched
