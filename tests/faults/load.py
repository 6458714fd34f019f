"""A steady, bounded load on the city through its HTTP APIs, and the referee of what it was answered.

Inspectors report problems on patrol in their cells, the street office signs for its cases and
reports them handled, the inspectors check them on site and the cases close: every service and
every consumer has work while a fault strikes. Each call is judged:

- any 5xx other than 503 is a failure, always;
- a 503 is a failure unless a dependency outage (``Referee.outage``) lasted during the call;
- a connection refused or broken is a failure unless the service called was down
  (``Referee.down``) during the call.

Calls that may be sent again are: a report carries its own ``client_ref``, so sending it twice is
one report; the other steps are read back from the inboxes and a 409 means someone (an earlier
copy) did it already.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from shared.city.model import City
from shared.core.ids import new_id
from tests.e2e.harness import _spots

STREET = "990102001"  # 白鹭街道: the street office below signs for its street-order cases
CATEGORY_FAMILY = "02-05-"  # street order, routed by street
DEPARTMENT_USER = "dept-street"
INSPECTORS = 3
HANDLED = {"result": "cleared on site"}
PASSED = {"passed": True, "note": "checked on site"}
_PAUSE_S = 0.2
_STOP_TIMEOUT_S = 60.0
# Answered before every timeout of the services (pool 5 s, statements 4 s); a call that takes
# longer is a hung request, which a client sees as a failure.
CALL_TIMEOUT_S = 30.0


@dataclass
class _Window:
    kind: str
    start: float
    end: float | None = None

    def overlaps(self, began: float, ended: float) -> bool:
        return self.start <= ended and (self.end is None or began <= self.end)


@dataclass
class Referee:
    """Which answers were allowed when, and the failures seen."""

    windows: list[_Window] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    # Per service, when each call answered 503 began and ended.
    unavailable: defaultdict[str, list[tuple[float, float]]] = field(default_factory=lambda: defaultdict(list))

    @contextlib.contextmanager
    def outage(self) -> Iterator[None]:
        """A dependency is out for the block: 503s are what a client should get."""
        with self._window("outage"):
            yield

    @contextlib.contextmanager
    def down(self, service: str) -> Iterator[None]:
        """``service``'s process is down for the block: its connections are refused or broken."""
        with self._window(f"down:{service}"):
            yield

    @contextlib.contextmanager
    def _window(self, kind: str) -> Iterator[None]:
        window = _Window(kind, time.monotonic())
        self.windows.append(window)
        try:
            yield
        finally:
            window.end = time.monotonic()

    def allowed(self, kind: str, began: float, ended: float) -> bool:
        """Whether a window of ``kind`` was open at some point between ``began`` and ``ended``."""
        return any(w.kind == kind and w.overlaps(began, ended) for w in self.windows)

    def unavailable_again(self, service: str, since: float) -> bool:
        """Whether ``service`` answered 503 after ``since`` to a call, and again to a call that began
        after that first answer: it keeps answering, and does not hold calls instead."""
        answers = [(began, ended) for began, ended in self.unavailable[service] if began >= since]
        return any(began > answers[0][1] for began, _ in answers)

    def failure(self, what: str) -> None:
        """Note a failure a client saw."""
        self.failures.append(what)


@dataclass
class Progress:
    """What the load got done (as the answers said)."""

    reports: list[str] = field(default_factory=list)
    accepted: int = 0
    handled: int = 0
    closed: int = 0

    def __str__(self) -> str:
        return f"{len(self.reports)} reported, {self.accepted} accepted, {self.handled} handled, {self.closed} closed"


class Load:
    """The city's people at work, until stopped."""

    def __init__(self, city: City, urls: Mapping[str, str], referee: Referee) -> None:
        self.city = city
        self.urls = urls
        self.referee = referee
        self.progress = Progress()
        # Idle connections are dropped before uvicorn's 5-second keep-alive ends on the other side:
        # a request sent on a connection the server is closing fails without a response.
        limits = httpx.Limits(keepalive_expiry=2.0)
        self._clients = {
            service: httpx.AsyncClient(base_url=url, timeout=CALL_TIMEOUT_S, limits=limits)
            for service, url in urls.items()
        }
        self._passwords = {u.username: u.password for u in city.users if u.password is not None}
        self._tokens: dict[str, str] = {}
        self._stopping = asyncio.Event()
        inspectors = [i for i in city.inspectors if all(c.startswith(STREET) for c in i.cell_ids)][:INSPECTORS]
        users = {u.inspector_id: u.username for u in city.users if u.inspector_id is not None}
        self._inspectors = [users[i.id] for i in inspectors]
        categories = [c.code for c in city.categories if c.code.startswith(CATEGORY_FAMILY)]
        self._spots = {
            users[i.id]: itertools.cycle(list(itertools.product(categories, _spots(city, i.cell_ids))))
            for i in inspectors
        }

    async def aclose(self) -> None:
        """Close the connections."""
        for client in self._clients.values():
            await client.aclose()

    @contextlib.asynccontextmanager
    async def running(self, reports_per_second: float = 4.0) -> AsyncIterator[Progress]:
        """The load runs for the block, then stops (its calls under way finish, bounded)."""
        self._stopping.clear()
        interval = len(self._inspectors) / reports_per_second
        workers = [self._report(inspector, interval) for inspector in self._inspectors]
        workers += [self._check(inspector) for inspector in self._inspectors]
        workers.append(self._handle(DEPARTMENT_USER))
        tasks = [asyncio.create_task(worker) for worker in workers]
        try:
            yield self.progress
        finally:
            self._stopping.set()
            done, pending = await asyncio.wait(tasks, timeout=_STOP_TIMEOUT_S)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            for task in done:
                task.result()  # a bug of the load itself must not pass unseen
            if pending:
                self.referee.failure(f"{len(pending)} worker(s) did not stop within {_STOP_TIMEOUT_S:.0f}s")

    async def until(self, done: Callable[[Progress], bool], timeout_s: float, what: str) -> None:
        """Wait (bounded) until the load's progress satisfies ``done``."""
        try:
            async with asyncio.timeout(timeout_s):
                while not done(self.progress):
                    await asyncio.sleep(0.1)
        except TimeoutError:
            raise AssertionError(f"{what}: not within {timeout_s:.0f}s ({self.progress})") from None

    async def burst(self, reports: int) -> None:
        """``reports`` reports at once, from every inspector in turn."""
        inspectors = itertools.islice(itertools.cycle(self._inspectors), reports)
        await asyncio.gather(*(self._report_once(inspector) for inspector in inspectors))

    async def _report(self, inspector: str, interval: float) -> None:
        while not self._stopping.is_set():
            await self._report_once(inspector)
            await self._pause(interval)

    async def _report_once(self, inspector: str) -> None:
        category, (lon, lat) = next(self._spots[inspector])
        body = {
            "category_code": category,
            "description": "found on patrol",
            "location": {"lon": lon, "lat": lat},
            "client_ref": new_id().hex,  # the same on every copy sent: one report
        }
        response = await self.call(inspector, "intake", "POST", "/intake/reports", json=body)
        if response is not None:
            if response.status_code in (200, 201):
                self.progress.reports.append(response.json()["id"])
            else:
                self._unexpected(response)

    async def _handle(self, department: str) -> None:
        while not self._stopping.is_set():
            for task in await self._inbox(department, "handling", "/handling/inbox"):
                case = f"/handling/cases/{task['id']}"
                if task["status"] == "assigned":
                    response = await self.call(department, "handling", "POST", f"{case}/accept")
                    self.progress.accepted += self._done(response)
                elif task["status"] == "accepted":
                    response = await self.call(department, "handling", "POST", f"{case}/report", data=HANDLED)
                    self.progress.handled += self._done(response)
            await self._pause(_PAUSE_S)

    async def _check(self, inspector: str) -> None:
        while not self._stopping.is_set():
            for task in await self._inbox(inspector, "closure", "/closure/checks"):
                path = f"/closure/cases/{task['id']}/check"
                self.progress.closed += self._done(await self.call(inspector, "closure", "POST", path, json=PASSED))
            await self._pause(_PAUSE_S)

    async def _inbox(self, user: str, service: str, path: str) -> list[dict[str, Any]]:
        """What ``user`` has to do (none once the load is stopping)."""
        response = await self.call(user, service, "GET", path)
        if self._stopping.is_set() or response is None or response.status_code != 200:
            return []
        tasks: list[dict[str, Any]] = response.json()
        return tasks

    def _done(self, response: httpx.Response | None) -> int:
        """1 when the step was taken; 0 when someone took it already (an earlier copy: 409) or
        its event is still on its way (404); a failure otherwise."""
        if response is None or response.status_code in (404, 409):
            return 0
        if response.status_code == 200:
            return 1
        self._unexpected(response)
        return 0

    def _unexpected(self, response: httpx.Response) -> None:
        request = response.request
        self.referee.failure(f"{request.method} {request.url.path}: {response.status_code} {response.text[:300]}")

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._stopping.wait()

    async def call(self, user: str, service: str, method: str, path: str, **kwargs: Any) -> httpx.Response | None:
        """One call as ``user``, sent again after an allowed 503 or a broken connection (and after
        one that was not allowed, which is noted); None when the load stopped before an answer or
        the answer was a server error."""
        logins = 0
        while True:
            headers = {"Authorization": f"Bearer {await self._token(user)}"}
            began = time.monotonic()
            try:
                response = await self._clients[service].request(method, path, headers=headers, **kwargs)
            except httpx.TransportError as exc:
                if not self.referee.allowed(f"down:{service}", began, time.monotonic()):
                    self.referee.failure(f"{method} {path} to {service}: {type(exc).__name__}: {exc}")
                if self._stopping.is_set() and method == "GET":
                    return None
                await asyncio.sleep(_PAUSE_S)
                continue
            status, ended = response.status_code, time.monotonic()
            if status == 503:
                self.referee.unavailable[service].append((began, ended))
                if not self.referee.allowed("outage", began, ended):
                    self.referee.failure(f"{method} {path}: 503 with no outage: {response.text[:300]}")
                await asyncio.sleep(_PAUSE_S)
                continue
            if status >= 500:
                self.referee.failure(f"{method} {path}: {status} {response.text[:300]}")
                return None
            if status == 401 and logins < 2:
                self._tokens.pop(user, None)
                logins += 1
                continue
            return response

    async def _token(self, user: str) -> str:
        """The user's token, logged in at whichever process answers (each serves ``/auth/token``)."""
        if user not in self._tokens:
            form = {"username": user, "password": self._passwords[user]}
            async with asyncio.timeout(CALL_TIMEOUT_S):
                while user not in self._tokens:
                    for client in self._clients.values():
                        with contextlib.suppress(httpx.TransportError):
                            response = await client.post("/auth/token", data=form)
                            if response.status_code == 200:
                                self._tokens[user] = response.json()["access_token"]
                                break
                    else:
                        await asyncio.sleep(_PAUSE_S)
        return self._tokens[user]
