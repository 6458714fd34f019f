"""SQLite connections whose calls run in the event loop's own thread.

aiosqlite gives each connection a thread and hands every call to it: a statement, each fetch, a
commit, each one a queue put, a wake-up of that thread, the GIL taken back and a write to the
loop's self-pipe to come home. The embedded city's statements take tens of microseconds, less
than the hand-off; and with a few dozen connections busy at once the hand-offs queued behind the
GIL for milliseconds each, so that an event crossing the city (outbox, log, inbox, each a few
statements) took tens to hundreds of milliseconds. A simulated day spent a third of its CPU and
most of its wall time on that (bench/README.md, "The simulator, second pass"). Here the calls run
inline: the loop waits for SQLite's work itself, never for a thread.

One thing SQLite may wait for must not block the loop: the file's write lock held by another
connection. SQLite's own busy handler sleeps in the calling thread, which would be the loop's,
and the holder (another task on the same loop) could never finish. So these connections have no
busy timeout: a call that finds the lock taken fails at once, and is tried again after an
``asyncio`` sleep, for as long as the busy timeout would have waited. In-process writers rarely
get there (a :class:`shared.db.engine.Writer` makes them take turns first); a writer in another
process (a command-line tool) can.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Generator
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

# How long a call waits for another connection's write lock, as SQLite's busy timeout would.
BUSY_TIMEOUT_S = 10.0
_FIRST_PAUSE_S = 0.001
_LONGEST_PAUSE_S = 0.05

_T = TypeVar("_T")


class InlineConnection(aiosqlite.Connection):
    """aiosqlite's connection, its calls run where they are awaited: the same interface (SQLAlchemy's
    aiosqlite dialect drives it), no thread. Open it with :func:`connect`."""

    def __init__(self, connector: Callable[[], sqlite3.Connection]) -> None:
        super().__init__(connector, iter_chunk_size=64)
        # SQLAlchemy's dialect sets the isolation level through aiosqlite's queue directly.
        self._tx = _RunAtOnce()  # type: ignore[assignment]

    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if self._connection is None:
            raise ValueError("Connection closed")
        return await _patiently(partial(fn, *args, **kwargs), self._connection)

    async def run(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        """``work`` done on the sqlite3 connection itself, tried again while another connection
        holds the write lock (see :func:`_patiently`): for callers that bind and read values
        themselves (``shared.db.driver``)."""
        if self._connection is None:
            raise ValueError("Connection closed")
        connection = self._connection
        result: _T = await _patiently(partial(work, connection), connection)
        return result

    async def _connect(self) -> InlineConnection:
        if self._connection is None:
            self._connection = await _patiently(self._connector, None)
        return self

    def __await__(self) -> Generator[Any, None, InlineConnection]:
        return self._connect().__await__()

    def stop(self) -> None:
        """Close the connection (aiosqlite stops its thread here; there is none)."""
        self._running = False
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def connect(path: str | Path, **kwargs: Any) -> InlineConnection:
    """An inline connection to the SQLite file at ``path``, to be awaited; ``kwargs`` go to
    ``sqlite3.connect``."""
    # Without a busy timeout (see the module's text); and usable from any thread, as the garbage
    # collector may close it from one.
    options = {**kwargs, "timeout": 0.0, "check_same_thread": False}
    return InlineConnection(partial(sqlite3.connect, str(path), **options))


async def _patiently(call: Callable[[], Any], connection: sqlite3.Connection | None) -> Any:
    """``call()``, tried again after a pause while another connection holds the write lock, as
    long as the refused call changed nothing on ``connection`` (an ``executemany`` outside a
    transaction keeps the rows it wrote before it was refused: done again, they would be twice)."""
    pause = _FIRST_PAUSE_S
    give_up_at = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        changes = connection.total_changes if connection is not None else 0
        try:
            return call()
        except sqlite3.OperationalError as exc:
            if not _is_busy(exc) or time.monotonic() + pause > give_up_at:
                raise
            if connection is not None and connection.total_changes != changes:
                raise
        await asyncio.sleep(pause)
        pause = min(pause * 2, _LONGEST_PAUSE_S)


def _is_busy(error: sqlite3.OperationalError) -> bool:
    """Whether SQLite refused because another connection holds a lock, so that the same call may
    succeed later. Not a stale read snapshot upgrading to write (SQLITE_BUSY_SNAPSHOT): only a new
    transaction helps there."""
    # Errors raised by the sqlite3 module itself, not by SQLite, carry no code.
    code: int = getattr(error, "sqlite_errorcode", 0)
    return code & 0xFF == sqlite3.SQLITE_BUSY and code != _SQLITE_BUSY_SNAPSHOT


_SQLITE_BUSY_SNAPSHOT = sqlite3.SQLITE_BUSY | (2 << 8)


class _RunAtOnce:
    """Stands for aiosqlite's queue to its thread: runs what is put on it now, and settles its future."""

    def put_nowait(self, item: tuple[asyncio.Future[Any] | None, Callable[[], Any]]) -> None:
        future, function = item
        try:
            result = function()
        except Exception as exc:  # handed to whoever awaits the future, as aiosqlite's thread does
            if future is not None:
                future.set_exception(exc)
        else:
            if future is not None:
                future.set_result(result)
