"""The simulator survives a restarted service: a call whose connection is refused is sent again
until the process is back, a log-in goes to any process, and a write whose connection broke after
it left is sent again only when the city takes it twice as once.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest

from services.tools.simulator.client import CityClient, SimulationError
from shared.core.clock import SIMULATION_CLOCK_FILE, FileClock, SimulatedClock
from shared.core.settings import SERVICE_NAMES
from tests.conftest import REPO
from tests.e2e.harness import PASSWORDS

START = datetime(2026, 11, 16, 1, 0, tzinfo=UTC)
REPORT = {
    "category_code": "02-05-01",
    "description": "street vendor at the corner",
    "location": {"lon": 113.683853, "lat": 34.777301, "datum": "gcj02"},
    "client_ref": "restart-1",
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def start_city(folder: Path, port: int, **env: str) -> asyncio.subprocess.Process:
    """Every service in one process on ``folder`` (embedded), as ``python -m services run all``."""
    log = (folder.parent / "city.log").open("ab")
    return await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "services", "run", "all", "--port", str(port), "--stop-with-parent"),
        env={**os.environ, "CITYCASE_DATA_DIR": str(folder), **env},
        cwd=REPO,
        stdout=log,
        stderr=asyncio.subprocess.STDOUT,
    )


async def until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(60):
        while not condition():
            await asyncio.sleep(0.01)


async def test_a_call_sent_while_a_service_restarts_lands_once_it_is_back(tmp_path: Path) -> None:
    folder = tmp_path / "city"
    FileClock.create(folder / SIMULATION_CLOCK_FILE, START)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    city = await start_city(folder, port, CITYCASE_CLOCK_FILE=str(folder / SIMULATION_CLOCK_FILE))
    client = CityClient(dict.fromkeys(SERVICE_NAMES, base), FileClock(folder / SIMULATION_CLOCK_FILE), PASSWORDS)
    try:
        await client.wait_ready()
        assert await client.call("operator", "GET", "intake", "/reports", params={"status": "filed"}) == []
        await client.call("inspector1", "GET", "closure", "/checks")  # logged in: the report goes out at once
        city.kill()  # kill -9: nothing graceful
        await city.wait()
        retries = client.retries
        sent = asyncio.create_task(
            # Not marked resendable: a refused connection never reached the city, so it is sent again.
            client.call("inspector1", "POST", "intake", "/reports", retry_on=(), json=REPORT)
        )
        await until(lambda: client.retries > retries + 3)  # refused, and sent again, while it is down
        assert not sent.done()
        # Started again without naming its clock: the folder remembers it.
        city = await start_city(folder, port)
        report = await sent
        assert datetime.fromisoformat(report["received_at"]) == START
        filed = await client.call("operator", "GET", "intake", "/reports", params={"status": "filed"})
        assert [r["id"] for r in filed] == [report["id"]]  # once, however often it was sent

        # A log-in goes to any process: here intake's is gone, another one answers.
        dead = f"http://127.0.0.1:{free_port()}"
        elsewhere = CityClient({**dict.fromkeys(SERVICE_NAMES, base), "intake": dead}, client.clock, PASSWORDS)
        try:
            case = await elsewhere.call("shiftlead", "GET", "dispatch", f"/cases/{report['id']}")
            assert case["status"] == "dispatched"
        finally:
            await elsewhere.aclose()
    finally:
        await client.aclose()
        if city.returncode is None:
            city.terminate()
            await city.wait()


@asynccontextmanager
async def hanging_up(answer_after: int) -> AsyncIterator[tuple[str, Counter[str]]]:
    """A server on 127.0.0.1 that reads each request and hangs up without an answer, the first
    ``answer_after`` times per request line; then it answers ``{}``, saying that it closes the
    connection. Yields its URL and the requests it read, by request line."""
    seen: Counter[str] = Counter()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        length = next(
            (int(line.split(":")[1]) for line in head.splitlines() if line.lower().startswith("content-length")), 0
        )
        await reader.readexactly(length)
        line = head.splitlines()[0]
        seen[line] += 1
        if seen[line] > answer_after:
            writer.write(
                b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}"
            )
            await writer.drain()
        writer.close()

    async with listening(serve) as base:
        yield base, seen


@asynccontextmanager
async def listening(
    serve: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
) -> AsyncIterator[str]:
    """A server on 127.0.0.1 that ``serve``s each connection; yields its URL."""
    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    async with server:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"


@asynccontextmanager
async def anonymous_client(base: str) -> AsyncIterator[CityClient]:
    """The simulator's client with every service at ``base``, no one to log in as."""
    client = CityClient(dict.fromkeys(SERVICE_NAMES, base), SimulatedClock(START), {})
    try:
        yield client
    finally:
        await client.aclose()


async def test_a_write_whose_connection_broke_after_it_left_is_resent_only_when_safe() -> None:
    async with hanging_up(answer_after=2) as (base, seen), anonymous_client(base) as client:
        assert await client.call(None, "GET", "intake", "/reports/1") == {}
        assert await client.call(None, "POST", "intake", "/public/reports", resendable=True, json=REPORT) == {}
        with pytest.raises(SimulationError, match="POST /reports/1/file as None: ServerDisconnectedError"):
            await client.call(None, "POST", "intake", "/reports/1/file")
    assert seen == {
        "GET /intake/reports/1 HTTP/1.1": 3,
        "POST /intake/public/reports HTTP/1.1": 3,
        "POST /intake/reports/1/file HTTP/1.1": 1,  # it might have been filed: not sent again
    }


@asynccontextmanager
async def arriving(after_s: Callable[[str], float]) -> AsyncIterator[tuple[str, dict[str, list[float]]]]:
    """A server on 127.0.0.1 that answers each path 404 ("not yet") until ``after_s(path)`` seconds
    after it was first asked for, then ``{}``, as a service answers while an event travels to it.
    Yields its URL and when it was asked for each path (its event loop's time)."""
    asked: dict[str, list[float]] = defaultdict(list)
    loop = asyncio.get_running_loop()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while not reader.at_eof():
            try:
                head = (await reader.readuntil(b"\r\n\r\n")).decode()
            except asyncio.IncompleteReadError:
                break
            path = head.split()[1]
            asked[path].append(loop.time())
            arrived = loop.time() - asked[path][0] >= after_s(path)
            status, body = (b"200 OK", b"{}") if arrived else (b"404 Not Found", b'{"code":"not_found"}')
            writer.write(
                b"HTTP/1.1 "
                + status
                + b"\r\ncontent-type: application/json\r\ncontent-length: "
                + str(len(body)).encode()
                + b"\r\n\r\n"
                + body
            )
            await writer.drain()
        writer.close()

    async with listening(serve) as base:
        yield base, asked


async def test_a_call_waiting_for_an_event_learns_how_long_such_events_take() -> None:
    cases = [str(uuid.UUID(int=n)) for n in range(1, 7)]
    async with arriving(lambda _path: 0.2) as (base, asked), anonymous_client(base) as client:
        for case in cases:
            assert await client.call(None, "GET", "dispatch", f"/cases/{case}") == {}
        # Another kind of call has learnt nothing yet.
        assert await client.call(None, "GET", "handling", f"/cases/{cases[0]}") == {}
    tries = [len(asked[f"/dispatch/cases/{case}"]) for case in cases]
    # Pauses of 10, 15, 22, 34, 51, 76 ms... before the event's 200 ms: at least six "not yet"s.
    assert tries[0] >= 7
    # Then most of the wait at once, and a few short pauses for the rest.
    assert max(tries[2:]) <= 4, tries
    assert len(asked[f"/handling/cases/{cases[0]}"]) >= 7


async def test_events_that_come_quicker_than_they_did_shorten_the_pause() -> None:
    slow = [f"/cases/{uuid.UUID(int=n)}" for n in range(1, 7)]
    quick = [f"/cases/{uuid.UUID(int=n)}" for n in range(7, 19)]

    def after_s(path: str) -> float:
        return 0.2 if path.removeprefix("/dispatch") in slow else 0.005

    async with arriving(after_s) as (base, asked), anonymous_client(base) as client:
        for path in slow + quick:
            assert await client.call(None, "GET", "dispatch", path) == {}
    # The pause before the second look: most of the 200 ms learnt from the slow ones at first, and
    # far shorter once a dozen events came at the first look (the answer was there all along).
    first_pause = [asked[f"/dispatch{path}"][1] - asked[f"/dispatch{path}"][0] for path in quick]
    assert first_pause[0] > 0.1
    assert first_pause[-1] < first_pause[0] / 2, first_pause


async def test_a_poll_for_what_was_just_caused_first_looks_after_the_learnt_pause() -> None:
    paths = [f"/cases/{uuid.UUID(int=n)}" for n in range(1, 9)]
    loop = asyncio.get_running_loop()
    began: dict[str, float] = {}
    async with arriving(lambda _path: 0.2) as (base, asked), anonymous_client(base) as client:
        for path in paths:
            began[path] = loop.time()
            case = await client.poll(None, "closure", path, lambda _case: True, waiting_for="x", just_caused=True)
            assert case == {}
    first_look = [asked[f"/closure{path}"][0] - began[path] for path in paths]
    # Once the wait is learnt, most of it goes by before the first look.
    assert min(first_look[-3:]) > 0.1, first_look
