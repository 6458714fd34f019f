"""The gateway ``launch`` puts in front of a process per service: the console and every API at one
address, requests and answers passed through as they come (a live feed event by event), the
caller's address passed on, and a 503 when a process does not answer. Here the processes are one
embedded city behind real HTTP, which the gateway reaches as it would reach five.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
import uvicorn
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp

from services.runtime.console import console_app
from services.runtime.gateway import Gateway, gateway_app
from services.runtime.local import serve
from services.tools.launcher import ServiceProcesses
from shared.core.clock import SimulatedClock
from shared.core.settings import SERVICE_NAMES
from tests.e2e.harness import PASSWORDS, START, city_settings

pytestmark = pytest.mark.asyncio(loop_scope="module")

INDEX = "<!DOCTYPE html><title>console</title>\n"


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signals to pytest."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@contextlib.asynccontextmanager
async def served(app: ASGIApp) -> AsyncIterator[str]:
    """``app`` behind real HTTP on an ephemeral port while the block runs; its base URL."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, access_log=False, log_level="warning", proxy_headers=False)
    server = _Server(config)
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(30):
            while not server.started:
                await asyncio.sleep(0.02)
        yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    finally:
        server.should_exit = True
        await task


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def gateway(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the gateway in front of an embedded city, with a console built."""
    folder = tmp_path_factory.mktemp("gateway")
    (folder / "dist").mkdir()
    (folder / "dist" / "index.html").write_text(INDEX)
    async with serve(city_settings("embedded", folder), SimulatedClock(START)) as city:
        upstreams = dict.fromkeys(SERVICE_NAMES, city)
        async with served(gateway_app(upstreams, folder / "dist")) as url, httpx.AsyncClient(base_url=url) as client:
            yield client


async def bearer(client: httpx.AsyncClient, user: str) -> dict[str, str]:
    answer = await client.post("/auth/token", data={"username": user, "password": PASSWORDS[user]})
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


async def test_the_console_and_the_apis_at_one_address(gateway: httpx.AsyncClient) -> None:
    page = await gateway.get("/cases/2026-11-000001", headers={"Accept": "text/html"})
    assert (page.status_code, page.text) == (200, INDEX)
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert (await gateway.get("/healthz")).json() == {"status": "ok"}
    assert (await gateway.get("/dispatch/healthz")).json() == {"status": "ok", "service": "dispatch"}
    headers = await bearer(gateway, "inspector1")
    spot = await gateway.get("/city/geometry/cell", headers=headers)
    cell = spot.json()["features"][0]
    lon, lat = cell["geometry"]["coordinates"][0][0]
    report = {"category_code": "02-05-01", "description": "through the gateway", "location": {"lon": lon, "lat": lat}}
    # A body passed on: the report is filed.
    created = await gateway.post("/intake/reports", json=report, headers=headers)
    assert created.status_code == 201, created.text
    found = await gateway.get("/intake/cases", headers=await bearer(gateway, "shiftlead"))
    assert created.json()["id"] in [case["id"] for case in found.json()["items"]]


async def test_a_service_mount_goes_to_its_service(gateway: httpx.AsyncClient, tmp_path: Path) -> None:
    services = await gateway.get("/open311/v2/services.xml", headers={"Accept": "text/html"})
    assert (services.status_code, services.headers["content-type"]) == (200, "text/xml; charset=utf-8")
    missing = await gateway.get("/open311/v2/nothing.json", headers={"Accept": "text/html"})
    assert (missing.status_code, missing.json()) == (404, [{"code": 404, "description": "Not Found"}])
    # A process per service: /open311 is intake's, whichever process answers for the whole city.
    hosts: list[str] = []

    async def upstream(scope: Any, receive: Any, send: Any) -> None:
        hosts.append(Request(scope, receive).headers["host"])
        await JSONResponse([])(scope, receive, send)

    upstreams = {"dispatch": "http://dispatch:8001", "intake": "http://intake:8000"}
    app = Gateway(upstreams, console_app(tmp_path, ()), httpx.ASGITransport(app=upstream))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://city.example") as client:
        await client.get("/open311/v2/requests.json")
    assert hosts == ["intake:8000"]


@pytest.mark.parametrize("path", ["/intake/nothing", "/metrics", "/city/nothing", "/nothing.js"])
async def test_an_unknown_path_is_a_json_404(gateway: httpx.AsyncClient, path: str) -> None:
    answer = await gateway.get(path, headers={"Accept": "text/html"})
    assert answer.status_code == 404
    assert answer.json()["code"] == "http_404"
    assert answer.headers["x-content-type-options"] == "nosniff"


async def test_a_live_feed_comes_through_event_by_event(gateway: httpx.AsyncClient) -> None:
    headers = await bearer(gateway, "shiftlead")
    # No count: the feed never ends on its own, so its first event can only arrive if the
    # gateway passes it on as it comes.
    async with (
        asyncio.timeout(20),
        gateway.stream("GET", "/assessment/live?interval=0.2", headers=headers) as feed,
    ):
        assert feed.headers["content-type"].startswith("text/event-stream")
        lines = feed.aiter_lines()
        assert await anext(lines) == "event: indicators"
        assert (await anext(lines)).startswith("data: ")


async def test_the_documentation_comes_through(gateway: httpx.AsyncClient) -> None:
    page = await gateway.get("/handling/docs")
    assert page.status_code == 200
    assert "/handling/docs-assets/swagger-ui-bundle.js" in page.text
    asset = await gateway.get("/handling/docs-assets/swagger-ui.css")
    assert (asset.status_code, asset.headers["content-type"].split(";")[0]) == (200, "text/css")


async def test_a_process_that_does_not_answer_is_a_503(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"  # bound, never listening
        app = gateway_app({"intake": closed}, tmp_path)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as client:
            answer = await client.get("/intake/healthz")
    assert answer.status_code == 503
    assert answer.json()["code"] == "dependency_unavailable"
    assert answer.headers["retry-after"] == "5"


async def test_the_callers_address_is_passed_on_and_a_forged_one_dropped(tmp_path: Path) -> None:
    seen: list[dict[str, Any]] = []

    async def upstream(scope: Any, receive: Any, send: Any) -> None:
        request = Request(scope, receive)
        seen.append({"headers": dict(request.headers), "path": scope["raw_path"], "query": scope["query_string"]})
        await JSONResponse({"body": (await request.body()).decode()})(scope, receive, send)

    app = Gateway({"intake": "http://intake:8000"}, console_app(tmp_path, ()), httpx.ASGITransport(app=upstream))
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://city.example") as client:
        answer = await client.post(
            "/intake/reports/a%2Fb?x=1&y=%E5%9F%8E",
            content=b"payload",
            headers={
                "X-Forwarded-For": "10.0.0.1",
                "Forwarded": "for=10.0.0.1",
                "Connection": "keep-alive, X-Hop",
                "X-Hop": "for the gateway only",
                "Authorization": "Bearer t",
            },
        )
    assert answer.json() == {"body": "payload"}
    (request,) = seen
    assert request["headers"]["x-forwarded-for"] == "203.0.113.7"
    assert request["headers"]["x-forwarded-host"] == "city.example"
    assert request["headers"]["authorization"] == "Bearer t"
    assert request["headers"]["host"] == "intake:8000"
    assert not {"forwarded", "x-hop"} & request["headers"].keys()
    assert (request["path"], request["query"]) == (b"/intake/reports/a%2Fb", b"x=1&y=%E5%9F%8E")


@pytest.mark.parametrize(
    ("location", "passed_on"),
    [
        ("http://intake:8000/intake/cases?x=1", "/intake/cases?x=1"),
        ("http://intake:8000", "/"),
        ("http://intake:80001/elsewhere", "http://intake:80001/elsewhere"),
        ("https://example.org/intake/cases", "https://example.org/intake/cases"),
        ("/intake/cases", "/intake/cases"),
    ],
)
async def test_a_redirect_to_the_process_becomes_one_to_the_gateway(
    tmp_path: Path, location: str, passed_on: str
) -> None:
    async def upstream(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 307, "headers": [(b"location", location.encode())]})
        await send({"type": "http.response.body", "body": b""})

    app = Gateway({"intake": "http://intake:8000"}, console_app(tmp_path, ()), httpx.ASGITransport(app=upstream))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://city.example") as client:
        answer = await client.get("/intake/cases/")
    assert (answer.status_code, answer.headers["location"]) == (307, passed_on)


@pytest.mark.parametrize(
    ("link", "passed_on"),
    [
        (
            '<http://intake:8000/intake/reports?status=verifying&after=T>; rel="next"',
            '<http://city.example/intake/reports?status=verifying&after=T>; rel="next"',
        ),
        ('<http://intake:80001/elsewhere>; rel="next"', '<http://intake:80001/elsewhere>; rel="next"'),
        ('</intake/reports?after=T>; rel="next"', '</intake/reports?after=T>; rel="next"'),
    ],
)
async def test_a_link_to_the_process_becomes_one_to_the_gateway(tmp_path: Path, link: str, passed_on: str) -> None:
    async def upstream(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"link", link.encode())]})
        await send({"type": "http.response.body", "body": b"[]"})

    app = Gateway({"intake": "http://intake:8000"}, console_app(tmp_path, ()), httpx.ASGITransport(app=upstream))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://city.example") as client:
        answer = await client.get("/intake/reports?status=verifying")
    assert answer.headers["link"] == passed_on


async def test_launch_starts_the_gateway_as_a_process_of_its_own(tmp_path: Path) -> None:
    (tmp_path / "dist").mkdir()
    (tmp_path / "dist" / "index.html").write_text(INDEX)
    settings = city_settings("embedded", tmp_path / "city").model_copy(update={"console_dir": tmp_path / "dist"})
    async with serve(settings, SimulatedClock(START)) as city:
        processes = ServiceProcesses()
        # The services' processes as launch knows them: here one embedded city serves them all.
        processes.urls.update(dict.fromkeys(SERVICE_NAMES, city))
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        try:
            url = await processes.start_gateway(port, settings)
            assert processes.alive()
            async with httpx.AsyncClient(base_url=url) as client:
                page = await client.get("/", headers={"Accept": "text/html"})
                assert (page.status_code, page.text) == (200, INDEX)
                ready = await client.get("/assessment/readyz")
                assert ready.json()["checks"]["database"] == "ok"
        finally:
            await processes.stop()
        assert not processes.alive()
