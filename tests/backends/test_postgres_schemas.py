"""On PostgreSQL each service owns one schema and its role may touch nothing else."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from sqlalchemy import text
from sqlalchemy.exc import ProgrammingError

from tests.conftest import Backend


@pytest.mark.parametrize("backend", ["postgres-kafka"], indirect=True)
async def test_a_service_role_sees_only_its_own_schema(
    backend: Backend, pg_admin: Callable[[str], Awaitable[list[tuple[object, ...]]]]
) -> None:
    intake = await backend.store("intake")
    await backend.store("dispatch")
    tables = set(
        await pg_admin(
            "SELECT table_schema, table_name FROM information_schema.tables"
            " WHERE table_schema IN ('intake', 'dispatch')"
        )
    )
    assert {(s, t) for s in ("intake", "dispatch") for t in ("alembic_version", "inbox", "outbox")} <= tables
    async with intake.engine.connect() as connection:
        assert (await connection.execute(text("SELECT count(*) FROM outbox"))).scalar_one() == 0
    for forbidden in ("SELECT count(*) FROM dispatch.outbox", "CREATE TABLE public.sneaky (x int)"):
        async with intake.engine.connect() as connection:
            with pytest.raises(ProgrammingError, match="permission denied"):
                await connection.execute(text(forbidden))


@pytest.mark.parametrize("backend", ["postgres-kafka"], indirect=True)
async def test_a_pooled_connection_the_server_closed_is_replaced_before_any_statement_fails(
    backend: Backend, pg_admin: Callable[[str], Awaitable[list[tuple[object, ...]]]]
) -> None:
    """A restart or a failover closes every connection waiting in the pool; the next
    transactions get new ones, without the round trips of a ping at every checkout."""
    intake = await backend.store("intake")

    async def backend_pid() -> int:
        async with intake.engine.connect() as connection:
            return int((await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one())

    pooled = await backend_pid()
    await pg_admin(f"SELECT pg_terminate_backend({pooled})")
    await asyncio.sleep(0.2)  # the driver reads the server's goodbye on the idle socket meanwhile
    assert await backend_pid() != pooled
