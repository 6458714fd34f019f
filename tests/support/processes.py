"""Processes a test starts on 127.0.0.1 and stops, kills or starts again: the hotline stub
(``tests.support.hotline_stub``) and a whole city in one process (``python -m services run all``)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Any

import httpx

from services.tools.launcher import settings_env
from shared.core.settings import Settings
from tests.conftest import REPO

_READY_TIMEOUT_S = 90.0
_STOP_TIMEOUT_S = 15.0


def free_port() -> int:
    """A port nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


class _Process:
    """A child process, its output in a log file, started again at will."""

    def __init__(self, name: str, log: Path) -> None:
        self.name = name
        self.log = log
        self.process: asyncio.subprocess.Process | None = None

    async def _spawn(self, command: list[str], env: dict[str, str] | None = None) -> None:
        with self.log.open("ab") as output:
            self.process = await asyncio.create_subprocess_exec(
                *command, cwd=REPO, env={**os.environ, **(env or {})}, stdout=output, stderr=asyncio.subprocess.STDOUT
            )

    async def _until_answering(self, url: str, ready: Any = None) -> None:
        """Until ``url`` answers 200 (with ``ready`` in its JSON body, when given)."""
        async with httpx.AsyncClient(timeout=2) as client, asyncio.timeout(_READY_TIMEOUT_S):
            while True:
                assert self.process is not None
                if self.process.returncode is not None:
                    raise RuntimeError(f"{self.name} exited ({self.process.returncode}); see {self.log}")
                with contextlib.suppress(httpx.TransportError):
                    response = await client.get(url)
                    if response.status_code == 200 and (ready is None or response.json().get("ready") == ready):
                        return
                await asyncio.sleep(0.1)

    async def stop(self) -> None:
        """Stop it (SIGTERM), killing it if it does not stop in time."""
        if self.process is None or self.process.returncode is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(_STOP_TIMEOUT_S):
                await self.process.wait()
        except TimeoutError:
            await self.kill()

    async def kill(self) -> None:
        """kill -9: no chance to finish anything."""
        if self.process is None or self.process.returncode is not None:
            return
        self.process.kill()
        await self.process.wait()


class HotlineStub(_Process):
    """The hotline stub on its port: what it received, and how it answers each path."""

    def __init__(self, folder: Path, secret: str) -> None:
        super().__init__("the hotline stub", folder / "stub.log")
        self.port = free_port()
        self.requests = folder / "requests.jsonl"
        self.secret = secret

    def url(self, path: str) -> str:
        """The address of one of its paths."""
        return f"http://127.0.0.1:{self.port}{path}"

    async def start(self, **modes: str) -> None:
        """Start it (again), each path of ``modes`` (``hotline="fail"``: ``/hotline``) answering so."""
        command = [sys.executable, "-m", "tests.support.hotline_stub", "--port", str(self.port)]
        command += ["--log", str(self.requests), "--secret", self.secret]
        command += [f"--mode=/{path}={mode}" for path, mode in modes.items()]
        await self._spawn(command)
        await self._until_answering(self.url("/"))

    async def answer(self, path: str, mode: str) -> None:
        """From now on answer ``/path`` with ``mode``: ok (200), fail (500), hang (no answer)."""
        async with httpx.AsyncClient(timeout=5) as client:
            response = await client.post(self.url("/_control"), json={"path": f"/{path}", "mode": mode})
            response.raise_for_status()

    def received(self) -> list[dict[str, Any]]:
        """Every request received so far, in order."""
        if not self.requests.exists():
            return []
        return [json.loads(line) for line in self.requests.read_text(encoding="utf-8").splitlines() if line]


class CityProcess(_Process):
    """Every service of a city in one process (either mode), on its port."""

    def __init__(self, settings: Settings, folder: Path) -> None:
        super().__init__("the city", folder / "city.log")
        self.settings = settings
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        """Start it (again) and wait until it is ready (its databases and the bus answer)."""
        command = [sys.executable, "-m", "services", "run", "all", "--host", "127.0.0.1", "--port", str(self.port)]
        await self._spawn([*command, "--mode", self.settings.mode.value], settings_env(self.settings))
        await self._until_answering(f"{self.url}/readyz", ready=True)

    async def cli(self, *arguments: str) -> str:
        """``python -m services ARGUMENTS`` with the city's settings; its output (it must succeed)."""
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "services",
            *arguments,
            cwd=REPO,
            env={**os.environ, **settings_env(self.settings)},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await process.communicate()
        assert process.returncode == 0, output.decode(errors="replace")
        return output.decode()
