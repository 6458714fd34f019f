"""The embedded store's SQLite connections run their calls in the event loop's thread, and wait
for another connection's write lock with pauses that let the loop go on (``shared.db.inline_sqlite``).
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from shared.db import inline_sqlite
from shared.db.engine import Writer, create_engine


class _Pauses:
    """Stands for ``asyncio`` in the module under test: counts the pauses it takes."""

    def __init__(self) -> None:
        self.taken = 0

    async def sleep(self, seconds: float) -> None:
        self.taken += 1
        await asyncio.sleep(seconds)


@pytest.fixture
def pauses(monkeypatch: pytest.MonkeyPatch) -> _Pauses:
    counted = _Pauses()
    monkeypatch.setattr(inline_sqlite, "asyncio", SimpleNamespace(sleep=counted.sleep))
    return counted


async def _open(path: Path) -> inline_sqlite.InlineConnection:
    connection = await inline_sqlite.connect(path, isolation_level=None)
    await connection.execute("PRAGMA journal_mode=WAL")
    return connection


Pair = tuple[inline_sqlite.InlineConnection, inline_sqlite.InlineConnection]


@pytest.fixture
async def pair(tmp_path: Path) -> AsyncIterator[Pair]:
    """Two connections to one file with a table ``t``, as two writers of one service would have."""
    path = tmp_path / "city.db"
    first, second = await _open(path), await _open(path)
    await first.execute("CREATE TABLE t (x INTEGER)")
    yield first, second
    await first.close()
    await second.close()


async def test_an_engine_on_a_file_starts_no_thread(tmp_path: Path) -> None:
    before = threading.active_count()
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'city.db'}")
    try:
        async with Writer(engine).begin() as connection:
            await connection.execute(text("CREATE TABLE reports (id INTEGER PRIMARY KEY, note TEXT)"))
            await connection.execute(text("INSERT INTO reports (note) VALUES ('井盖缺失'), ('占道经营')"))
        async with engine.connect() as connection:
            notes = (await connection.execute(text("SELECT note FROM reports ORDER BY id"))).scalars().all()
        assert notes == ["井盖缺失", "占道经营"]
        assert threading.active_count() == before
    finally:
        await engine.dispose()


async def test_a_locked_file_is_waited_for_while_the_loop_goes_on(pair: Pair, pauses: _Pauses) -> None:
    holder, waiter = pair
    await holder.execute("BEGIN IMMEDIATE")
    await holder.execute("INSERT INTO t VALUES (1)")
    order: list[str] = []

    async def write() -> None:
        await waiter.execute("BEGIN IMMEDIATE")
        order.append("waiter in")
        await waiter.execute("INSERT INTO t VALUES (2)")
        await waiter.execute("COMMIT")

    writing = asyncio.create_task(write())
    for _ in range(5):
        await asyncio.sleep(0.005)  # the loop runs on while the waiter waits for the lock
    assert not writing.done()
    order.append("holder commits")
    await holder.execute("COMMIT")
    await writing
    assert order == ["holder commits", "waiter in"]
    assert pauses.taken > 0
    async with waiter.execute("SELECT x FROM t ORDER BY x") as cursor:
        assert [row[0] for row in await cursor.fetchall()] == [1, 2]


async def test_the_wait_ends_as_the_busy_timeout_would(pair: Pair, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(inline_sqlite, "BUSY_TIMEOUT_S", 0.05)
    holder, waiter = pair
    await holder.execute("BEGIN IMMEDIATE")
    with pytest.raises(sqlite3.OperationalError, match="database is locked"):
        await waiter.execute("BEGIN IMMEDIATE")
    await holder.execute("ROLLBACK")
    await waiter.execute("BEGIN IMMEDIATE")  # free again: the same call goes through
    await waiter.execute("ROLLBACK")


async def test_a_stale_snapshot_fails_at_once(pair: Pair, pauses: _Pauses) -> None:
    writer, reader = pair
    await reader.execute("BEGIN")
    async with reader.execute("SELECT count(*) FROM t") as cursor:
        await cursor.fetchall()
    await writer.execute("INSERT INTO t VALUES (1)")
    # The reader's snapshot is older than the file: no wait can make its write succeed.
    with pytest.raises(sqlite3.OperationalError) as refused:
        await reader.execute("INSERT INTO t VALUES (2)")
    assert refused.value.sqlite_errorname == "SQLITE_BUSY_SNAPSHOT"
    assert pauses.taken == 0
    await reader.execute("ROLLBACK")


async def test_a_processs_writers_take_turns_rather_than_wait_for_the_lock(tmp_path: Path, pauses: _Pauses) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'city.db'}")
    writer = Writer(engine)
    try:
        async with writer.begin() as connection:
            await connection.execute(text("CREATE TABLE counter (n INTEGER)"))
            await connection.execute(text("INSERT INTO counter VALUES (0)"))

        async def add_one() -> None:
            async with writer.begin() as connection:
                n: Any = (await connection.execute(text("SELECT n FROM counter"))).scalar_one()
                await asyncio.sleep(0)  # let the others try to write meanwhile
                await connection.execute(text("UPDATE counter SET n = :n"), {"n": n + 1})

        await asyncio.gather(*(add_one() for _ in range(12)))
        async with engine.connect() as connection:
            assert (await connection.execute(text("SELECT n FROM counter"))).scalar_one() == 12
        assert pauses.taken == 0
    finally:
        await engine.dispose()


async def test_rows_written_before_a_refusal_are_not_written_again(pair: Pair, tmp_path: Path, pauses: _Pauses) -> None:
    connection, _ = pair
    other = sqlite3.connect(tmp_path / "city.db", timeout=0, isolation_level=None)

    def rows() -> Iterator[tuple[int]]:
        yield (1,)
        other.execute("BEGIN IMMEDIATE")  # another process takes the lock between two rows
        yield (2,)

    # Outside a transaction each row commits on its own: the first is in before the second is refused.
    with pytest.raises(sqlite3.OperationalError, match="database is locked"):
        await connection.executemany("INSERT INTO t VALUES (?)", rows())
    assert pauses.taken == 0
    other.execute("ROLLBACK")
    async with connection.execute("SELECT x FROM t") as cursor:
        assert [row[0] for row in await cursor.fetchall()] == [1]
    other.close()


async def test_a_writer_kept_waiting_past_the_busy_timeout_is_told_the_file_is_locked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(inline_sqlite, "BUSY_TIMEOUT_S", 0.05)
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'city.db'}")
    writer = Writer(engine)
    try:
        async with writer.begin():
            with pytest.raises(OperationalError, match="database is locked"):
                async with writer.begin():  # nested in the first: it would wait for ever
                    pass
        async with writer.begin() as connection:  # the turn was given back
            assert (await connection.execute(text("SELECT 1"))).scalar_one() == 1
    finally:
        await engine.dispose()
