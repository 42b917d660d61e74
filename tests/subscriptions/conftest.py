"""A headless Chromium for the page tests, once per module (see tests/tracking/conftest.py
for why not once per session)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser

from tests.support.browser import headless_chromium


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with headless_chromium() as launched:
        yield launched
