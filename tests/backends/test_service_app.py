"""The app factory: every service mounted under its prefix, health, readiness, OpenAPI, CLI."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from alembic.script import ScriptDirectory
from fastapi import FastAPI

from services.runtime.app import create_app
from shared.core.settings import SERVICE_NAMES, Mode, Settings
from shared.db.migrations import alembic_config
from tests.conftest import REPO, production_settings


@asynccontextmanager
async def serve(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its lifespan running, behind an in-process HTTP client."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://citycase") as client:
            yield client


async def wait_ready(client: httpx.AsyncClient, path: str = "/readyz") -> httpx.Response:
    """Poll readiness until it says ready (the bus connects in the background)."""
    async with asyncio.timeout(30):
        while (response := await client.get(path)).status_code != 200:
            await asyncio.sleep(0.1)
    return response


def _settings(mode: str, tmp_path: Path) -> Settings:
    return Settings(mode=Mode.EMBEDDED, data_dir=tmp_path) if mode == "embedded" else production_settings()


@pytest.mark.parametrize("mode", ["embedded", "production"])
async def test_all_services_run_in_one_process_each_under_its_prefix(mode: str, tmp_path: Path) -> None:
    async with serve(create_app(["all"], _settings(mode, tmp_path))) as client:
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        ready = (await wait_ready(client)).json()
        checks = {
            **{f"{s}.database": "ok" for s in SERVICE_NAMES},
            "bus": "ok",
            **{f"{s}.outbox": "ok" for s in SERVICE_NAMES},
        }
        assert ready == {"ready": True, "checks": checks}
        for service in SERVICE_NAMES:
            assert (await client.get(f"/{service}/healthz")).json() == {"status": "ok", "service": service}
            checks = (await wait_ready(client, f"/{service}/readyz")).json()["checks"]
            assert checks == {"database": "ok", "bus": "ok", "outbox": "ok"}
            spec = (await client.get(f"/{service}/openapi.json")).json()
            assert spec["info"]["title"] == f"citycase {service}"
            assert (await client.get(f"/{service}/docs")).status_code == 200
        assert "citycase_outbox_published_total" in (await client.get("/metrics")).text


async def test_one_service_alone_serves_only_its_own_prefix() -> None:
    async with serve(create_app(["dispatch"], production_settings())) as client:
        await wait_ready(client, "/dispatch/readyz")
        assert (await client.get("/intake/healthz")).status_code == 404


async def test_readiness_reports_the_bus_down_and_writes_still_start(tmp_path: Path) -> None:
    settings = production_settings().model_copy(update={"kafka_bootstrap_servers": "127.0.0.1:1"})
    async with serve(create_app(["intake"], settings)) as client:
        response = await client.get("/readyz")
        assert response.status_code == 503
        body = response.json()
        assert body["ready"] is False
        assert body["checks"]["intake.database"] == "ok"
        assert body["checks"]["bus"].startswith("down:")


async def test_errors_have_one_json_shape(tmp_path: Path) -> None:
    async with serve(create_app(["intake"], Settings(mode=Mode.EMBEDDED, data_dir=tmp_path))) as client:
        response = await client.get("/intake/no-such-thing")
        assert response.status_code == 404
        assert response.json() == {"code": "http_404", "message": "Not Found", "details": None}


def test_cli_migrates_the_embedded_schemas(tmp_path: Path) -> None:
    def migrate() -> list[str]:
        result = subprocess.run(
            [sys.executable, "-m", "services", "migrate", "--mode", "embedded"],
            cwd=REPO,
            env={"CITYCASE_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout.splitlines()

    heads = {s: ScriptDirectory.from_config(alembic_config(s)).get_current_head() for s in SERVICE_NAMES}
    # One line per service: what the first run did, and that the second found nothing to do.
    assert migrate() == [f"{s}: schema new → {heads[s]}" for s in SERVICE_NAMES]
    assert migrate() == [f"{s}: schema at {heads[s]}" for s in SERVICE_NAMES]
    assert sorted(p.name for p in tmp_path.glob("*.db")) == sorted(f"{s}.db" for s in SERVICE_NAMES)


def test_cli_refuses_an_unknown_service() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "services", "run", "parking"], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert result.returncode == 2
    assert "invalid choice: 'parking'" in result.stderr


def test_cli_checks_a_city_folder(tmp_path: Path) -> None:
    good = subprocess.run(
        [sys.executable, "-m", "services", "city"], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert good.returncode == 0, good.stderr
    assert "grid cells: 4014" in good.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "services", "city", str(tmp_path)], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert bad.returncode == 1
    assert "grid.geojson: file not found" in bad.stderr
