"""``python -m services run SERVICE --workers N``: N processes serve one port, each a whole service
(its consumers, a relay candidate) sharing nothing but the database and the bus, as replicas do;
uvicorn's supervisor replaces a worker that dies. On PostgreSQL and Kafka only: the embedded city
belongs to one process, and ``--workers`` refuses it."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import httpx

from services.runtime.accounts import account_of
from services.tools.launcher import settings_env
from shared.city.loader import load_city
from shared.core.auth import Role, TokenIssuer
from shared.core.clock import SystemClock
from shared.messaging.bus.kafka import KafkaBus
from tests.conftest import delete_topics
from tests.e2e.harness import _empty_production_schemas, city_settings
from tests.e2e.test_exposure import free_port
from tests.service.conftest import point_in

REPO = Path(__file__).resolve().parents[2]
REPORTS = 30


def _workers(supervisor: int) -> set[int]:
    """The supervisor's workers (its children but multiprocessing's resource tracker)."""
    children = Path(f"/proc/{supervisor}/task/{supervisor}/children").read_text().split()
    return {int(pid) for pid in children if b"resource_tracker" not in Path(f"/proc/{pid}/cmdline").read_bytes()}


async def _until(check: object, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if await check():  # type: ignore[operator]
                return
        except (httpx.HTTPError, OSError):
            pass
        await asyncio.sleep(0.2)
    raise AssertionError(f"not within {timeout_s}s")


async def test_workers_share_one_port_and_one_that_dies_is_replaced(tmp_path: Path) -> None:
    settings = city_settings("production", tmp_path)
    await _empty_production_schemas(settings)
    city = load_city(settings.city_dir)
    inspector = next(account_of(user).principal for user in city.users if user.role.value == Role.INSPECTOR.value)
    token = TokenIssuer(settings.jwt_secret, SystemClock(), ttl=timedelta(hours=1)).issue_machine(inspector)
    port = free_port()
    command = ["run", "intake", "--workers", "2", "--host", "127.0.0.1", "--port", str(port)]
    supervisor = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services",
        *command,
        env={**os.environ, **settings_env(settings)},
        cwd=REPO,
        stdout=asyncio.subprocess.DEVNULL,
    )
    bus = KafkaBus(settings.kafka_bootstrap_servers, client_id="citycase-test-workers")
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {token}"}, timeout=30
        ) as client:

            async def ready() -> bool:
                return (await client.get("/readyz")).status_code == 200 and len(_workers(supervisor.pid)) == 2

            await _until(ready)
            first = _workers(supervisor.pid)

            async def report(n: int) -> str:
                lon, lat = point_in(city, city.cells[n % len(city.cells)].id)
                body = {
                    "category_code": "01-01-04" if n % 2 else "02-05-01",
                    "description": f"report {n}",
                    "location": {"lon": lon, "lat": lat},
                    "client_ref": f"workers-{n}",
                }
                answer = await client.post("/intake/reports", json=body)
                assert answer.status_code == 201, answer.text
                return str(answer.json()["id"])

            ids = await asyncio.gather(*(report(n) for n in range(REPORTS)))
            assert len(set(ids)) == REPORTS

            async def published_once() -> bool:
                # Each report's two events (received, filed), sent by whichever worker's relay leads.
                ends = await bus.end_offsets(settings.topic_case_events)
                return sum(ends.values()) == 2 * REPORTS

            await _until(published_once)
            await asyncio.sleep(2)  # a second relay publishing the same rows would show by now
            assert await published_once()

            os.kill(min(first), signal.SIGKILL)

            async def replaced() -> bool:
                now = _workers(supervisor.pid)
                return len(now) == 2 and min(first) not in now and (await client.get("/readyz")).status_code == 200

            await _until(replaced)
            await report(REPORTS)
        supervisor.send_signal(signal.SIGTERM)
        async with asyncio.timeout(60):
            assert await supervisor.wait() == 0
    finally:
        if supervisor.returncode is None:
            supervisor.kill()
            await supervisor.wait()
        await bus.close()
        await delete_topics(
            settings, [settings.topic_case_events, settings.topic_dead_letter, settings.topic_integration]
        )


def test_workers_are_refused_in_embedded_mode(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "services", "run", "intake", "--mode", "embedded", "--workers", "2"],
        env={**os.environ, "CITYCASE_DATA_DIR": str(tmp_path)},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert "--workers needs production mode" in done.stderr
