"""Start the city as production runs it: each service its own operating-system process
(``python -m services run <service> --port P``), all given the same settings through the
environment, optionally the gateway in front of them (the console and every API at one address),
and stop them all together.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import AsyncIterator, Coroutine, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, TypeVar

import httpx

from shared.core.settings import Settings

_T = TypeVar("_T")
_READY_TIMEOUT_S = 120.0
_STOP_TIMEOUT_S = 15.0
_REPO = Path(__file__).resolve().parents[2]


def run_stoppable(main: Coroutine[Any, Any, _T]) -> _T:
    """``asyncio.run(main)``, where SIGTERM stops the program like Ctrl-C does: by cancelling it,
    so that the processes it started are stopped on the way out instead of left running.
    """

    async def guarded() -> _T:
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, task.cancel)
        try:
            return await main
        finally:
            loop.remove_signal_handler(signal.SIGTERM)

    return asyncio.run(guarded())


def stop_with_parent() -> None:
    """Stop this process (SIGTERM: a graceful shutdown) when its parent ends, however it ends: a
    launcher killed outright cannot stop its children, so they watch it instead.
    """
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(_STOP_TIMEOUT_S)
        os._exit(1)  # the graceful shutdown hung

    threading.Thread(target=watch, name="stop-with-parent", daemon=True).start()


def settings_env(settings: Settings) -> dict[str, str]:
    """``settings`` as the ``CITYCASE_*`` environment variables that make a process read them back."""
    env: dict[str, str] = {}
    for name, value in settings.model_dump(mode="json").items():
        key = f"CITYCASE_{name.upper()}"
        if value is None:
            continue  # unset optional settings fall back to their defaults in the child too
        if isinstance(value, dict):
            env.update({f"{key}__{inner.upper()}": str(v) for inner, v in value.items()})
        elif isinstance(value, bool):
            env[key] = "true" if value else "false"
        else:
            env[key] = str(value)
    return env


def replica_names(service: str, count: int) -> list[str]:
    """The names of ``count`` processes of ``service``: the service's own name, then
    ``<service>-2``, ``<service>-3``, ... (the keys of ``ServiceProcesses``, of ports and logs)."""
    if count < 1:
        raise ValueError(f"{service} needs at least one process, not {count}")
    return [service, *(f"{service}-{n}" for n in range(2, count + 1))]


class ServiceProcesses:
    """The running processes, one per service unless told otherwise (see ``replica_names``), and
    where each one listens."""

    def __init__(self) -> None:
        # Process name → base URL; the name is the service's own for its first (or only) process.
        self.urls: dict[str, str] = {}
        self._processes: dict[str, asyncio.subprocess.Process] = {}
        # Process name → the service it runs, where they differ (a second process of a service).
        self._services: dict[str, str] = {}

    @property
    def pids(self) -> dict[str, int]:
        """Each process's operating-system process id, by process name."""
        return {service: process.pid for service, process in self._processes.items()}

    def alive(self) -> bool:
        """Whether every process is still running."""
        return all(process.returncode is None for process in self._processes.values())

    async def start(
        self,
        service: str,
        port: int,
        settings: Settings,
        log: IO[bytes] | None,
        *,
        name: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        """Start ``service`` listening on 127.0.0.1:``port``, known as ``name`` (default: the
        service's name; another process of a service needs a name of its own). ``env`` is added to
        the process's environment last, over the settings (e.g. variables no setting holds)."""
        name = name or service
        host = "127.0.0.1"
        env = {**os.environ, **settings_env(settings), **(env or {})}
        command = [sys.executable, "-m", "services", "run", service, "--port", str(port), "--host", host]
        command += ["--mode", settings.mode.value, "--stop-with-parent"]
        self._processes[name] = await asyncio.create_subprocess_exec(
            *command, env=env, cwd=_REPO, stdout=log, stderr=asyncio.subprocess.STDOUT if log else None
        )
        self.urls[name] = f"http://{host}:{port}"
        if name != service:
            self._services[name] = service

    async def start_gateway(self, port: int, settings: Settings, log: IO[bytes] | None = None) -> str:
        """Start the gateway (``python -m services gateway``) on 127.0.0.1:``port`` in front of
        the services started so far, and wait until it answers; its URL, where the console is
        served and every service's API beside it (as an ingress routes them in production)."""
        host = "127.0.0.1"
        env = {**os.environ, **settings_env(settings)}
        command = [sys.executable, "-m", "services", "gateway", "--port", str(port), "--host", host]
        # One process per service behind it: the first of each (the gateway balances nothing).
        upstreams = {name: url for name, url in self.urls.items() if name not in self._services}
        command += ["--stop-with-parent", *(f"--service-url={name}={url}" for name, url in upstreams.items())]
        self._processes["gateway"] = await asyncio.create_subprocess_exec(
            *command, env=env, cwd=_REPO, stdout=log, stderr=asyncio.subprocess.STDOUT if log else None
        )
        url = f"http://{host}:{port}"
        first = next(iter(upstreams))
        async with httpx.AsyncClient(timeout=5) as client, asyncio.timeout(_READY_TIMEOUT_S):
            # Through the gateway to a service: both are up.
            await self._wait_answering(client, "gateway", f"{url}/{first}/readyz")
        return url

    async def wait_ready(self) -> None:
        """Wait until every process answers its service's readiness probe (database and bus up)."""
        async with httpx.AsyncClient(timeout=5) as client, asyncio.timeout(_READY_TIMEOUT_S):
            for name, url in self.urls.items():
                await self._wait_answering(client, name, f"{url}/{self._services.get(name, name)}/readyz")

    async def _wait_answering(self, client: httpx.AsyncClient, name: str, probe: str) -> None:
        """Wait until ``probe`` answers 200; fail when process ``name`` exits first."""
        while True:
            if self._processes[name].returncode is not None:
                raise RuntimeError(f"{name} exited with status {self._processes[name].returncode}")
            with contextlib.suppress(httpx.TransportError):
                if (await client.get(probe)).status_code == 200:
                    return
            await asyncio.sleep(0.2)

    async def stop(self) -> None:
        """Ask every process to stop (SIGTERM: uvicorn shuts down gracefully), kill the stragglers."""
        for process in self._processes.values():
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
        for service, process in self._processes.items():
            try:
                async with asyncio.timeout(_STOP_TIMEOUT_S):
                    await process.wait()
            except TimeoutError:
                print(f"{service} did not stop in {_STOP_TIMEOUT_S:.0f}s: killing it", file=sys.stderr)
                process.kill()
                await process.wait()


@contextlib.asynccontextmanager
async def launch(
    settings: Settings,
    services: Sequence[str],
    ports: Mapping[str, int],
    log_dir: Path | None = None,
    *,
    replicas: Mapping[str, int] | None = None,
    env: Mapping[str, str] | None = None,
) -> AsyncIterator[ServiceProcesses]:
    """Start one process per service on its port, wait until each is ready, and stop them all when
    the block ends (normally, on an error or on Ctrl-C). Each process's output goes to
    ``log_dir/<process name>.log`` when given, else to this program's terminal.

    ``replicas`` asks for more processes of a service (the benchmark's scale-out): they are named
    by ``replica_names``, and ``ports`` needs a port for each name. ``env`` goes to every process
    (see ``ServiceProcesses.start``).
    """
    names = {name: service for service in services for name in replica_names(service, (replicas or {}).get(service, 1))}
    processes = ServiceProcesses()
    logs = _open_logs(log_dir, list(names))
    try:
        for name, service in names.items():
            await processes.start(service, ports[name], settings, logs.get(name), name=name, env=env)
        await processes.wait_ready()
        yield processes
    finally:
        await processes.stop()
        for log in logs.values():
            log.close()


def _open_logs(log_dir: Path | None, names: Sequence[str]) -> dict[str, IO[bytes]]:
    if log_dir is None:
        return {}
    log_dir.mkdir(parents=True, exist_ok=True)
    return {name: (log_dir / f"{name}.log").open("ab") for name in names}
