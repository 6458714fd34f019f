"""The whole city served inside the calling program: every service in one app, behind a real HTTP
server on 127.0.0.1, in the caller's event loop. The simulator and the reconciliation command use
it to start an embedded city of their own and talk to it over TCP like any client.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator

import uvicorn

from services.runtime.app import create_app
from shared.core.clock import Clock
from shared.core.settings import Settings

_START_TIMEOUT_S = 120.0


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signals to the program hosting it: Ctrl-C must stop the
    program (which then stops the server), not only the server under a program still running.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@contextlib.asynccontextmanager
async def serve(settings: Settings, clock: Clock | None = None, host: str = "127.0.0.1") -> AsyncIterator[str]:
    """Serve every service on an ephemeral port until the block ends; yields the base URL.

    ``clock`` defaults to the settings' (a clock file, or the system clock). The data stays in
    ``settings.data_dir`` (embedded) or the databases (production) when the server stops.
    """
    app = create_app(["all"], settings, clock)
    # log_config=None: uvicorn's lines go through the process's own handler, in its format.
    config = uvicorn.Config(
        app, host=host, port=0, lifespan="on", access_log=False, log_level="warning", log_config=None
    )
    server = _Server(config)
    task = asyncio.create_task(server.serve(), name="citycase-local-server")
    try:
        async with asyncio.timeout(_START_TIMEOUT_S):
            while not server.started:
                if task.done():
                    raise RuntimeError("the city did not start; see the log above")
                await asyncio.sleep(0.02)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        with contextlib.suppress(SystemExit):  # uvicorn exits this way when start-up failed
            await task
