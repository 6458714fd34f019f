"""The running parts of a process: the bus, and per service its store, relay and consumers.

Writes never wait for the bus: a service whose broker is down still accepts requests, the outbox
fills, and the relay drains it when the broker is back. Readiness says which dependency is down.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import text

from services.runtime.accounts import account_of
from services.runtime.calendar import city_calendar, follow_official_years
from shared.city.calendar import OfficialYears, WorkingCalendar
from shared.city.loader import load_city
from shared.city.model import City
from shared.core.auth import Directory, TokenIssuer
from shared.core.clock import Clock
from shared.core.outage_logs import StateLog, quiet_library_logs
from shared.core.photos import FilePhotoStore, PhotoStore
from shared.core.settings import DEV_JWT_SECRET, Mode, Settings
from shared.db.engine import create_engine
from shared.db.migrations import upgrade_to_head
from shared.integration.endpoints import Integrations, load_integrations
from shared.messaging.bus import Bus, TopicSpec
from shared.messaging.bus.embedded import EmbeddedLog
from shared.messaging.bus.kafka import DEFAULT_FETCH_BYTES_PER_PARTITION, KafkaBus
from shared.messaging.consumer import ConsumerRunner
from shared.messaging.parking import outbox_health
from shared.messaging.relay import OutboxRelay
from shared.messaging.store import ServiceStore
from shared.messaging.tracked import TrackedConsumer
from shared.service.context import Resources, ServiceContext
from shared.service.spec import ServiceSpec
from shared.web.limits import RateLimits, Rules

log = logging.getLogger(__name__)

_BUS_RETRY_S = 2.0
# How often a connected bus is asked whether it still answers, to log when an outage ends.
_BUS_WATCH_S = 5.0


def settle_heap() -> None:
    """Move what the process has built to start (the city, the catalogue, the app, the libraries)
    out of the garbage collector's way: every full collection walks the whole tracked heap, and
    these objects live as long as the process. Measured on the stream's replay: a sixth to a third
    faster (bench/README.md).
    """
    gc.collect()
    gc.freeze()


def build_bus(
    settings: Settings, client_id: str, *, fetch_bytes_per_partition: int = DEFAULT_FETCH_BYTES_PER_PARTITION
) -> Bus:
    """The bus of the configured mode."""
    if settings.mode is Mode.EMBEDDED:
        return EmbeddedLog(settings.event_log_path)
    return KafkaBus(
        settings.kafka_bootstrap_servers,
        client_id=client_id,
        replication_factor=settings.kafka_replication_factor,
        group_prefix=settings.kafka_group_prefix,
        fetch_bytes_per_partition=fetch_bytes_per_partition,
    )


def topics(settings: Settings) -> list[TopicSpec]:
    """The topics every process makes sure of at start-up."""
    return [
        # Kept forever: the log is what the assessment is rebuilt from.
        TopicSpec(settings.topic_case_events, settings.kafka_partitions, {"retention.ms": "-1"}),
        # Kept until an operator has dealt with them: Kafka's default week would drop dead letters unseen.
        TopicSpec(settings.topic_dead_letter, 1, {"retention.ms": "-1"}),
        TopicSpec(settings.topic_integration, settings.kafka_partitions),
    ]


class ServiceRuntime:
    """One service inside a process."""

    def __init__(self, spec: ServiceSpec, shared: SharedParts, bus: Bus) -> None:
        settings = shared.settings
        self.spec = spec
        self.settings = settings
        self.bus = bus
        self.store = ServiceStore(
            spec.name,
            create_engine(
                settings.database_url(spec.name),
                pool_size=settings.pg_pool_size,
                pool_timeout_s=settings.pg_pool_timeout_seconds,
                statement_timeout_s=settings.pg_statement_timeout_seconds,
            ),
            spec.metadata,
            clock=shared.clock,
            case_events_topic=settings.topic_case_events,
        )
        self.context = ServiceContext(
            service=spec.name,
            settings=settings,
            clock=shared.clock,
            store=self.store,
            city=shared.city,
            calendar=shared.calendar,
            photos=shared.photos,
            resources=Resources(spec.resources(self.store, settings)),
            integrations=shared.integrations,
        )
        self.relay = OutboxRelay(
            self.store,
            bus,
            batch_size=settings.outbox_batch_size,
            poll_seconds=settings.outbox_poll_seconds,
            retention=timedelta(hours=settings.outbox_retention_hours),
            max_attempts=settings.outbox_max_attempts,
            # A round hung past the time readiness calls a stall is given up, and its leadership with it.
            round_timeout=timedelta(seconds=settings.outbox_stall_seconds),
        )
        self.consumers = self._consumers()
        self.tracked_consumers = self._tracked_consumers()

    def _consumers(self) -> list[ConsumerRunner]:
        return [
            ConsumerRunner(
                consumer,
                self.store,
                self.bus,
                dead_letter_topic=self.settings.topic_dead_letter,
                batch_size=self.settings.consumer_batch_size,
                max_attempts=self.settings.consumer_max_attempts,
            )
            for consumer in self.spec.consumers(self.context)
        ]

    def _tracked_consumers(self) -> list[TrackedConsumer]:
        return [
            TrackedConsumer(
                consumer,
                self.store,
                self.bus,
                self.spec.metadata.tables["consumer_positions"],
                dead_letter_topic=self.settings.topic_dead_letter,
                batch_size=self.settings.stream_batch_size,
            )
            for consumer in self.spec.tracked_consumers(self.context)
        ]

    @property
    def name(self) -> str:
        """The service's name, also its path prefix and schema."""
        return self.spec.name

    async def migrate(self) -> None:
        """Bring the service's schema up to date, on a connection of its own without the
        statement time limit that guards requests (a migration may rewrite a large table)."""
        if not self.store.on_postgresql:
            await upgrade_to_head(self.spec.name, self.store.engine)
            return
        engine = create_engine(self.settings.database_url(self.spec.name), pool_size=1)
        try:
            await upgrade_to_head(self.spec.name, engine)
        finally:
            await engine.dispose()

    def background_tasks(self) -> list[asyncio.Task[None]]:
        """Start the relay, the consumers and the service's own workers (e.g. deadline timers)."""
        tasks = [asyncio.create_task(self.relay.run(), name=f"{self.name}-relay")]
        tasks += [asyncio.create_task(r.run(), name=f"{self.name}-{r.spec.name}") for r in self.consumers]
        tasks += [asyncio.create_task(r.run(), name=f"{self.name}-{r.spec.name}") for r in self.tracked_consumers]
        tasks += [
            asyncio.create_task(worker(), name=f"{self.name}-worker") for worker in self.spec.workers(self.context)
        ]
        return tasks

    async def ensure_database_answers(self) -> None:
        """Raise unless the service's database answers."""
        async with self.store.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def relay_stall(self) -> str | None:
        """Why this process's relay counts as stalled, if it does: it leads (or runs alone), rows
        wait to be published, and it has made no progress for longer than ``outbox_stall_seconds``.
        A replica whose relay stands by is not blamed for the leader's stall: the leader's own
        readiness says it (or its probe times out, when it hangs), and taking every replica out of
        service would stop the city's intake over one relay; the outbox gauges are the same in all.
        """
        idle = self.relay.stalled_for()
        if idle is None or idle <= self.settings.outbox_stall_seconds:
            return None
        health = await outbox_health(self.store)
        if not health.backlog:
            return None
        return (
            f"stalled: {health.backlog} row(s) waiting to be published, and the relay has made no progress"
            f" for {idle:.0f} s (see the log of the outbox relay of {self.name})"
        )

    async def outbox_warning(self) -> str | None:
        """Why an operator should look at the service's outbox, if they should: parked rows (the
        later events of their cases wait behind them), or a row waiting longer than the threshold.
        """
        health = await outbox_health(self.store)
        notes = []
        if health.parked:
            notes.append(
                f"{health.parked} row(s) parked: the bus refuses them, and the later events of their cases"
                f" wait (python -m services outbox parked {self.name})"
            )
        waited = health.oldest_waiting(self.store.clock.now())
        if waited > timedelta(seconds=self.settings.outbox_backlog_warning_seconds):
            notes.append(
                f"{health.backlog} row(s) waiting to be published, the oldest for {waited.total_seconds():.0f} s"
            )
        return "; ".join(notes) or None

    async def close(self) -> None:
        """Release the database connections."""
        await self.store.engine.dispose()


@dataclass(frozen=True)
class SharedParts:
    """What every service of a process shares: settings, clock, the city and its integrations,
    photos, tokens."""

    settings: Settings
    clock: Clock
    city: City
    calendar: WorkingCalendar
    photos: PhotoStore
    tokens: TokenIssuer
    directory: Directory
    integrations: Integrations

    @classmethod
    def load(cls, settings: Settings, clock: Clock) -> SharedParts:
        """Read the city's reference data, calendar and integrations, and set up photos and tokens."""
        if settings.mode is Mode.PRODUCTION and (
            settings.jwt_secret == DEV_JWT_SECRET or len(settings.jwt_secret) < 32
        ):
            raise RuntimeError(
                "set CITYCASE_JWT_SECRET to 32 or more random characters: the development secret, or a short one,"
                " would let anyone forge tokens"
            )
        city = load_city(settings.city_dir)
        plain = [user.username for user in city.users if user.password is not None]
        if settings.mode is Mode.PRODUCTION and plain and not settings.allow_plain_passwords:
            raise RuntimeError(
                f"{len(plain)} accounts of {settings.city_dir / 'users.yaml'} have plain-text passwords"
                f" ({', '.join(plain[:5])}{' ...' if len(plain) > 5 else ''}): production needs password_hash"
                " values (python -m services accounts hash-password), or CITYCASE_ALLOW_PLAIN_PASSWORDS=true"
                " for a demonstration"
            )
        integrations = load_integrations(settings.city_dir, city)
        written = integrations.written_secrets
        if settings.mode is Mode.PRODUCTION and written and not settings.allow_plain_passwords:
            raise RuntimeError(
                f"{settings.city_dir / 'integrations.yaml'} writes secrets in the file ({', '.join(written[:5])}"
                f"{' ...' if len(written) > 5 else ''}): production reads them from the environment ({{id, env:"
                " VARIABLE}}), or CITYCASE_ALLOW_PLAIN_PASSWORDS=true for a demonstration"
            )
        directory = Directory(account_of(user) for user in city.users)
        access_ttl = timedelta(minutes=settings.access_token_ttl_minutes)
        return cls(
            settings=settings,
            clock=clock,
            city=city,
            calendar=city_calendar(settings, city),
            photos=FilePhotoStore(settings.photos_path),
            tokens=TokenIssuer(settings.token_secret(), clock, access_ttl, directory=directory),
            directory=directory,
            integrations=integrations,
        )


class Runtime:
    """Everything a process runs: one bus shared by its services."""

    def __init__(self, specs: Sequence[ServiceSpec], shared: SharedParts) -> None:
        self.shared = shared
        self.settings = shared.settings
        self.bus = build_bus(self.settings, client_id="citycase-" + "-".join(spec.name for spec in specs))
        self.services = [ServiceRuntime(spec, shared, self.bus) for spec in specs]
        self.rate_limits = RateLimits(Rules.of(self.settings))
        self.bus_connected = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Migrate the databases, then connect the bus in the background and start the workers."""
        if self.settings.mode is Mode.EMBEDDED:
            self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        if self.settings.migrate_on_start:
            for service in self.services:
                await service.migrate()
        self._tasks.append(asyncio.create_task(self._connect_and_work(), name="bus-connect"))
        years = OfficialYears(self.settings.official_years_path)
        self._tasks.append(
            asyncio.create_task(
                follow_official_years(self.shared.calendar, years, self.settings.timer_interval_seconds),
                name="official-years",
            )
        )

    async def _connect_and_work(self) -> None:
        """Connect the bus, start the workers, then watch the bus: an outage is logged when it
        begins and when it ends, and the Kafka client's own line per reconnect attempt is quieted.
        """
        bus = StateLog(log, "the event bus", quieted=quiet_library_logs("aiokafka"))
        while True:
            try:
                await self.bus.start()
                if self.settings.kafka_create_topics or self.settings.mode is Mode.EMBEDDED:
                    await self.bus.ensure_topics(topics(self.settings))
                break
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                bus.failed(exc)
                await self.bus.close()
                await asyncio.sleep(_BUS_RETRY_S)
        bus.succeeded()
        self.bus_connected.set()
        for service in self.services:
            self._tasks.extend(service.background_tasks())
        while True:
            await asyncio.sleep(_BUS_WATCH_S)
            try:
                await self.bus.ping()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                bus.failed(exc)
            else:
                bus.succeeded()

    async def stop(self) -> None:
        """Stop the workers, then close the bus and the databases."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        await self.bus.close()
        for service in self.services:
            await service.close()

    async def ensure_bus_answers(self) -> None:
        """Raise unless the bus is connected and answers."""
        if not self.bus_connected.is_set():
            raise ConnectionError("not connected to the event bus yet")
        await self.bus.ping()
