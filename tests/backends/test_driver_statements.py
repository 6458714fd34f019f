"""Statements run on the driver itself (``shared.db.driver``) behave as SQLAlchemy's would: the same
rows, in the caller's transaction, the same errors."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta, timezone
from uuid import UUID

import pytest
from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Uuid,
    bindparam,
    event,
    literal,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import asyncpg
from sqlalchemy.exc import DBAPIError, IntegrityError

from shared.core.ids import new_id
from shared.db.driver import DriverStatement, _compile
from shared.db.engine import BigIntPK, UTCDateTime
from shared.messaging.store import ServiceStore
from shared.messaging.tables import service_metadata
from tests.conftest import Backend


def _metadata() -> tuple[MetaData, Table]:
    metadata = service_metadata()
    table = Table(
        "driver_probe",
        metadata,
        Column("seq", BigIntPK, primary_key=True, autoincrement=True),
        Column("id", Uuid, nullable=False, unique=True),
        Column("name", String(32), nullable=False),
        Column("size", Float, nullable=False),
        Column("tags", JSON, nullable=False),
        Column("at", UTCDateTime, nullable=False),
        Column("flag", Boolean, nullable=False, server_default="true"),
        Column("rank", Integer, nullable=True),
    )
    return metadata, table


async def _store(backend: Backend) -> tuple[ServiceStore, Table]:
    metadata, table = _metadata()
    return await backend.store("intake", metadata), table


def _row(name: str = "井盖", **changes: object) -> dict[str, object]:
    # A time in another zone: stored and read back in UTC, as SQLAlchemy's type does.
    at = datetime(2026, 11, 30, 17, 5, 0, 250_000, tzinfo=timezone(timedelta(hours=8)))
    return {"id": new_id(), "name": name, "size": 1.5, "tags": ["a", {"b": 2}], "at": at, **changes}


async def test_rows_come_back_as_sqlalchemy_reads_them(backend: Backend) -> None:
    store, table = await _store(backend)
    insert = DriverStatement(table.insert().returning(*table.c))
    near = DriverStatement(
        select(table.c.id, table.c.name, table.c.at).where(
            table.c.size.between(literal(1.0), literal(2.0)), table.c.name.in_([literal("井盖"), literal("x")])
        )
    )
    given = _row()
    async with store.transaction() as tx:
        (returned,) = await insert.rows(tx.connection, given)
        found = await near.rows(tx.connection, {})
    async with store.engine.connect() as connection:
        (read,) = (await connection.execute(select(table))).mappings().all()
    assert dict(returned) == dict(read)
    assert returned["at"] == datetime(2026, 11, 30, 9, 5, 0, 250_000, tzinfo=UTC)
    assert returned["at"].utcoffset() == timedelta(0)
    assert returned["tags"] == ["a", {"b": 2}]
    assert returned["flag"] is True  # the server's default
    assert returned["rank"] is None
    assert isinstance(returned["id"], UUID)
    assert returned["id"] == given["id"]
    assert found == [{"id": given["id"], "name": "井盖", "at": returned["at"]}]


async def test_they_commit_and_roll_back_with_the_rest_of_the_transaction(backend: Backend) -> None:
    store, table = await _store(backend)
    insert = DriverStatement(table.insert())

    class Refused(Exception):
        pass

    async def refused() -> None:
        async with store.transaction() as tx:
            await tx.connection.execute(table.insert(), _row("by sqlalchemy"))
            await insert.run(tx.connection, _row("on the driver"))
            raise Refused

    with pytest.raises(Refused):
        await refused()
    async with store.transaction() as tx:
        await insert.run(tx.connection, _row("on the driver, first"))
        await tx.connection.execute(table.insert(), _row("by sqlalchemy"))
    async with store.engine.connect() as connection:
        names = (await connection.execute(select(table.c.name).order_by(table.c.seq))).scalars().all()
    assert names == ["on the driver, first", "by sqlalchemy"]


async def test_many_rows_go_in_the_order_given(backend: Backend) -> None:
    store, table = await _store(backend)
    insert = DriverStatement(table.insert())
    async with store.transaction() as tx:
        await insert.run_many(tx.connection, [_row(f"row {n}", rank=n) for n in range(25)])
        await insert.run_many(tx.connection, [])
    async with store.engine.connect() as connection:
        ranks = (await connection.execute(select(table.c.rank).order_by(table.c.seq))).scalars().all()
    assert ranks == list(range(25))


async def test_a_unique_violation_is_sqlalchemys_integrity_error_and_changes_nothing(backend: Backend) -> None:
    store, table = await _store(backend)
    insert = DriverStatement(table.insert())
    first = _row("first")
    async with store.transaction() as tx:
        await insert.run(tx.connection, first)

    async def resent() -> None:
        async with store.transaction() as tx:
            await insert.run(tx.connection, _row("second"))
            await insert.run(tx.connection, _row("again", id=first["id"]))

    with pytest.raises(IntegrityError):
        await resent()
    async with store.engine.connect() as connection:
        names = (await connection.execute(select(table.c.name))).scalars().all()
    assert names == ["first"]
    # The connection went back to the pool usable.
    async with store.transaction() as tx:
        await insert.run(tx.connection, _row("third"))


async def test_an_in_list_of_any_length_is_one_statement(backend: Backend) -> None:
    store, table = await _store(backend)
    insert = DriverStatement(table.insert())
    named = DriverStatement(
        select(table.c.name).where(table.c.id.in_(bindparam("ids", expanding=True))).order_by(table.c.name)
    )
    rows = [_row(name) for name in ("a", "b", "c", "d")]
    async with store.transaction() as tx:
        await insert.run_many(tx.connection, rows)
        found = {
            length: [row["name"] for row in await named.rows(tx.connection, {"ids": [r["id"] for r in rows[:length]]})]
            for length in (0, 1, 3)
        }
    assert found == {0: [], 1: ["a"], 3: ["a", "b", "c"]}
    if backend.name == "postgres-kafka":
        # Sent as an array: one text for every length, prepared once.
        (compiled,) = named._compiled.values()
        assert compiled is not None
        assert "= ANY ($1::UUID[])" in compiled.sql


def test_a_statement_that_would_write_a_value_into_its_text_at_every_run_is_refused_on_first_use() -> None:
    _, table = _metadata()
    statement = DriverStatement(select(table.c.id).where(table.c.name == bindparam("name", literal_execute=True)))
    with pytest.raises(ValueError, match="at every run"):
        _compile(statement.statement, asyncpg.dialect(), ["name"])  # type: ignore[no-untyped-call]


@pytest.mark.parametrize("backend", ["postgres-kafka"], indirect=True)
async def test_a_connection_lost_is_sqlalchemys_disconnect_and_the_pool_replaces_it(
    backend: Backend, pg_admin: Callable[[str], Awaitable[list[tuple[object, ...]]]]
) -> None:
    store, table = await _store(backend)
    insert = DriverStatement(table.insert())

    async def lost() -> None:
        async with store.transaction() as tx:
            pid = (await tx.connection.execute(text("SELECT pg_backend_pid()"))).scalar_one()
            await pg_admin(f"SELECT pg_terminate_backend({pid})")
            await asyncio.sleep(0.2)  # the server's goodbye reaches the driver
            await insert.run(tx.connection, _row("lost"))

    with pytest.raises(DBAPIError) as raised:
        await lost()
    assert raised.value.connection_invalidated
    async with store.transaction() as tx:
        await insert.run(tx.connection, _row("after"))
    async with store.engine.connect() as connection:
        assert (await connection.execute(select(table.c.name))).scalars().all() == ["after"]


async def test_a_statement_runs_on_the_driver_not_through_sqlalchemy(backend: Backend) -> None:
    store, table = await _store(backend)
    insert = DriverStatement(table.insert().returning(table.c.name))
    executed: list[str] = []
    event.listen(store.engine.sync_engine, "before_cursor_execute", lambda *call: executed.append(call[2]))
    async with store.transaction() as tx:
        (returned,) = await insert.rows(tx.connection, _row("driver"))
    async with store.engine.connect() as connection:
        names = (await connection.execute(select(table.c.name))).scalars().all()
    assert returned == {"name": "driver"}
    assert names == ["driver"]
    # SQLAlchemy ran the query above and the transaction's begin (SQLite's BEGIN), not the insert.
    assert [statement for statement in executed if "INSERT" in statement] == []
