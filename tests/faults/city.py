"""The city the faults strike: each service its own process (``services.tools.launcher``) on the
local PostgreSQL and Kafka, with a database, topics and consumer groups of its own, and the check
that it is whole again after a fault.

Whole means: every outbox sent, every consumer group committed to the end of the log (and the
assessment stream's own positions there too), ``reconcile`` finding 0 differences between the
stream and the batch recount, every report a client was answered for on file, every filed case
known to every service and dispatched once, and no step of a case recorded twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.runtime.app import create_app
from services.tools.launcher import ServiceProcesses, launch, settings_env
from services.tools.reconcile import CityFacts, Endpoints, reconcile
from shared.city.loader import load_city
from shared.city.model import City
from shared.core.ids import new_id
from shared.core.settings import SERVICE_NAMES, Settings
from shared.db.engine import create_engine
from shared.messaging.bus import TopicSpec
from shared.messaging.bus.kafka import KafkaBus
from tests.conftest import admin_url, production_settings
from tests.e2e.harness import _empty_production_schemas
from tests.faults import infra
from tests.faults.load import Load, Referee

# A database of the suite's own: it restarts and hangs PostgreSQL, and must not share its tables
# with tests that empty them.
DATABASE = os.environ.get("CITYCASE_FAULTS_PG_DATABASE", "citycase_faults")
WHOLE_TIMEOUT_S = 90.0
DEAD_LETTER_PARTITIONS = 1  # as the services make it (services.runtime.runtime.topics)
_KILLED_TIMEOUT_S = 10.0
# Moments to kill a process at: one of its transactions has written and not committed, and is
# the relay marking a published batch sent (so the batch is published again), or anything else
# (a consumer applying a batch, a request: its effects are lost with the transaction).
MOMENTS = {
    "marking a published batch sent": "query LIKE 'UPDATE outbox SET sent_at%'",
    "applying a batch": "query NOT LIKE 'UPDATE outbox SET sent_at%'",
}
# The steps of the load's cases that happen once in a case's life: a second is an event applied twice.
_ONCE_PER_CASE = [
    "report.received",
    "case.filed",
    "case.dispatched",
    "case.accepted",
    "case.handled",
    "case.check_requested",
    "case.check_passed",
    "case.closed",
]


@dataclass
class FaultCity:
    """The running city, its load, the referee of the answers, and the admin's view of its data."""

    settings: Settings
    city: City
    processes: ServiceProcesses
    ports: Mapping[str, int]
    log_dir: Path
    admin: AsyncEngine
    groups: Sequence[str]
    referee: Referee = field(default_factory=Referee)
    # Records on the dead-letter topic that a test put there on purpose: any other is an event a
    # consumer could not apply.
    dead_letters_expected: int = 0
    load: Load = field(init=False)
    _logs: list[IO[bytes]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.load = Load(self.city, self.processes.urls, self.referee)

    async def kill(self, service: str, moment: str, timeout_s: float) -> None:
        """kill -9 the service's process at ``moment`` (one of ``MOMENTS``: what one of its
        transactions is doing, uncommitted, as PostgreSQL shows it), wait until it is gone, and
        start it again (not waiting for it to be ready)."""
        watch = text(
            "SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND usename = :role"
            f" AND backend_xid IS NOT NULL AND {MOMENTS[moment]} LIMIT 1"
        )
        try:
            async with self.admin.connect() as connection, asyncio.timeout(timeout_s):
                # Autocommit: each look is a fresh snapshot of the activity, as fast as it answers.
                watching = await connection.execution_options(isolation_level="AUTOCOMMIT")
                while (await watching.execute(watch, {"role": f"citycase_{service}"})).first() is None:
                    pass
                os.kill(self.processes.pids[service], signal.SIGKILL)
        except TimeoutError:
            raise AssertionError(f"{service} was never seen {moment} within {timeout_s:.0f}s") from None
        async with asyncio.timeout(_KILLED_TIMEOUT_S):
            while self.processes.alive():
                await asyncio.sleep(0.05)
        log = (self.log_dir / f"{service}.log").open("ab")
        self._logs.append(log)
        await self.processes.start(service, self.ports[service], self.settings, log)

    def close_logs(self) -> None:
        """Close this side of the logs of the processes started again."""
        for log in self._logs:
            log.close()

    async def wait_ready(self) -> None:
        """Until every process says it is ready (its database and the bus answer), bounded."""
        await self.processes.wait_ready()

    async def outbox_cli(self, *commands: Sequence[str]) -> str:
        """``python -m services outbox ...`` with the city's settings, as an operator runs it: each
        of ``commands`` (the arguments after ``outbox``), in one interpreter (each start costs
        seconds on a busy machine); their output."""
        script = "import json, sys; from services.tools.cli import main; sys.exit(max(map(main, json.load(sys.stdin))))"
        argvs = [["outbox", *command, "--mode", "production"] for command in commands]
        return await infra.run([sys.executable, "-c", script], env=settings_env(self.settings), stdin=json.dumps(argvs))

    async def until_parked(self, expected: Mapping[str, int], timeout_s: float) -> None:
        """Wait (bounded) until each service's outbox holds the ``expected`` number of parked rows."""
        parked: dict[str, int] = {}
        try:
            async with asyncio.timeout(timeout_s):
                while parked != expected:
                    for service in expected:
                        sql = f"SELECT count(*) FROM {service}.outbox WHERE parked_at IS NOT NULL"
                        parked[service] = (await self._one(sql))[0]
                    await asyncio.sleep(0.2)
        except TimeoutError:
            raise AssertionError(f"parked rows: {parked}, expected {dict(expected)}") from None

    async def assert_whole(self, timeout_s: float = WHOLE_TIMEOUT_S) -> str:
        """Wait (bounded) until nothing is on its way any more, then check the city is whole;
        ``reconcile``'s report."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while (behind := await self.behind()) and loop.time() < deadline:
            await asyncio.sleep(0.5)
        assert not behind, f"the city did not catch up within {timeout_s:.0f}s: {behind}"
        dead_letters = sum((await self._end_offsets(self.settings.topic_dead_letter, DEAD_LETTER_PARTITIONS)).values())
        assert dead_letters == self.dead_letters_expected, (
            f"{dead_letters} dead letter(s), {self.dead_letters_expected} expected: a consumer could not apply an event"
        )
        await self._assert_nothing_lost_nor_doubled()
        return await self._reconcile()

    async def behind(self) -> dict[str, Any]:
        """What is still on its way: unsent (or parked) outbox rows per service, consumer groups
        and the stream's own positions short of the end of the log. Empty when all is through."""
        behind: dict[str, Any] = {}
        unsent = {}
        for service in SERVICE_NAMES:
            (count,) = await self._one(f"SELECT count(*) FROM {service}.outbox WHERE sent_at IS NULL")
            if count:
                unsent[service] = count
        if unsent:
            behind["unsent outbox rows"] = unsent
        ends = await self._end_offsets(self.settings.topic_case_events, self.settings.kafka_partitions)
        lagging = await self._lagging_groups(ends)
        if lagging:
            behind["consumer groups short of the end (records)"] = lagging
        positions = dict(
            await self._rows(
                "SELECT partition, next_offset FROM assessment.consumer_positions WHERE topic = :topic",
                topic=self.settings.topic_case_events,
            )
        )
        stream = {p: end - positions.get(p, 0) for p, end in ends.items() if positions.get(p, 0) != end}
        if stream:
            behind["assessment stream short of the end (records)"] = stream
        return behind

    async def _assert_nothing_lost_nor_doubled(self) -> None:
        on_file = {str(r) for (r,) in await self._rows("SELECT id FROM intake.reports")}
        lost = [r for r in self.load.progress.reports if r not in on_file]
        assert not lost, f"{len(lost)} report(s) answered 201 are not on file: {lost[:5]}"
        cases = {
            service: {str(c) for (c,) in await self._rows(f"SELECT id FROM {service}.cases")}
            for service in ("intake", "dispatch", "handling", "closure")
        }
        for service in ("dispatch", "handling", "closure"):
            missing = cases["intake"] - cases[service]
            assert not missing, f"{len(missing)} filed case(s) never reached {service}: {sorted(missing)[:5]}"
        filed = len(cases["intake"])
        dispatched = await self._one("SELECT count(DISTINCT case_id), count(*) FROM dispatch.assignments")
        assert dispatched == (filed, filed), f"{filed} cases; dispatched (cases, assignments): {dispatched}"
        twice = await self._rows(
            "SELECT event_type, case_id, count(*) FROM intake.timeline WHERE event_type = ANY(:types)"
            " GROUP BY event_type, case_id HAVING count(*) > 1",
            types=_ONCE_PER_CASE,
        )
        assert not twice, f"steps recorded twice in a case's timeline: {twice[:5]}"

    async def _reconcile(self) -> str:
        urls = self.processes.urls
        login = {"username": "shiftlead", "password": _password(self.city, "shiftlead")}
        async with httpx.AsyncClient(timeout=60) as client:
            token = (await client.post(f"{urls['intake']}/auth/token", data=login)).json()["access_token"]
            client.headers["Authorization"] = f"Bearer {token}"
            out = io.StringIO()
            status = await reconcile(client, Endpoints(urls["intake"], urls), CityFacts.of(self.city), out)
        assert status == 0, f"the stream and the batch recount disagree:\n{out.getvalue()[:3000]}"
        return out.getvalue()

    async def _rows(self, sql: str, **parameters: Any) -> list[tuple[Any, ...]]:
        async with self.admin.connect() as connection:
            return [tuple(row) for row in await connection.execute(text(sql), parameters)]

    async def _one(self, sql: str) -> tuple[Any, ...]:
        (row,) = await self._rows(sql)
        return row

    async def _end_offsets(self, topic: str, partitions: int) -> dict[int, int]:
        """The end offset of each partition of ``topic`` (none when it does not exist)."""
        reader = AIOKafkaConsumer(bootstrap_servers=self.settings.kafka_bootstrap_servers)
        await reader.start()
        try:
            if topic not in await reader.topics():
                return {}
            ends = await reader.end_offsets([TopicPartition(topic, p) for p in range(partitions)])
            return {tp.partition: end for tp, end in ends.items()}
        finally:
            await reader.stop()

    async def _lagging_groups(self, ends: Mapping[int, int]) -> dict[str, dict[int, int]]:
        partitions = [TopicPartition(self.settings.topic_case_events, p) for p in ends]
        admin = AIOKafkaAdminClient(bootstrap_servers=self.settings.kafka_bootstrap_servers)
        await admin.start()
        try:
            lagging = {}
            for group in self.groups:
                committed = await admin.list_consumer_group_offsets(group, partitions=partitions)
                short = {}
                for tp in partitions:
                    done = committed.get(tp)
                    if (gap := ends[tp.partition] - (done.offset if done is not None else 0)) != 0:
                        short[tp.partition] = gap
                if short:
                    lagging[group] = short
            return lagging
        finally:
            await admin.close()


def _password(city: City, username: str) -> str:
    (password,) = [u.password for u in city.users if u.username == username and u.password is not None]
    return password


def consumer_groups(settings: Settings) -> list[str]:
    """Every consumer group of the case event log, as the broker knows it (with the city's prefix):
    the inbox consumers and the tracked one (the assessment stream, whose commits are hints). The
    integration topic's consumer is not among them: it reads another topic."""
    app = create_app(["all"], settings)
    return [
        settings.kafka_group_prefix + consumer.spec.name
        for service in app.state.runtime.services
        for consumer in (*service.consumers, *service.tracked_consumers)
        if settings.topic_case_events in consumer.spec.topics
    ]


def fault_settings(data_dir: Path) -> Settings:
    """The city's settings: its own database, topics and groups; a statement timeout short enough
    that a hung database is a 503 within seconds (the pool keeps its defaults: a burst of reports
    is load, not an outage); and no topic made by the services, so that the dead-letter topic is
    missing until the suite makes it."""
    suffix = new_id().hex[-10:]
    return production_settings().model_copy(
        update={
            "pg_database": DATABASE,
            "pg_statement_timeout_seconds": 4.0,
            "data_dir": data_dir,
            "topic_case_events": f"faults-{suffix}.case-events",
            "topic_dead_letter": f"faults-{suffix}.dead-letter",
            "topic_integration": f"faults-{suffix}.integration",
            "kafka_partitions": 3,
            "kafka_group_prefix": f"faults-{suffix}.",
            "kafka_create_topics": False,
            "outbox_poll_seconds": 0.05,
            "timer_interval_seconds": 1.0,
            "rate_public_reports_per_address": "1000000/minute",
            "rate_login_attempts_per_address": "1000000/minute",
        }
    )


def dead_letter_topic(settings: Settings) -> TopicSpec:
    """The dead-letter topic as the services would make it."""
    return TopicSpec(settings.topic_dead_letter, DEAD_LETTER_PARTITIONS, {"retention.ms": "-1"})


async def create_topics(settings: Settings, topics: list[TopicSpec]) -> None:
    """Create ``topics`` on the broker."""
    bus = KafkaBus(settings.kafka_bootstrap_servers, client_id="faults-suite")
    await bus.start()
    try:
        await bus.ensure_topics(topics)
    finally:
        await bus.close()


async def _delete_topics(settings: Settings) -> None:
    ours = {settings.topic_case_events, settings.topic_dead_letter, settings.topic_integration}
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        # The dead-letter topic exists only if the suite got as far as making it.
        mine = [topic for topic in await admin.list_topics() if topic in ours]
        if mine:
            await admin.delete_topics(mine)
    finally:
        await admin.close()


def _free_ports() -> dict[str, int]:
    ports = {}
    for service in SERVICE_NAMES:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            ports[service] = probe.getsockname()[1]
    return ports


@contextlib.asynccontextmanager
async def fault_city(data_dir: Path) -> AsyncIterator[FaultCity]:
    """The city running for the block; afterwards its processes stopped, its topics deleted, and
    PostgreSQL and the broker running, whatever happened meanwhile."""
    settings = fault_settings(data_dir)
    await infra.restore([DATABASE])
    await _empty_production_schemas(settings)
    await create_topics(
        settings,
        [
            TopicSpec(settings.topic_case_events, settings.kafka_partitions, {"retention.ms": "-1"}),
            TopicSpec(settings.topic_integration, settings.kafka_partitions),
        ],
    )
    admin = create_engine(admin_url(settings))
    ports, log_dir = _free_ports(), data_dir / "logs"
    try:
        async with launch(settings, SERVICE_NAMES, ports, log_dir=log_dir) as processes:
            city = FaultCity(
                settings, load_city(settings.city_dir), processes, ports, log_dir, admin, consumer_groups(settings)
            )
            try:
                yield city
            finally:
                await city.load.aclose()
                city.close_logs()
    finally:
        await infra.restore()
        await admin.dispose()
        await _delete_topics(settings)
