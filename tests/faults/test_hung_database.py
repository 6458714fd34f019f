"""A database host that froze: it still accepts connections (the kernel completes the handshake)
and never answers. A request that needs a new connection then — the first ones, or the
replacement for one the freeze broke — must fail within the pool's wait, as a dependency failure
(a 503), not wait out the driver's default minute. The fault suite hangs the real PostgreSQL
(``test_faults.py``); this is the same freeze at the scale of one connection, with no database.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from shared.db.engine import create_engine
from shared.messaging.consumer import is_infrastructure_error

# Far below the driver's default (60 s), far above the pool's wait below.
_BOUND_S = 15.0


@asynccontextmanager
async def frozen_server() -> AsyncIterator[int]:
    """A TCP server on a free port that takes every connection and never says a word; its port."""
    held: list[asyncio.StreamWriter] = []

    async def take(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(take, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_a_new_connection_to_a_frozen_database_fails_within_the_pool_timeout() -> None:
    async with frozen_server() as port:
        engine = create_engine(
            f"postgresql+asyncpg://citycase_intake:secret@127.0.0.1:{port}/citycase",
            pool_timeout_s=0.5,
            statement_timeout_s=1.0,
        )
        failure: BaseException | None = None
        try:
            async with asyncio.timeout(_BOUND_S) as bound:
                async with engine.connect():
                    pass
        except Exception as exc:
            failure = exc
        finally:
            await engine.dispose()
    assert not bound.expired(), f"still logging in after {_BOUND_S:.0f} s"
    assert failure is not None
    assert is_infrastructure_error(failure), repr(failure)
