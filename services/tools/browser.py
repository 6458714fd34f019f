"""Debian's headless Chromium as the browser tests and the benchmark drive it (Playwright, never a
browser build of its own): where it is, and how it is started."""

from __future__ import annotations

from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
# No sandbox (the tests run as root), no GPU, and none of the browser's own calls home: every
# request a page makes must go to the city under test, and this machine refuses the others.
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
