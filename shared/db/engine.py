"""Async SQLAlchemy helpers for both stores: PostgreSQL (asyncpg) and SQLite files (aiosqlite).

Table definitions carry no schema name: on PostgreSQL each service connects as its own role whose
``search_path`` is its own schema, so the same models and migrations serve both backends.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import BigInteger, DateTime, Integer, event
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.exc import DisconnectionError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.types import TypeDecorator

from shared.db import inline_sqlite

_WRITES = "citycase_writes"

# SQLite only turns INTEGER PRIMARY KEY into an auto-increasing rowid; BIGINT would not be.
BigIntPK = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime on every backend (SQLite would otherwise hand back naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are ambiguous: give a timezone")
        return value.astimezone(UTC) if dialect.name != "sqlite" else value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def is_sqlite(engine: AsyncEngine) -> bool:
    """Whether the engine is on a SQLite file (the embedded mode)."""
    return engine.dialect.name == "sqlite"


def create_engine(
    url: str,
    *,
    pool_size: int = 10,
    echo: bool = False,
    pool_timeout_s: float = 30.0,
    statement_timeout_s: float | None = None,
) -> AsyncEngine:
    """An async engine tuned for its backend.

    SQLite: the calls run in the event loop's thread (:mod:`shared.db.inline_sqlite`, which also
    waits for another connection's write lock without blocking the loop), WAL so readers never
    block the writer. Transactions begun by a :class:`Writer` begin ``IMMEDIATE``, taking the
    write lock up front rather than failing when they upgrade from reading to writing; reads
    begin deferred and never wait for a writer.

    PostgreSQL: ``pool_timeout_s`` bounds the wait for a connection, a pooled one or a new one
    (the login), and ``statement_timeout_s`` (when given) every statement, on the server and in
    the driver, so a hung database answers "unavailable" in seconds instead of holding requests;
    long work (migrations, a rebuild) leaves it unset.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ":memory:"
        if database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)

        async def connect() -> inline_sqlite.InlineConnection:
            return await inline_sqlite.connect(database)

        engine = create_async_engine(url, echo=echo, async_creator=connect)
        _tune_sqlite(engine)
        return engine
    engine = create_async_engine(
        url,
        echo=echo,
        # A fixed pool: a connection opened for a burst and closed after it costs a login and
        # a fresh statement cache each time, more than waiting for a pooled one does.
        pool_size=pool_size,
        max_overflow=0,
        pool_timeout=pool_timeout_s,
        connect_args=_postgres_connect_args(pool_timeout_s, statement_timeout_s),
    )
    _refuse_closed_connections(engine)
    return engine


def _postgres_connect_args(connect_timeout_s: float, statement_timeout_s: float | None) -> dict[str, Any]:
    # The pool's wait covers only a free slot: once the pool opens a new connection (the first
    # ones, or a replacement for one a hung database broke), the login waits for the driver's
    # own timeout, a minute by default, while a hung server accepts the socket and never answers.
    connect_args: dict[str, Any] = {"server_settings": {"application_name": "citycase"}, "timeout": connect_timeout_s}
    if statement_timeout_s is not None:
        connect_args["server_settings"]["statement_timeout"] = str(int(statement_timeout_s * 1000))
        # The driver's own timeout too: a database that stopped answering cancels nothing.
        connect_args["command_timeout"] = statement_timeout_s + 1
    return connect_args


def _refuse_closed_connections(engine: AsyncEngine) -> None:
    """Give no request a pooled connection the server has closed (a restart, a failover).

    The driver sees the server close the socket even while the connection waits in the pool, so
    asking it costs nothing; the pool then opens a new one. SQLAlchemy's ``pool_pre_ping`` asked
    the server instead: a transaction begun, a query and a rollback, three round trips and 6 % of
    intake's CPU at every checkout (bench/README.md, "Intake near its floor"). A connection
    broken without the server closing it fails its statement, and the pool, seeing a disconnect,
    replaces every connection opened before it.
    """

    @event.listens_for(engine.sync_engine.pool, "checkout")
    def _on_checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        if dbapi_connection.driver_connection.is_closed():
            raise DisconnectionError("the server closed this pooled connection")


def _tune_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide when transactions begin (savepoints work).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in ("journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON"):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        immediate = connection.get_execution_options().get(_WRITES, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


class Writer:
    """Begins the transactions that write on one engine.

    On SQLite they begin ``IMMEDIATE``, and those of this process take turns before they ask for
    the file's one write lock: a writer that finds the lock taken is tried again after pauses
    (:mod:`shared.db.inline_sqlite`) rather than woken when the lock is free. In the embedded
    city a service's requests, consumers, relay and timers all write its one file: taking turns
    costs nothing, tries and pauses cost wall time. The pauses remain for writers in other
    processes (the command line's tools). On PostgreSQL a writer is the engine itself.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine.execution_options(**{_WRITES: True})
        self._turns = asyncio.Lock() if is_sqlite(engine) else None

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction: committed when the block ends, rolled back when it raises."""
        if self._turns is None:
            async with self.engine.begin() as connection:
                yield connection
            return
        try:
            # As long as SQLite would have waited for the lock: a writer that never comes back (or
            # one nested in another) fails the others as "database is locked" did, not for ever.
            async with asyncio.timeout(inline_sqlite.BUSY_TIMEOUT_S):
                await self._turns.acquire()
        except TimeoutError:
            locked = sqlite3.OperationalError("database is locked: the writers before this one took too long")
            raise OperationalError("BEGIN IMMEDIATE", None, locked) from None
        try:
            async with self.engine.begin() as connection:
                yield connection
        finally:
            self._turns.release()
