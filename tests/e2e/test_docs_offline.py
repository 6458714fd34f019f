"""The API documentation works offline: Swagger UI and ReDoc of the process and of each service
load their scripts and styles from the process itself, under a Content Security Policy of their
own, and name no other site.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from services.runtime.app import create_app
from shared.core.clock import SimulatedClock
from shared.core.settings import Mode, Settings
from tests.e2e.harness import START

PAGES = ["/docs", "/redoc", "/intake/docs", "/intake/redoc", "/assessment/docs", "/assessment/redoc"]
# Where a page points: scripts, style sheets, icons, and the OpenAPI document it shows.
REFERENCE = re.compile(r'\b(?:src|href|spec-url|data-openapi-url)="([^"]*)"')
CONTENT_TYPES = {".js": "text/javascript", ".css": "text/css", ".png": "image/png", ".json": "application/json"}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def client(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(mode=Mode.EMBEDDED, data_dir=tmp_path_factory.mktemp("docs"))
    app = create_app(["intake", "assessment"], settings, SimulatedClock(START))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://citycase") as answer:
        yield answer


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize("page", PAGES)
async def test_a_documentation_page_loads_everything_from_its_own_process(client: httpx.AsyncClient, page: str) -> None:
    answer = await client.get(page)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    assert re.findall(r"https?:|//[a-z]", answer.text, flags=re.IGNORECASE) == []
    references = REFERENCE.findall(answer.text)
    prefix = page.rsplit("/", 1)[0]
    assert f"{prefix}/openapi.json" in references
    assert any(ref.endswith(".js") for ref in references)
    for reference in references:
        assert reference.startswith(f"{prefix}/"), reference  # the page's own origin and service
        asset = await client.get(reference)
        assert asset.status_code == 200, reference
        assert asset.headers["content-type"].startswith(CONTENT_TYPES[Path(reference).suffix]), reference
        assert len(asset.content) > 0


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize("page", PAGES)
async def test_a_documentation_page_runs_only_scripts_of_its_origin(client: httpx.AsyncClient, page: str) -> None:
    answer = await client.get(page)
    # Every script is a file: none written into the page.
    assert re.findall(r"<script(?![^>]*\bsrc=)", answer.text) == []
    directives = dict(d.strip().split(" ", 1) for d in answer.headers["content-security-policy"].split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == "'self'"
    assert directives["connect-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert answer.headers["x-frame-options"] == "DENY"


@pytest.mark.asyncio(loop_scope="module")
async def test_swagger_ui_starts_from_a_file_that_names_no_site(client: httpx.AsyncClient) -> None:
    page = (await client.get("/intake/docs")).text
    start = next(ref for ref in REFERENCE.findall(page) if ref.endswith("swagger-init.js"))
    script = (await client.get(start)).text
    assert "SwaggerUIBundle(" in script
    assert "dataset.openapiUrl" in script
    assert "validatorUrl: null" in script
    assert "http" not in script.replace("// No badge", "")
    assert 'data-openapi-url="/intake/openapi.json"' in page


@pytest.mark.asyncio(loop_scope="module")
async def test_the_bundles_travel_compressed(client: httpx.AsyncClient) -> None:
    path = "/intake/docs-assets/swagger-ui-bundle.js"
    async with client.stream("GET", path, headers={"Accept-Encoding": "gzip"}) as answer:
        assert answer.headers["content-encoding"] == "gzip"
        sent = b"".join([chunk async for chunk in answer.aiter_raw()])
    whole = (await client.get(path, headers={"Accept-Encoding": "identity"})).content
    assert len(whole) > 1_000_000
    assert len(sent) < len(whole) / 3
