"""Headless Chromium for the browser tests and scripts (not a test module).

Debian's ``chromium`` (``/usr/bin/chromium``, installed by ``scripts/setup.sh``) driven by
Playwright: Playwright's own browser downloads are not used.  The flags keep Chromium off
the network apart from the pages it is sent to (no background requests, no component
updates), so it also runs on machines without outside access.
"""

from __future__ import annotations

import os
import shutil
from typing import Any

__all__ = ["CHROMIUM_ARGS", "chromium_path", "launch_chromium", "wait_until_ready"]

CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def chromium_path() -> str | None:
    """``HERITAGE_CHROMIUM`` if set, else Debian's ``/usr/bin/chromium``, else one on PATH."""
    for candidate in (os.environ.get("HERITAGE_CHROMIUM"), "/usr/bin/chromium",
                      shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and os.path.exists(candidate):
            return candidate
    return None


def launch_chromium(playwright: Any) -> Any:
    """A headless Chromium browser (Playwright ``Browser``)."""
    path = chromium_path()
    if path is None:
        raise RuntimeError("Chromium is not installed: run scripts/setup.sh (it installs Debian's chromium)")
    return playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)


def wait_until_ready(page: Any, view: str, timeout_ms: float = 30_000) -> Any:
    """Wait until the explorer's current view (catalogue, family or model) has rendered."""
    locator = page.locator(f'#view > .view[data-view="{view}"][data-state="ready"]')
    locator.wait_for(timeout=timeout_ms)
    return locator
