"""The faults, done to the real local infrastructure (deploy/local): the broker stopped and started
with ``kafka.sh``, PostgreSQL restarted with ``pg_ctlcluster`` and hung with SIGSTOP, and every one
of them undone however the suite ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

from tests.conftest import REPO

_COMMAND_TIMEOUT_S = 150.0
# A hang is undone by a process of its own after this long even if the suite is killed meanwhile:
# a PostgreSQL left stopped would hang every later test and every later `make test`.
HANG_DEAD_MANS_SWITCH_S = 60


async def run(command: Sequence[str | Path], env: dict[str, str] | None = None, stdin: str = "") -> str:
    """Run ``command`` to its end (bounded), with ``stdin`` as its input; its output, or an error
    with it."""
    process = await asyncio.create_subprocess_exec(
        *map(str, command),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, **(env or {})},
    )
    try:
        async with asyncio.timeout(_COMMAND_TIMEOUT_S):
            output, _ = await process.communicate(stdin.encode())
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    text = output.decode(errors="replace")
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, command))} failed ({process.returncode}): {text}")
    return text


async def postgres_up(databases: Sequence[str] = ()) -> None:
    """``postgres.sh up``: start the cluster when it is down and make sure ``databases`` exist
    besides the usual ones (idempotent, a second or so when everything is there).
    """
    usual = os.environ.get("CITYCASE_PG_DATABASES", "citycase citycase_test").split()
    wanted = " ".join(dict.fromkeys([*usual, *databases]))
    await run([REPO / "deploy/local/postgres.sh", "up"], env={"CITYCASE_PG_DATABASES": wanted})


async def broker(action: str) -> None:
    """``kafka.sh up`` or ``kafka.sh down``."""
    await run([REPO / "deploy/local/kafka.sh", action])


async def broker_answers() -> bool:
    """``kafka.sh status``: whether a broker answers (a probe in milliseconds, no JVM started)."""
    try:
        await run([REPO / "deploy/local/kafka.sh", "status"])
    except RuntimeError:
        return False
    return True


def _pg_version() -> str:
    # The same choice as deploy/local/postgres.sh: the configured major, else the highest installed.
    configured = os.environ.get("CITYCASE_PG_VERSION")
    if configured:
        return configured
    return max((p.name for p in Path("/usr/lib/postgresql").iterdir()), key=lambda v: [int(n) for n in v.split(".")])


async def restart_postgres() -> None:
    """Restart the cluster (a fast shutdown: every connection is cut), as an operator would."""
    await run(["pg_ctlcluster", "--skip-systemctl-redirect", _pg_version(), "main", "restart"])


def _postgres_processes() -> list[int]:
    """The postmaster's pid, then its children's (the backends and the auxiliary processes)."""
    listing = subprocess.run(
        ["pg_lsclusters", "--no-header", _pg_version(), "main"], capture_output=True, text=True, check=True
    ).stdout.split()
    data_dir = Path(listing[5])
    postmaster = int((data_dir / "postmaster.pid").read_text().split()[0])
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            # The command may hold spaces and parentheses: the fields after its last ')' are fixed.
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == postmaster:
                children.append(int(stat.parent.name))
    return [postmaster, *children]


def _signal(pids: Sequence[int], signum: signal.Signals) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)


@contextlib.asynccontextmanager
async def postgres_hung() -> AsyncIterator[None]:
    """PostgreSQL stopped dead (SIGSTOP to the postmaster, then to every backend) for the block:
    connections stay open and nothing answers, as when a database host freezes.
    """
    pids = _postgres_processes()
    resume = " ".join(map(str, pids))
    switch = await asyncio.create_subprocess_exec(
        "sh", "-c", f"sleep {HANG_DEAD_MANS_SWITCH_S}; kill -CONT {resume} 2>/dev/null", start_new_session=True
    )
    try:
        _signal(pids, signal.SIGSTOP)  # the postmaster first: it can fork no new backend after
        _signal(_postgres_processes()[1:], signal.SIGSTOP)  # one forked meanwhile
        yield
    finally:
        _signal([*pids, *_postgres_processes()], signal.SIGCONT)
        with contextlib.suppress(ProcessLookupError):  # it fired already
            switch.kill()
        await switch.wait()


async def restore(databases: Sequence[str] = ()) -> None:
    """Whatever a fault left behind, undone: PostgreSQL running and answering (with ``databases``
    besides the usual ones), the broker up."""
    with contextlib.suppress(OSError, subprocess.CalledProcessError, IndexError, ValueError):
        _signal(_postgres_processes(), signal.SIGCONT)
    await postgres_up(databases)
    if not await broker_answers():
        await broker("up")
