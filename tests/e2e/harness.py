"""A running city for end-to-end scenarios: every service behind HTTP, a simulated clock, and the
demo city's users logged in.

The same scenarios run in the embedded mode (SQLite, embedded log) and over PostgreSQL + Kafka.
"""

from __future__ import annotations

import asyncio
import io
import math
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from PIL import Image
from shapely.geometry import Point
from sqlalchemy import text

from services.runtime.app import create_app
from services.tools.reconcile import CityFacts, Endpoints, reconcile
from shared.city.model import City
from shared.core.clock import SimulatedClock
from shared.core.ids import new_id
from shared.core.settings import SERVICE_NAMES, Mode, Settings
from shared.db.engine import create_engine
from tests.conftest import admin_url, delete_topics, production_settings

# Monday 16 November 2026, 09:00 in the city (a working day).
START = datetime(2026, 11, 16, 1, 0, tzinfo=UTC)


def _png() -> bytes:
    """A small photo that decodes in full, as the platform checks every upload."""
    buffer = io.BytesIO()
    Image.new("RGB", (16, 12), (200, 120, 40)).save(buffer, "PNG")
    return buffer.getvalue()


PNG = _png()

PASSWORDS = {
    "inspector1": "demo-inspector",
    "operator": "demo-operator",
    "dispatcher": "demo-dispatcher",
    "shiftlead": "demo-shift_lead",
    "hotline": "demo-hotline",
    "video": "demo-video",
    "dept-street": "demo-department",
    "dept-power": "demo-department",
    "dept-sanitation": "demo-department",
    "dept-housing": "demo-department",
    "dept-coordination": "demo-department",
}


class Harness:
    """Drives the city through its HTTP APIs."""

    def __init__(self, client: httpx.AsyncClient, clock: SimulatedClock, city: City) -> None:
        self.client = client
        self.clock = clock
        self.city = city
        self._tokens: dict[str, str] = {}
        self._spots = iter(_spots(city, city.inspector("insp-001").cell_ids))

    def fresh_spot(self) -> dict[str, float]:
        """A point in inspector1's cells that no other scenario has used, more than the duplicate
        radius (50 m) from every other, so scenarios never merge into each other's cases.
        """
        lon, lat = next(self._spots)
        return {"lon": lon, "lat": lat}

    async def login(self, user: str) -> str:
        """The user's bearer token (logged in once)."""
        if user not in self._tokens:
            response = await self.client.post("/auth/token", data={"username": user, "password": PASSWORDS[user]})
            assert response.status_code == 200, response.text
            self._tokens[user] = response.json()["access_token"]
        return self._tokens[user]

    async def call(self, user: str | None, method: str, path: str, expect: int = 200, **kwargs: Any) -> Any:
        """One request as ``user``; asserts the status and returns the JSON body."""
        headers = {"Authorization": f"Bearer {await self.login(user)}"} if user else {}
        response = await self.client.request(method, path, headers=headers, **kwargs)
        assert response.status_code == expect, f"{method} {path}: {response.status_code} {response.text}"
        return response.json()

    async def post(self, user: str | None, path: str, body: Any = None, expect: int = 200, **kwargs: Any) -> Any:
        """POST JSON as ``user``."""
        return await self.call(user, "POST", path, expect, json=body, **kwargs)

    async def get(self, user: str, path: str, expect: int = 200, **kwargs: Any) -> Any:
        """GET as ``user``."""
        return await self.call(user, "GET", path, expect, **kwargs)

    async def eventually(self, user: str, path: str, predicate: Callable[[Any], bool], timeout_s: float = 30) -> Any:
        """Poll ``path`` until ``predicate(body)`` holds (events travel asynchronously)."""
        body: Any = None
        try:
            async with asyncio.timeout(timeout_s):
                while True:
                    response = await self.client.get(
                        path, headers={"Authorization": f"Bearer {await self.login(user)}"}
                    )
                    body = response.json()
                    if response.status_code == 200 and predicate(body):
                        return body
                    await asyncio.sleep(0.05)
        except TimeoutError:
            raise AssertionError(f"{path} never satisfied the condition; last answer: {str(body)[:800]}") from None

    async def case_status(self, case_id: str, status: str) -> dict[str, Any]:
        """Wait until the command center sees the case in ``status``."""
        body: dict[str, Any] = await self.eventually(
            "shiftlead", f"/intake/cases/{case_id}", lambda c: c["status"] == status
        )
        return body

    async def timeline(self, case_id: str, until_type: str | None = None) -> list[dict[str, Any]]:
        """The case's timeline, waiting for an entry of ``until_type`` when given."""
        entries: list[dict[str, Any]] = await self.eventually(
            "shiftlead",
            f"/intake/cases/{case_id}/timeline",
            lambda body: until_type is None or any(e["event_type"] == until_type for e in body),
        )
        return entries

    async def report(self, category: str, *, user: str = "inspector1", **extra: Any) -> dict[str, Any]:
        """An inspector's report at a fresh spot."""
        body = {
            "category_code": category,
            "description": "found on patrol",
            "location": self.fresh_spot(),
            **extra,
        }
        report: dict[str, Any] = await self.post(user, "/intake/reports", body, expect=201)
        return report

    async def reconcile(self, timeout_s: float = 60) -> str:
        """Run the batch recount against the stream until they agree (events travel
        asynchronously); the report, or an assertion error with the last differences.
        """
        city = CityFacts.of(self.city)
        endpoints = Endpoints(str(self.client.base_url))
        headers = {"Authorization": f"Bearer {await self.login('shiftlead')}"}
        out = io.StringIO()
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            out = io.StringIO()
            async with httpx.AsyncClient(
                transport=self.client._transport, base_url=self.client.base_url, headers=headers, timeout=60
            ) as client:
                status = await reconcile(client, endpoints, city, out)
            if status == 0:
                return out.getvalue()
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"the stream and the batch recount disagree:\n{out.getvalue()[:3000]}")
            await asyncio.sleep(0.5)

    def advance(self, delta: timedelta) -> None:
        """Let simulated time pass (tokens expire with it, so everyone logs in again)."""
        self.clock.advance(delta)
        self._tokens.clear()


def _spots(city: City, cell_ids: tuple[str, ...]) -> Iterator[tuple[float, float]]:
    """Two points per cell on a diagonal: on a grid of 100 m cells every pair is 70 m or more apart."""
    metre_lat = 1 / 111_320
    for cell_id in cell_ids:
        polygon = city.grid.polygon(cell_id)
        centre = polygon.centroid
        metre_lon = metre_lat / math.cos(math.radians(centre.y))
        for dx, dy in ((-25, -25), (25, 25)):
            point = Point(centre.x + dx * metre_lon, centre.y + dy * metre_lat)
            if polygon.contains(point):
                yield point.x, point.y


async def _empty_production_schemas(settings: Settings) -> None:
    admin = create_engine(admin_url(settings))
    try:
        async with admin.begin() as connection:
            for schema in SERVICE_NAMES:
                rows = await connection.execute(
                    text("SELECT tablename FROM pg_tables WHERE schemaname = :s AND tablename <> 'alembic_version'"),
                    {"s": schema},
                )
                tables = [f'{schema}."{name}"' for (name,) in rows]
                if tables:
                    await connection.execute(text(f"TRUNCATE {', '.join(tables)}"))
    finally:
        await admin.dispose()


def city_settings(mode: str, tmp_path: Path, **settings_overrides: Any) -> Settings:
    """A scenario's settings over the chosen backend: its own topics, fast relays and timers."""
    suffix = new_id().hex[-10:]
    overrides: dict[str, Any] = {
        "photo_dir": tmp_path / "photos",
        "outbox_poll_seconds": 0.05,
        "timer_interval_seconds": 0.1,
        "topic_case_events": f"e2e-{suffix}.case-events",
        "topic_dead_letter": f"e2e-{suffix}.dead-letter",
        "topic_integration": f"e2e-{suffix}.integration",
        "kafka_partitions": 3,
        # Everyone of a scenario logs in and reports from the test's one address, a month in seconds.
        "rate_public_reports_per_address": "1000000/minute",
        "rate_login_attempts_per_address": "1000000/minute",
        **settings_overrides,
    }
    if mode == "embedded":
        return Settings(mode=Mode.EMBEDDED, data_dir=tmp_path, **overrides)
    # The data folder too is the scenario's own: a folder that served a simulation remembers its
    # clock file, and a scenario started in the checkout's var/ after one would run on that time.
    return production_settings().model_copy(update={"data_dir": tmp_path, **overrides})


@asynccontextmanager
async def running_city(mode: str, tmp_path: Path, **settings_overrides: Any) -> AsyncIterator[Harness]:
    """Every service in one app over the chosen backend, on a simulated clock."""
    clock = SimulatedClock(START)
    settings = city_settings(mode, tmp_path, **settings_overrides)
    if mode != "embedded":
        await _empty_production_schemas(settings)
    app = create_app(["all"], settings, clock)
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://citycase", timeout=30) as client:
                harness = Harness(client, clock, app.state.runtime.shared.city)
                await harness.eventually("shiftlead", "/readyz", lambda body: body.get("ready") is True)
                yield harness
    finally:
        if mode != "embedded":
            await delete_topics(
                settings, [settings.topic_case_events, settings.topic_dead_letter, settings.topic_integration]
            )
