"""Errors at the edge: an outage is a 503 that neither logs a traceback nor ends the client's
connection; only a real bug is a 500."""

from __future__ import annotations

import logging

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from shared.web.errors import install_error_handlers


def app_raising(error: Exception) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/boom")
    async def boom() -> None:
        raise error

    return app


@pytest.mark.parametrize(
    "error",
    [
        PoolTimeout("QueuePool limit of size 20 overflow 0 reached, connection timed out, timeout 5.00"),
        OperationalError("SELECT 1", {}, ConnectionRefusedError("connection refused")),
        ConnectionResetError("reset by peer"),
        TimeoutError(),
    ],
)
async def test_an_unavailable_dependency_is_a_503_without_a_traceback(
    error: Exception, caplog: pytest.LogCaptureFixture
) -> None:
    transport = httpx.ASGITransport(app=app_raising(error))  # raises what the app re-raises
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get("/boom")
    assert response.status_code == 503
    assert response.json()["code"] == "dependency_unavailable"
    assert response.headers["retry-after"] == "5"
    assert "connection" not in response.headers
    assert not [record for record in caplog.records if record.exc_info]


async def test_a_bug_is_still_a_500_with_its_traceback_logged(caplog: pytest.LogCaptureFixture) -> None:
    bug = IntegrityError("INSERT", {}, ValueError("duplicate key"))
    transport = httpx.ASGITransport(app=app_raising(bug), raise_app_exceptions=False)
    with caplog.at_level(logging.ERROR):
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            response = await client.get("/boom")
    assert response.status_code == 500
    assert any(record.exc_info for record in caplog.records)
