"""Settings read from the environment (prefix ``CITYCASE_``) with defaults for local work."""

from __future__ import annotations

import os
import secrets
from enum import StrEnum
from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_JWT_SECRET = "citycase-development-secret-not-for-production"
SERVICE_NAMES: tuple[str, ...] = ("intake", "dispatch", "handling", "closure", "assessment")


class Mode(StrEnum):
    """How the services run: all in one process on SQLite files, or apart on PostgreSQL + Kafka."""

    EMBEDDED = "embedded"
    PRODUCTION = "production"


class Exposure(StrEnum):
    """Who may read a process's API documentation or its metrics."""

    OPEN = "open"
    SHIFT_LEAD = "shift_lead"  # a shift lead's bearer token (for metrics, also ``metrics_token``)
    OFF = "off"


class LogFormat(StrEnum):
    """How a process writes its log lines."""

    AUTO = "auto"  # human text when standard error is a terminal, JSON lines otherwise
    JSON = "json"
    TEXT = "text"


class Tracing(StrEnum):
    """Whether a process records traces (OpenTelemetry)."""

    OFF = "off"
    # Exported over OTLP (HTTP/protobuf) to where the standard OTEL_EXPORTER_OTLP_* variables say.
    OTLP = "otlp"


class Settings(BaseSettings):
    """Every tunable of a citycase process.

    Nested values use ``__``: ``CITYCASE_DATABASE_URLS__INTAKE=postgresql+asyncpg://...``.
    """

    model_config = SettingsConfigDict(env_prefix="CITYCASE_", env_nested_delimiter="__", extra="ignore")

    mode: Mode = Mode.EMBEDDED
    data_dir: Path = Path("var")

    # PostgreSQL: one login role and one schema per service (deploy/local/postgres.sh makes them).
    pg_host: str = "127.0.0.1"
    pg_port: int = 5432
    pg_database: str = "citycase"
    pg_pool_size: int = 20
    # A hung database answers 503 within these, not a request held for minutes (migrations and
    # the stream's rebuild run without the statement limit).
    pg_pool_timeout_seconds: float = 5.0
    pg_statement_timeout_seconds: float = 30.0
    # libpq's sslmode names. "prefer" encrypts when the server offers TLS; a database on the same
    # machine gains nothing from TLS over loopback and pays for it on every statement ("disable").
    pg_ssl: str = "prefer"
    # Explicit per-service URLs win over the template, e.g. for a managed database.
    database_urls: dict[str, str] = Field(default_factory=dict)

    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    kafka_partitions: int = 6
    kafka_replication_factor: int = 1
    kafka_create_topics: bool = True
    # Prepended to every consumer group id: two cities (or a benchmark and a test run) sharing a
    # broker must not join each other's groups, where they would steal each other's partitions.
    kafka_group_prefix: str = ""
    topic_case_events: str = "citycase.case-events"
    topic_dead_letter: str = "citycase.dead-letter"
    topic_integration: str = "citycase.integration"

    outbox_batch_size: int = 500
    outbox_poll_seconds: float = 0.2
    outbox_retention_hours: float = 24.0
    # Refusals of a row, each with the row published alone, before the relay parks it.
    outbox_max_attempts: int = 3
    # Readiness warns when an outbox row has waited longer than this to be published.
    outbox_backlog_warning_seconds: float = 60.0
    # Readiness fails when this process's relay leads (or runs alone), rows wait, and it has made
    # no progress (published, or found nothing publishable) for longer than this.
    outbox_stall_seconds: float = 60.0
    # How often a process reads its services' outboxes, consumer lags and due timers into the gauges.
    metrics_refresh_seconds: float = 10.0
    consumer_batch_size: int = 200
    consumer_max_attempts: int = 3
    stream_batch_size: int = 1000
    # A rebuild has the log to itself: bigger batches fold more events into each counter row
    # (bench/README.md: 20,000 replays faster than 5,000 and than 50,000). A fetch of 4 MiB brings
    # about 7,700 events of a partition (540 bytes each): a member of three partitions fills a batch.
    rebuild_batch_size: int = 20_000
    rebuild_fetch_bytes_per_partition: int = 4 * 1024 * 1024

    city_dir: Path = Path(__file__).resolve().parents[2] / "deploy" / "cities" / "demo"
    # Tokens signed with the default secret are forgeable by anyone who reads this file:
    # production mode refuses to start with it.
    jwt_secret: str = DEV_JWT_SECRET
    # Production refuses accounts with plain-text passwords (the demo city's are public); a demo
    # or a test run in production mode says so here.
    allow_plain_passwords: bool = False
    # An access token lives minutes: a removed or moved account is refused at once anyway, but a
    # stolen token should be worth little. A log-in session (its refresh tokens) lasts a shift.
    access_token_ttl_minutes: float = 15.0
    refresh_token_ttl_hours: float = 12.0
    # The log-in sessions (which refresh token each may use next): a folder every process of the
    # city must share, as they share the photos.
    session_dir: Path | None = None
    # The OpenAPI documents and pages (/openapi.json, /docs, /redoc of the process and of each
    # service) and /metrics: open, for shift leads (and, for metrics, the scraper's
    # ``metrics_token``), or off. ``metrics_port`` serves the metrics on a port of their own
    # instead (on ``metrics_host``, else ``http_host``), and none on the API's port.
    docs: Exposure = Exposure.OPEN
    metrics: Exposure = Exposure.OPEN
    metrics_token: str | None = Field(default=None, min_length=32)
    metrics_port: int | None = None
    metrics_host: str | None = None
    photo_dir: Path | None = None
    # The official calendar years loaded while the city runs (``python -m services calendar load``);
    # every process of the city must see the same folder, as they see the same photos.
    calendar_dir: Path | None = None
    max_photo_bytes: int = 10 * 1024 * 1024
    max_photos: int = 9
    # Rate limits, per process, in ``limits``' notation. Failed passwords lock an account (and
    # an address) out for the rest of the window: a guesser gets five tries a quarter hour.
    rate_login_attempts_per_address: str = "120/minute"
    rate_login_failures_per_account: str = "5/15 minutes"
    rate_login_failures_per_address: str = "30/15 minutes"
    rate_public_reports_per_address: str = "20/hour"
    # Bodies other than photo uploads (JSON, forms): a report is a few kilobytes.
    max_body_bytes: int = 256 * 1024
    duplicate_radius_m: float = 50.0
    duplicate_window_hours: float = 72.0
    timer_interval_seconds: float = 5.0
    # How long intake keeps a citizen's contact (a hotline's or an Open311 app's) after the report
    # arrived. Nothing in citycase reads it (the hotline calls the citizen back itself), so it is
    # kept only as the city's record of the work order, and no longer than that needs (PIPL's
    # minimum necessary); a case open longer than this is rare and loses nothing it uses.
    contact_retention_days: float = Field(default=180.0, gt=0)
    # Outbound deliveries to the hotlines and departments (intake.delivery): how often the sender
    # looks for messages due when it found none, how many requests it has in flight at once, and
    # how long a delivered message's row is kept (per-case order needs only the undelivered ones).
    delivery_poll_seconds: float = 1.0
    delivery_concurrency: int = Field(default=16, ge=1)
    # At most this many of those requests to one endpoint at once: a slow or hanging endpoint
    # holds its own share of the sender, never every place (the others' messages keep flowing).
    delivery_concurrency_per_endpoint: int = Field(default=4, ge=1)
    delivery_retention_hours: float = 168.0
    # Where the city's API is reached from outside: links in what is sent to other systems (the
    # photos of a reply) are absolute URLs under it. Production refuses a loopback one, and a plain
    # http one, when anything is sent (intake.delivery.check_integrations).
    public_url: str = "http://127.0.0.1:8000"
    # Production sends to https endpoints only (a work order's description and place, a case's
    # details, would cross the network unencrypted), loopback aside, unless this says the network
    # in between is the city's own.
    allow_plain_http_endpoints: bool = False
    # Simulated time shared by processes (shared.core.clock.FileClock). Unset, a data folder whose
    # city ran on a clock file runs on it again (or refuses to start without it), any other on the
    # system clock; ``real_time`` puts a simulated city on the system clock from now on.
    clock_file: Path | None = None
    real_time: bool = False

    # Log lines: JSON for a collector (time, level, service, logger, message and the case, event,
    # trace and request ids of the work at hand), text for a person at a terminal.
    log_format: LogFormat = LogFormat.AUTO
    log_level: str = "INFO"
    tracing: Tracing = Tracing.OFF

    http_host: str = "127.0.0.1"
    http_port: int = 8000
    # The browser console's build (web/, ``make web``), served at ``/``.
    console_dir: Path = Path(__file__).resolve().parents[2] / "web" / "dist"
    migrate_on_start: bool = True

    def database_url(self, service: str) -> str:
        """The SQLAlchemy async URL of one service's own database (or schema)."""
        if service in self.database_urls:
            return self.database_urls[service]
        if self.mode is Mode.EMBEDDED:
            return f"sqlite+aiosqlite:///{self.data_dir / f'{service}.db'}"
        role = f"citycase_{service}"
        return f"postgresql+asyncpg://{role}:{role}@{self.pg_host}:{self.pg_port}/{self.pg_database}?ssl={self.pg_ssl}"

    @property
    def photos_path(self) -> Path:
        """Where photos are stored (content-addressed files)."""
        return self.photo_dir or self.data_dir / "photos"

    def token_secret(self) -> str:
        """The secret tokens are signed with: ``jwt_secret`` when it is set (production refuses to
        start on the development one); in embedded mode without it, a random secret kept in the
        data folder, made on first use, so no two installations share the public development one."""
        if self.jwt_secret != DEV_JWT_SECRET or self.mode is Mode.PRODUCTION:
            return self.jwt_secret
        path = self.data_dir / "token-secret"
        try:
            return path.read_text().strip()
        except FileNotFoundError:
            pass
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            # O_EXCL: two processes starting on one folder agree on the secret the first one wrote.
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return path.read_text().strip()
        with os.fdopen(descriptor, "w") as file:
            file.write(secrets.token_urlsafe(48))
        return path.read_text().strip()

    def body_limit(self, content_type: str) -> int:
        """The largest request body accepted with ``content_type``: a multipart upload may carry
        the photos a request may hold (and its form fields); anything else ``max_body_bytes``."""
        if content_type.lower().startswith("multipart/"):
            return self.max_photos * self.max_photo_bytes + self.max_body_bytes
        return self.max_body_bytes

    @property
    def sessions_path(self) -> Path:
        """Where the log-in sessions are kept (``shared.core.sessions``)."""
        return self.session_dir or self.data_dir / "sessions"

    @property
    def official_years_path(self) -> Path:
        """Where the official calendar years loaded at run time are kept, a file per year."""
        return self.calendar_dir or self.data_dir / "calendar"

    @property
    def event_log_path(self) -> Path:
        """The embedded durable event log (SQLite), used instead of Kafka in embedded mode."""
        return self.data_dir / "events.db"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
