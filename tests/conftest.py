"""Fixtures shared by every test layer.

The ``backend`` fixture runs a contract test twice: on the embedded backend (SQLite files and the
embedded durable log) and on the production one (the real PostgreSQL and the real Kafka broker
that ``make test`` starts through deploy/local). Nothing on those paths is mocked.
"""

from __future__ import annotations

import asyncio
import os
from asyncio.subprocess import PIPE, STDOUT
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from sqlalchemy import MetaData, text

from services.runtime.registry import load_specs
from shared.core.clock import SystemClock
from shared.core.ids import new_id
from shared.core.settings import Mode, Settings
from shared.db.engine import create_engine
from shared.db.migrations import upgrade_to_head
from shared.messaging.bus import Bus, TopicSpec
from shared.messaging.bus.embedded import EmbeddedLog
from shared.messaging.bus.kafka import KafkaBus
from shared.messaging.store import ServiceStore
from shared.messaging.tables import service_metadata

REPO = Path(__file__).resolve().parent.parent
TEST_PARTITIONS = 3


def production_settings() -> Settings:
    """Settings pointing at the local PostgreSQL test database and the local broker."""
    return Settings(
        mode=Mode.PRODUCTION,
        pg_database=os.environ.get("CITYCASE_TEST_PG_DATABASE", "citycase_test"),
        jwt_secret="test-secret-for-the-local-suite-only-0123456789",
        allow_plain_passwords=True,  # the demo city's log-ins
    )


@dataclass
class Backend:
    """A store-and-bus pair under test, with fresh topics of its own."""

    name: str
    bus: Bus
    settings: Settings
    case_events: str
    dead_letter: str
    stores: list[ServiceStore] = field(default_factory=list)
    stop_bus: Callable[[], Awaitable[None]] | None = None
    start_bus: Callable[[], Awaitable[None]] | None = None

    async def store(self, service: str, metadata: MetaData | None = None) -> ServiceStore:
        """The migrated, emptied store of ``service``; extra test tables go in ``metadata``."""
        engine = create_engine(self.settings.database_url(service), pool_size=5)
        await upgrade_to_head(service, engine)
        metadata = metadata or service_metadata()
        async with engine.begin() as connection:
            await connection.run_sync(metadata.create_all)
            for table in metadata.sorted_tables:
                await connection.execute(table.delete())
        store = ServiceStore(service, engine, metadata, clock=SystemClock(), case_events_topic=self.case_events)
        self.stores.append(store)
        return store

    async def close(self) -> None:
        """Drop the tables tests added to service schemas, and release the connections."""
        for store in self.stores:
            service_tables = set(load_specs([store.service])[0].metadata.tables)
            test_tables = [t for t in store.metadata.sorted_tables if t.name not in service_tables]
            async with store.engine.begin() as connection:
                for table in reversed(test_tables):
                    await connection.run_sync(table.drop, checkfirst=True)
            await store.engine.dispose()


@pytest.fixture(params=["embedded", "postgres-kafka"])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    """Each contract test runs on both backends."""
    suffix = new_id().hex[-12:]
    case_events, dead_letter = f"test-{suffix}.case-events", f"test-{suffix}.dead-letter"
    if request.param == "embedded":
        settings = Settings(mode=Mode.EMBEDDED, data_dir=tmp_path)
        log = EmbeddedLog(settings.event_log_path)
        bus: Bus = log
        stop_bus: Callable[[], Awaitable[None]] = log.close
        start_bus: Callable[[], Awaitable[None]] = log.start
    else:
        settings = production_settings()
        bus = KafkaBus(settings.kafka_bootstrap_servers, client_id=f"test-{suffix}")
        stop_bus, start_bus = _broker_command("down"), _broker_command("up")
    await bus.start()
    await bus.ensure_topics([TopicSpec(case_events, TEST_PARTITIONS), TopicSpec(dead_letter, 1)])
    backend = Backend(request.param, bus, settings, case_events, dead_letter, stop_bus=stop_bus, start_bus=start_bus)
    try:
        yield backend
    finally:
        await bus.close()
        await backend.close()
        if isinstance(bus, KafkaBus):
            await delete_topics(settings, [case_events, dead_letter])


def _broker_command(action: str) -> Callable[[], Awaitable[None]]:
    async def run() -> None:
        process = await asyncio.create_subprocess_exec(
            str(REPO / "deploy/local/kafka.sh"), action, stdout=PIPE, stderr=STDOUT
        )
        output, _ = await process.communicate()
        if process.returncode != 0:
            raise RuntimeError(f"kafka.sh {action} failed: {output.decode(errors='replace')}")

    return run


async def delete_topics(settings: Settings, names: list[str]) -> None:
    """Remove a test's topics from the local broker."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        await admin.delete_topics(names)
    finally:
        await admin.close()


def admin_url(settings: Settings) -> str:
    """The test database as its admin role, a member of every service role."""
    return f"postgresql+asyncpg://citycase_admin:citycase_admin@{settings.pg_host}:{settings.pg_port}/{settings.pg_database}"


@pytest.fixture
async def pg_admin() -> AsyncIterator[Callable[[str], Awaitable[list[tuple[object, ...]]]]]:
    """Run SQL as the test database's admin role (to check what the service roles may do)."""
    settings = production_settings()
    engine = create_engine(admin_url(settings))

    async def query(sql: str) -> list[tuple[object, ...]]:
        async with engine.begin() as connection:
            return [tuple(row) for row in (await connection.execute(text(sql))).all()]

    yield query
    await engine.dispose()
