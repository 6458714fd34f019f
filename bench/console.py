"""The browser console's two figures: what the built bundle weighs, and how long the dashboard
takes, in Debian's headless Chromium, from the page's navigation to its first full render (the
map's 4,014 cells, the headline figures and the rankings all drawn: the page's own
``performance.mark('dashboard-rendered')``).

The city is an embedded one started for the purpose, so the figure is the console's and the
browser's, not the load of the phases before it. Each render is a reload of the dashboard in a
logged-in tab (the session survives a reload), so nothing but the browser's HTTP cache is warm
after the first: the median of the later loads is the figure a user opening the wall screen sees.
"""

from __future__ import annotations

import asyncio
import gzip
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import async_playwright

from services.tools.browser import CHROMIUM, CHROMIUM_ARGS

REPO = Path(__file__).resolve().parents[1]
DIST = REPO / "web" / "dist"
LOADS = 6
_READY_S = 60.0


def bundle_size(dist: Path = DIST) -> dict[str, Any]:
    """Bytes of the build's scripts, styles and pages, raw and gzipped (as served), in all and
    per file."""
    files = {}
    for path in sorted(dist.rglob("*")):
        if path.suffix in (".js", ".css", ".html") and path.is_file():
            content = path.read_bytes()
            files[str(path.relative_to(dist))] = {"raw": len(content), "gzip": len(gzip.compress(content, 6))}
    return {
        "raw_kb": round(sum(f["raw"] for f in files.values()) / 1024, 1),
        "gzip_kb": round(sum(f["gzip"] for f in files.values()) / 1024, 1),
        "files": files,
    }


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def _ready(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + _READY_S
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError("the console's city stopped at start")
            try:
                if (await client.get(f"{url}/readyz", timeout=2)).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError(f"the console's city was not ready within {_READY_S:.0f}s")


async def first_render_ms(url: str, loads: int = LOADS) -> list[float]:
    """Milliseconds from navigation to the dashboard's mark, for ``loads`` reloads."""
    async with async_playwright() as playwright:
        chromium = playwright.chromium
        browser = await chromium.launch(executable_path=str(CHROMIUM), headless=True, args=list(CHROMIUM_ARGS))
        try:
            context = await browser.new_context(viewport={"width": 1920, "height": 1080}, locale="zh-CN")
            page = await context.new_page()
            await page.goto(f"{url}/login")
            await page.locator("input[autocomplete=username]").fill("shiftlead")
            await page.locator("input[type=password]").fill("demo-shift_lead")
            await page.locator("button[type=submit]").click()
            await page.wait_for_url("**/dashboard**")
            times = []
            for _ in range(loads):
                await page.reload()
                await page.wait_for_function("() => performance.getEntriesByName('dashboard-rendered').length > 0")
                mark = await page.evaluate("() => performance.getEntriesByName('dashboard-rendered')[0].startTime")
                times.append(round(float(mark), 1))
            return times
        finally:
            await browser.close()


def _start_city(data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    """An embedded demo city serving the built console on ``port``, logging to its folder."""
    env = {
        **{name: value for name, value in os.environ.items() if not name.startswith("CITYCASE_")},
        "CITYCASE_MODE": "embedded",
        "CITYCASE_DATA_DIR": str(data_dir),
        "CITYCASE_CONSOLE_DIR": str(DIST),
    }
    command = [sys.executable, "-m", "services", "run", "all", "--host", "127.0.0.1", "--port", str(port)]
    with (data_dir / "city.log").open("wb") as log:
        return subprocess.Popen([*command, "--stop-with-parent"], cwd=REPO, env=env, stdout=log, stderr=log)


async def run() -> dict[str, Any]:
    """Both figures; the render ones on a city of the demo city's shape, started and stopped here."""
    if not (DIST / "index.html").is_file():
        raise RuntimeError(f"the console is not built ({DIST}): run `make web`")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="bench-console-") as data_dir:
        process = _start_city(Path(data_dir), port)
        try:
            await _ready(url, process)
            loads = await first_render_ms(url)
        finally:
            process.terminate()
            process.wait(timeout=30)
    warm = loads[1:]
    return {
        "bundle": bundle_size(),
        "first_render_ms": statistics.median(warm),
        "first_render_cold_ms": loads[0],
        "loads_ms": loads,
    }
