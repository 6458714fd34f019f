"""What a process shows besides its API, as its settings say: the OpenAPI documents and pages (of
the process and of every service) and the metrics, open (the default), for shift leads (and a
metrics scraper's token), or off; and the metrics on a port of their own.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.runtime.app import create_app
from shared.core.clock import SimulatedClock
from shared.core.settings import Exposure, Mode, Settings
from tests.e2e.harness import PASSWORDS, START

DOCUMENTATION = ("/openapi.json", "/docs", "/redoc", "/intake/openapi.json", "/intake/docs", "/intake/redoc")
SCRAPER = "a-scrapers-token-of-forty-characters-0000"
REFUSED = {"code": "http_401", "message": "a valid bearer token is required", "details": None}
FORBIDDEN = {"code": "http_403", "message": "this account may not do this", "details": None}


@asynccontextmanager
async def process(tmp_path: Path, *, started: bool = False, **settings: Any) -> AsyncIterator[httpx.AsyncClient]:
    """An embedded process serving intake with ``settings``. Its routes for documents, metrics and
    log-ins need none of its workers; ``started`` runs its lifespan too, until it is ready."""
    app = create_app(["intake"], Settings(mode=Mode.EMBEDDED, data_dir=tmp_path, **settings), SimulatedClock(START))
    async with AsyncExitStack() as stack:
        if started:
            await stack.enter_async_context(app.router.lifespan_context(app))
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://citycase")
        await stack.enter_async_context(client)
        async with asyncio.timeout(30):
            while started and (await client.get("/readyz")).status_code != 200:
                await asyncio.sleep(0.05)
        yield client


async def bearer(client: httpx.AsyncClient, user: str) -> dict[str, str]:
    answer = await client.post("/auth/token", data={"username": user, "password": PASSWORDS[user]})
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


async def test_documentation_and_metrics_are_open_by_default(tmp_path: Path) -> None:
    async with process(tmp_path) as client:
        for path in DOCUMENTATION:
            assert (await client.get(path)).status_code == 200, path
        # A mounted service's document names its prefix, so a client (or a fuzzer) builds its URLs.
        assert (await client.get("/intake/openapi.json")).json()["servers"] == [{"url": "/intake"}]
        assert "citycase_" in (await client.get("/metrics")).text


async def test_documentation_for_shift_leads_only(tmp_path: Path) -> None:
    async with process(tmp_path, docs=Exposure.SHIFT_LEAD) as client:
        lead, inspector = await bearer(client, "shiftlead"), await bearer(client, "inspector1")
        for path in DOCUMENTATION:
            stranger = await client.get(path)
            assert (stranger.status_code, stranger.json()) == (401, REFUSED), path
            assert stranger.headers["x-content-type-options"] == "nosniff"
            refused = await client.get(path, headers=inspector)
            assert (refused.status_code, refused.json()) == (403, FORBIDDEN), path
            assert (await client.get(path, headers=lead)).status_code == 200, path
        document = (await client.get("/intake/openapi.json", headers=lead)).json()
        assert document["servers"] == [{"url": "/intake"}]
        # The API and the metrics are as before.
        assert (await client.get("/healthz")).status_code == 200
        assert (await client.get("/metrics")).status_code == 200


async def test_documentation_off(tmp_path: Path) -> None:
    async with process(tmp_path, docs=Exposure.OFF) as client:
        lead = await bearer(client, "shiftlead")
        for path in DOCUMENTATION:
            assert (await client.get(path, headers=lead)).status_code == 404, path
        # The request guard still knows which routes need a caller (it reads the document in-process).
        answer = await client.post("/intake/reports", json={})
        assert (answer.status_code, answer.json()) == (401, REFUSED)


@pytest.mark.parametrize("token", [SCRAPER, None])
async def test_metrics_for_shift_leads_and_the_scrapers_token(tmp_path: Path, token: str | None) -> None:
    async with process(tmp_path, metrics=Exposure.SHIFT_LEAD, metrics_token=token) as client:
        lead, inspector = await bearer(client, "shiftlead"), await bearer(client, "inspector1")
        for headers in ({}, {"Authorization": "Bearer " + SCRAPER[::-1]}, {"Authorization": f"Basic {SCRAPER}"}):
            answer = await client.get("/metrics", headers=headers)
            assert (answer.status_code, answer.json()) == (401, REFUSED)
        assert (await client.get("/metrics", headers=inspector)).status_code == 403
        assert "citycase_" in (await client.get("/metrics", headers=lead)).text
        scraper = await client.get("/metrics", headers={"Authorization": f"Bearer {SCRAPER}"})
        assert scraper.status_code == (200 if token else 401)
        # The documentation is as before.
        assert (await client.get("/intake/openapi.json")).status_code == 200


async def test_metrics_off(tmp_path: Path) -> None:
    async with process(tmp_path, metrics=Exposure.OFF) as client:
        assert (await client.get("/metrics", headers=await bearer(client, "shiftlead"))).status_code == 404


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def test_metrics_on_a_port_of_their_own(tmp_path: Path) -> None:
    port = free_port()
    async with process(tmp_path, started=True, metrics_port=port, metrics_host="127.0.0.1") as client:
        assert (await client.get("/metrics", headers=await bearer(client, "shiftlead"))).status_code == 404
        async with httpx.AsyncClient() as scraper:
            answer = await scraper.get(f"http://127.0.0.1:{port}/metrics")
        assert answer.status_code == 200
        assert "citycase_" in answer.text
    # The port closes with the process.
    with pytest.raises(httpx.ConnectError):
        async with httpx.AsyncClient() as scraper:
            await scraper.get(f"http://127.0.0.1:{port}/metrics")
