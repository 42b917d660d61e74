"""Headless Chromium for browser tests: Debian's `chromium` driven by Playwright.

Playwright's own browser downloads are not used; the suite runs the distribution's build
(`./dev test` installs it), or the executable named by POSTILLON_CHROMIUM.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import Browser, sync_playwright

DEFAULT_CHROMIUM = "/usr/bin/chromium"


def chromium_path() -> Path:
    return Path(os.environ.get("POSTILLON_CHROMIUM") or DEFAULT_CHROMIUM)


@contextmanager
def headless_chromium() -> Iterator[Browser]:
    """A headless Chromium for the block; closed (with its driver) afterwards."""
    executable = chromium_path()
    if not os.access(executable, os.X_OK):
        raise RuntimeError(
            f"no Chromium at {executable}: install Debian's 'chromium' package "
            "(./dev test does) or point POSTILLON_CHROMIUM at one"
        )
    # Chromium's sandbox refuses to start as root, as in containers and CI.
    args = ["--no-sandbox"] if os.geteuid() == 0 else []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=args)
        try:
            yield browser
        finally:
            browser.close()
