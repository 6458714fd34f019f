"""A running city's log lines say what they are about: uvicorn's line for a request carries the
request's id (the caller's ``X-Request-ID``, echoed in the answer) and its service, a consumer's
line the case and the event it was handling."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from services.runtime.app import create_app
from services.runtime.runtime import Runtime
from shared.core.clock import SimulatedClock
from shared.core.logs import configure_logging
from shared.core.settings import LogFormat
from shared.events.envelope import Event
from shared.messaging.store import Transaction
from tests.e2e.harness import START, Harness, city_settings

STREET_VENDING = "02-05-01"
log = logging.getLogger("tests.e2e.test_logs")


@pytest.fixture
def lines() -> Iterator[io.StringIO]:
    """The process's log lines, as JSON, configured as ``python -m services run all`` configures
    them (an earlier test's uvicorn may have left its own handlers on its loggers); the logging
    configuration as it was afterwards."""
    out = io.StringIO()
    root = logging.getLogger()
    kept_root = (list(root.handlers), root.level)
    loggers = [logging.getLogger(name) for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "alembic")]
    kept = [(list(logger.handlers), logger.propagate, logger.disabled, logger.level) for logger in loggers]
    configure_logging(LogFormat.JSON, "INFO", "all", stream=out)
    try:
        yield out
    finally:
        root.handlers[:] = kept_root[0]
        root.setLevel(kept_root[1])
        for logger, (handlers, propagate, disabled, level) in zip(loggers, kept, strict=True):
            logger.handlers[:] = handlers
            logger.propagate, logger.disabled = propagate, disabled
            logger.setLevel(level)


@asynccontextmanager
async def served(tmp_path: Path) -> AsyncIterator[Harness]:
    """The whole city behind uvicorn (whose access log is the request's line), as ``run`` starts it."""
    clock = SimulatedClock(START)
    app = create_app(["all"], city_settings("embedded", tmp_path), clock)
    runtime: Runtime = app.state.runtime
    # Dispatch says what it is doing when it routes a filed case: a line written by a consumer.
    (routing,) = next(service for service in runtime.services if service.name == "dispatch").consumers
    handlers: dict[str, Any] = routing.spec.handlers  # type: ignore[assignment]
    route = handlers["case.filed"]

    async def saying_so(tx: Transaction, event: Event) -> None:
        log.info("routing the case")
        await route(tx, event)

    handlers["case.filed"] = saying_so
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, access_log=True))
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(30):
            while not server.started:
                await asyncio.sleep(0.02)
        port = server.servers[0].sockets[0].getsockname()[1]
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            harness = Harness(client, clock, runtime.shared.city)
            await harness.eventually("shiftlead", "/readyz", lambda body: body.get("ready") is True)
            yield harness
    finally:
        server.should_exit = True
        await task


async def test_a_requests_line_names_its_request_and_a_consumers_its_case_and_event(
    tmp_path: Path, lines: io.StringIO
) -> None:
    async with served(tmp_path) as city:
        token = await city.login("inspector1")
        body = {"category_code": STREET_VENDING, "description": "占道经营", "location": city.fresh_spot()}
        response = await city.client.post(
            "/intake/reports", json=body, headers={"Authorization": f"Bearer {token}", "X-Request-ID": "walk-in-42"}
        )
        assert response.status_code == 201, response.text
        assert response.headers["x-request-id"] == "walk-in-42"
        case_id = response.json()["id"]
        await city.case_status(case_id, "dispatched")
        unnamed = await city.client.get("/healthz")
        made = unnamed.headers["x-request-id"]
        assert len(made) == 32
    written = [json.loads(line) for line in lines.getvalue().splitlines()]
    (request,) = [line for line in written if line.get("request_id") == "walk-in-42"]
    assert request["logger"] == "uvicorn.access"
    assert '"POST /intake/reports HTTP/1.1" 201' in request["message"]
    assert request["service"] == "intake"
    assert any(line.get("request_id") == made and "GET /healthz" in line["message"] for line in written)
    (routing,) = [line for line in written if line["message"] == "routing the case"]
    assert routing["service"] == "dispatch"
    assert routing["case_id"] == case_id
    assert len(routing["event_id"]) == 36  # the filing's id
    assert "request_id" not in routing
