"""The browser console under a real browser: Debian's Chromium driven by Playwright, against a
real embedded city started as its own process, serving the built console (``make web``).

The city runs on a clock file: the simulator drives it through a day (``python -m services
simulate --url``), then the clock is moved to the next morning, so the dashboard has figures, a
trend, rankings and an overdue backlog, and the workbenches have work. Time then stands still:
nothing changes unless a test changes it. One city serves every module of this folder (starting
and simulating one takes most of a module's time); each test makes the cases it acts on.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from PIL import Image
from playwright.sync_api import Browser, ConsoleMessage, Page, Request, ViewportSize, sync_playwright

from services.tools.browser import CHROMIUM, CHROMIUM_ARGS
from shared.core.clock import SIMULATION_CLOCK_FILE, FileClock

REPO = Path(__file__).resolve().parents[2]
CONSOLE = REPO / "web" / "dist"
WALL_SCREEN: ViewportSize = {"width": 1920, "height": 1080}
SCREENSHOTS = REPO / "docs" / "screenshots"

# The demo city's log-ins (deploy/cities/demo/users.yaml): one per role the console serves, a
# second department, and the video system (its detections wait for an operator).
PASSWORDS = {
    "shiftlead": "demo-shift_lead",
    "operator": "demo-operator",
    "dispatcher": "demo-dispatcher",
    "dept-street": "demo-department",
    "dept-water": "demo-department",
    "inspector1": "demo-inspector",
    "video": "demo-video",
}
# A day of a small city: ~70 reports from every source, about half closed by the evening.
SIMULATION = ["--days", "1", "--scale", "0.08", "--finish", "stop", "--step-minutes", "10", "--seed", "1"]
# Monday 5 January 2026, midnight in the city (UTC+8), a working day the demo calendar knows; and
# the morning after, 10:30, when yesterday's open cases are past their limits.
SIMULATION_START = datetime(2026, 1, 4, 16, 0, tzinfo=UTC)
NEXT_MORNING = datetime(2026, 1, 6, 2, 30, tzinfo=UTC)
_READY_S = 60.0


@dataclass
class City:
    """A running city: its base URL, and its API for what the other roles do meanwhile."""

    url: str
    data_dir: Path
    api: httpx.Client
    _tokens: dict[str, str] = field(default_factory=dict)

    def token(self, user: str) -> str:
        """``user``'s bearer token (logged in once)."""
        if user not in self._tokens:
            answer = self.api.post("/auth/token", data={"username": user, "password": PASSWORDS[user]})
            assert answer.status_code == 200, answer.text
            self._tokens[user] = answer.json()["access_token"]
        return self._tokens[user]

    def call(self, user: str, method: str, path: str, expect: int = 200, **kwargs: Any) -> Any:
        """One request as ``user``; asserts the status, returns the JSON body. A token that ran
        out (a test moved the clock) is replaced once."""
        for attempt in range(2):
            headers = {"Authorization": f"Bearer {self.token(user)}"}
            answer = self.api.request(method, path, headers=headers, **kwargs)
            if answer.status_code != 401 or attempt:
                break
            del self._tokens[user]
        assert answer.status_code == expect, f"{method} {path}: {answer.status_code} {answer.text}"
        return answer.json()

    def advance_clock(self, delta: timedelta) -> None:
        """Move the city's simulated time on (its processes read the clock file on every look)."""
        clock = FileClock(self.data_dir / SIMULATION_CLOCK_FILE, writable=True)
        try:
            clock.advance(delta)
        finally:
            clock.close()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _simulate_a_day(url: str, clock_file: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "services", "simulate", "--url", url, "--clock-file", str(clock_file), *SIMULATION],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, f"the simulation failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    clock = FileClock(clock_file, writable=True)
    try:
        clock.set(NEXT_MORNING)
    finally:
        clock.close()


def _wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + _READY_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the city stopped at start:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"the city was not ready within {_READY_S:.0f}s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="package")
def city(tmp_path_factory: pytest.TempPathFactory) -> Iterator[City]:
    """A simulated city served, console included, on a free port of 127.0.0.1."""
    if not (CONSOLE / "index.html").is_file():
        pytest.fail(f"the console is not built ({CONSOLE}): run `make web`")
    data_dir = tmp_path_factory.mktemp("browser-city")
    clock_file = data_dir / SIMULATION_CLOCK_FILE
    FileClock.create(clock_file, SIMULATION_START).close()
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        # Hermetic: none of the settings of the shell that runs the tests.
        **{name: value for name, value in os.environ.items() if not name.startswith("CITYCASE_")},
        "CITYCASE_MODE": "embedded",
        "CITYCASE_DATA_DIR": str(data_dir),
        "CITYCASE_CLOCK_FILE": str(clock_file),
        "CITYCASE_CONSOLE_DIR": str(CONSOLE),
        # Events from the outbox to the live feed at once, as a busy city would see them.
        "CITYCASE_OUTBOX_POLL_SECONDS": "0.05",
        "CITYCASE_TIMER_INTERVAL_SECONDS": "0.1",
        # The simulated city's people all log in and report from this one address.
        "CITYCASE_RATE_LOGIN_ATTEMPTS_PER_ADDRESS": "1000000/minute",
        "CITYCASE_RATE_PUBLIC_REPORTS_PER_ADDRESS": "1000000/minute",
    }
    log = data_dir / "city.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "services",
                "run",
                "all",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--stop-with-parent",
            ],
            cwd=REPO,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_ready(url, process, log)
        _simulate_a_day(url, clock_file)
        with httpx.Client(base_url=url, timeout=30) as api:
            yield City(url=url, data_dir=data_dir, api=api)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# Package scope, not session: Playwright's sync API runs an event loop on the main thread while it
# is open, and the asyncio tests of the other folders cannot start theirs beside it.
@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless, on a fresh profile of its own (Playwright makes one per
    launch and removes it at the end); never a browser Playwright would download."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run deploy/local/chromium.sh (make test does)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=list(CHROMIUM_ARGS))
        try:
            yield chromium
        finally:
            chromium.close()


@dataclass
class Watch:
    """What a page did that it must not: ask anything of another host, or log an error."""

    origin: str
    foreign: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    allowed: list[str] = field(default_factory=list)

    def on_request(self, request: Request) -> None:
        parts = urlsplit(request.url)
        if parts.scheme in ("data", "blob"):
            return
        if f"{parts.scheme}://{parts.netloc}" != self.origin or parts.hostname != "127.0.0.1":
            self.foreign.append(request.url)

    def on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error" and not any(text in message.text for text in self.allowed):
            self.errors.append(message.text)

    def on_page_error(self, error: Exception) -> None:
        self.errors.append(f"uncaught: {error}")

    def allow_console_error(self, text: str) -> None:
        """An error the test provokes on purpose (a refused log-in logs its 401)."""
        self.allowed.append(text)


@pytest.fixture
def watch(city: City) -> Watch:
    """The rules every page of every test keeps, checked after the test."""
    return Watch(origin=city.url)


def _watched_page(browser: Browser, watch: Watch) -> Page:
    """A new page in a context of its own (no storage or cache shared), wall-screen size."""
    context = browser.new_context(viewport=WALL_SCREEN, locale="zh-CN", service_workers="block")
    page = context.new_page()
    page.on("request", watch.on_request)
    page.on("console", watch.on_console)
    page.on("pageerror", watch.on_page_error)
    return page


def _check(watch: Watch) -> None:
    assert not watch.foreign, f"the page asked another host: {watch.foreign}"
    assert not watch.errors, f"the browser console has errors: {watch.errors}"


@pytest.fixture
def page(browser: Browser, city: City, watch: Watch) -> Iterator[Page]:
    """A new page in a context of its own (no storage shared between tests), wall-screen size."""
    page = _watched_page(browser, watch)
    try:
        yield page
    finally:
        page.context.close()
    _check(watch)


@pytest.fixture
def people(browser: Browser, city: City, watch: Watch) -> Iterator[Callable[[], Page]]:
    """Pages for a test where several people act, each its own browser (a context: its own
    session storage and cache), all kept to the same rules as ``page``."""
    pages: list[Page] = []

    def open_page() -> Page:
        pages.append(_watched_page(browser, watch))
        return pages[-1]

    try:
        yield open_page
    finally:
        for opened in pages:
            opened.context.close()
    _check(watch)


def log_in(page: Page, city: City, user: str) -> None:
    """Log in through the form, the way a person does."""
    page.goto(f"{city.url}/")
    page.get_by_label("用户名").fill(user)
    page.get_by_label("密码").fill(PASSWORDS[user])
    page.get_by_role("button", name="登录").click()
    page.wait_for_selector("header.top-bar")


def save_screenshot(page: Page, name: str) -> Path:
    """A screenshot into docs/screenshots/, in a palette of 256 colours without dithering: a
    fifth of the size of the full-colour PNG, and the console's flat dark colours survive it."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / name
    raw = path.with_suffix(".raw.png")
    page.screenshot(path=str(raw), animations="disabled", caret="hide")
    with Image.open(raw) as image:
        palette = image.convert("RGB").quantize(256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
        palette.save(path, optimize=True)
    raw.unlink()
    return path
