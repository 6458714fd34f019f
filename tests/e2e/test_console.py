"""The browser console served at ``/`` by the process (embedded): its pages as a history-mode app,
its hashed assets cached for good, its Content Security Policy; the page that says it is not
built; and the API paths around it, which stay JSON.
"""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from services.runtime.app import create_app
from shared.core.clock import SimulatedClock
from shared.core.settings import Mode, Settings
from tests.e2e.harness import START

INDEX = '<!DOCTYPE html><html><head><script type="module" src="/assets/index-3f2a9c.js"></script></head></html>\n'
SCRIPT = "console.log('城市管理');\n" * 200  # large enough to be worth compressing
HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
NOT_FOUND = {"code": "http_404", "message": "Not Found", "details": None}
UP = "..%2F" * 30


def build(folder: Path) -> Path:
    """A console build as ``make web`` leaves it: index.html, hashed assets, a favicon."""
    (folder / "assets").mkdir(parents=True)
    (folder / "index.html").write_text(INDEX)
    (folder / "assets" / "index-3f2a9c.js").write_text(SCRIPT)
    (folder / "favicon.ico").write_bytes(b"\x00\x00\x01\x00")
    return folder


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """A process serving intake, with the console built in ``tmp_path/dist``."""
    async with _process(tmp_path, build(tmp_path / "dist")) as answer:
        yield answer


def _process(tmp_path: Path, console: Path) -> httpx.AsyncClient:
    settings = Settings(mode=Mode.EMBEDDED, data_dir=tmp_path / "data", console_dir=console)
    app = create_app(["intake"], settings, SimulatedClock(START))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://citycase")


@pytest.mark.parametrize("path", ["/", "/cases", "/cases/2026-11-000123", "/map/district/990102", "/dashboard/"])
async def test_every_page_of_the_console_is_its_index(client: httpx.AsyncClient, path: str) -> None:
    answer = await client.get(path, headers=HTML)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    assert answer.text == INDEX
    # Revalidated on every visit, so a new build shows at the next reload.
    assert answer.headers["cache-control"] == "no-cache"
    policy = answer.headers["content-security-policy"]
    assert "script-src 'self';" in policy
    assert "connect-src 'self';" in policy
    assert "frame-ancestors 'none'" in policy
    assert "img-src 'self' data: blob:;" in policy
    assert "unsafe-eval" not in policy
    assert "'unsafe-inline'" not in policy.split("style-src-attr")[0]  # no inline scripts nor <style>
    again = await client.get(path, headers={**HTML, "If-None-Match": answer.headers["etag"]})
    assert again.status_code == 304


async def test_hashed_assets_are_cached_for_good_and_compressed(client: httpx.AsyncClient) -> None:
    answer = await client.get("/assets/index-3f2a9c.js", headers={"Accept-Encoding": "gzip"})
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/javascript")
    assert answer.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert answer.headers["content-encoding"] == "gzip"
    assert answer.text == SCRIPT  # httpx inflated it
    plain = await client.get("/assets/index-3f2a9c.js", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    assert plain.content == SCRIPT.encode()
    assert len(gzip.compress(plain.content)) < len(plain.content) / 10
    icon = await client.get("/favicon.ico")
    assert (icon.status_code, icon.headers["cache-control"]) == (200, "no-cache")


# The last two climb out of the build to a file every Debian machine has.
@pytest.mark.parametrize(
    "path",
    ["/assets/index-000000.js", "/assets/", "/missing.png", f"/assets/{UP}etc%2Fhost.conf", f"/{UP}etc%2Fhost.conf"],
)
async def test_a_missing_file_is_a_json_404_not_the_index(client: httpx.AsyncClient, path: str) -> None:
    answer = await client.get(path, headers=HTML)
    assert (answer.status_code, answer.json()) == (404, NOT_FOUND)


@pytest.mark.parametrize(
    "path",
    [
        "/intake/nothing",
        "/dispatch/cases",
        "/city/nothing",
        "/auth/nothing",
        "/calendar",
        "/ops/x",
        "/docs/x",
        "/photos/x",
    ],
)
async def test_an_unknown_api_path_stays_a_json_404(client: httpx.AsyncClient, path: str) -> None:
    # Even a browser asking for HTML: an API path is never a page of the console. A service not
    # in this process (dispatch) is still API.
    answer = await client.get(path, headers=HTML)
    assert (answer.status_code, answer.json()) == (404, NOT_FOUND)
    assert answer.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"


async def test_a_page_is_for_browsers_and_for_reading(client: httpx.AsyncClient) -> None:
    answer = await client.get("/cases", headers={"Accept": "application/json"})
    assert (answer.status_code, answer.json()) == (404, NOT_FOUND)
    refused = await client.post("/cases", json={})
    assert (refused.status_code, refused.headers["allow"]) == (405, "GET, HEAD")
    assert refused.json()["code"] == "http_405"
    # The routes the process has are untouched.
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    assert (await client.post("/healthz")).status_code == 405


@pytest.mark.parametrize("path", ["/", "/cases/2026-11-000123"])
async def test_a_console_not_built_says_so_and_how_to_build_it(tmp_path: Path, path: str) -> None:
    async with _process(tmp_path, tmp_path / "never-built") as client:
        answer = await client.get(path, headers=HTML)
        assert answer.status_code == 503
        assert answer.headers["content-type"].startswith("text/html")
        assert "make web" in answer.text
        assert "not built" in answer.text
        # Self-contained: no script, nothing loaded from anywhere.
        assert "<script" not in answer.text
        assert "src=" not in answer.text
        assert answer.headers["content-security-policy"].startswith("default-src 'none'")
        assert (await client.get("/intake/nothing")).json() == NOT_FOUND
        assert (await client.get("/healthz")).status_code == 200
