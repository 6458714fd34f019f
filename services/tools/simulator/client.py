"""The simulator's HTTP client: one connection pool to the city, each call made as the right user.

Two kinds of answers are expected in an event-driven city and are not errors: a 404 or a 409
while the event that makes the call legal is still on its way between services (the department's
inbox learns of a dispatch a moment after dispatch made it), and a 401 once a token has expired
in simulated time. The first is retried shortly, the second after logging in again.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx

from shared.core.clock import Clock
from shared.core.settings import SERVICE_NAMES

# Log in again this long (simulated) before a token expires, rather than wait for the 401.
_TOKEN_MARGIN = timedelta(minutes=10)
_FIRST_RETRY_S = 0.02
_MAX_RETRY_S = 0.5


class SimulationError(Exception):
    """The city answered in a way the simulation cannot continue from."""


class Stuck(SimulationError):
    """A call kept getting a "not yet" answer for longer than the patience allows."""


@dataclass
class _Token:
    value: str
    renew_at: datetime


class CityClient:
    """Calls the services of one city, wherever each one runs."""

    def __init__(
        self,
        urls: Mapping[str, str],
        clock: Clock,
        passwords: Mapping[str, str],
        *,
        concurrency: int = 16,
        patience_s: float = 60.0,
        timeout_s: float = 120.0,
    ) -> None:
        """``urls`` maps each service name to the base URL of a process serving it; ``concurrency``
        is how many calls each process gets at once."""
        missing = [s for s in SERVICE_NAMES if s not in urls and s != "assessment"]
        if missing:
            raise ValueError(f"no URL for {', '.join(missing)}")
        self.urls = dict(urls)
        self.clock = clock
        self.passwords = passwords
        self.patience_s = patience_s
        self.calls = 0
        self.retries = 0
        # One small pool per process: httpcore looks at every pooled connection (system calls
        # included) on each request, so one pool of many connections to many hosts costs the
        # simulator more CPU than the calls themselves.
        # Idle connections are dropped before uvicorn's 5-second keep-alive ends on the other side:
        # a request sent on a connection the server is closing fails without a response.
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency, keepalive_expiry=2.0)
        self._pools = {base: httpx.AsyncClient(timeout=timeout_s, limits=limits) for base in set(self.urls.values())}
        self._slots = {base: asyncio.Semaphore(concurrency) for base in self._pools}
        self._tokens: dict[str, _Token] = {}
        self._logins: dict[str, asyncio.Lock] = {}

    async def aclose(self) -> None:
        """Close the connections."""
        for pool in self._pools.values():
            await pool.aclose()

    async def wait_ready(self, timeout_s: float = 120.0) -> None:
        """Wait until every service says it is ready (its database and the bus answer)."""
        async with asyncio.timeout(timeout_s):
            for service, url in self.urls.items():
                while True:
                    with contextlib.suppress(httpx.TransportError):
                        if (await self._pools[url].get(f"{url}/{service}/readyz")).status_code == 200:
                            break
                    await asyncio.sleep(0.1)

    async def call(
        self,
        user: str | None,
        method: str,
        service: str,
        path: str,
        *,
        retry_on: Collection[int] = (404, 409),
        **kwargs: Any,
    ) -> Any:
        """One call as ``user`` (None: anonymous) to ``/<service><path>``; the JSON answer.

        Answers in ``retry_on`` (and 503, a dependency briefly down) are retried until they stop or
        the patience runs out (:class:`Stuck`); any other failure is a :class:`SimulationError`.
        """
        base = self.urls[service]
        url = f"{base}/{service}{path}"
        delay = _FIRST_RETRY_S
        waited = 0.0
        logins = 0
        while True:
            headers = {"Authorization": f"Bearer {await self._token(user)}"} if user else {}
            try:
                async with self._slots[base]:
                    self.calls += 1
                    response = await self._pools[base].request(method, url, headers=headers, **kwargs)
            except httpx.TransportError as exc:
                # A read can be asked again; a change might have been made before the line broke.
                if method != "GET" or waited >= self.patience_s:
                    raise SimulationError(f"{method} {path} as {user}: {type(exc).__name__}: {exc}") from exc
                self.retries += 1
                await asyncio.sleep(delay)
                waited += delay
                delay = min(delay * 2, _MAX_RETRY_S)
                continue
            status = response.status_code
            if status < 300:
                return response.json()
            if status == 401 and user is not None and logins < 2:
                self._tokens.pop(user, None)
                logins += 1
                continue
            if status not in retry_on and status != 503:
                raise SimulationError(f"{method} {path} as {user}: {status} {response.text[:500]}")
            if waited >= self.patience_s:
                raise Stuck(f"{method} {path} as {user}: still {status} after {waited:.0f}s: {response.text[:300]}")
            self.retries += 1
            await asyncio.sleep(delay)
            waited += delay
            delay = min(delay * 2, _MAX_RETRY_S)

    async def poll(self, user: str, service: str, path: str, ready: Callable[[Any], bool]) -> Any:
        """GET ``path`` until ``ready(answer)`` holds (another service's event has arrived); the
        answer that satisfied it. :class:`Stuck` when the patience runs out first.
        """
        delay = _FIRST_RETRY_S
        waited = 0.0
        while True:
            answer = await self.call(user, "GET", service, path)
            if ready(answer):
                return answer
            if waited >= self.patience_s:
                raise Stuck(f"GET {path} as {user}: not there after {waited:.0f}s: {str(answer)[:300]}")
            self.retries += 1
            await asyncio.sleep(delay)
            waited += delay
            delay = min(delay * 2, _MAX_RETRY_S)

    async def _token(self, user: str) -> str:
        token = self._tokens.get(user)
        if token is not None and self.clock.now() < token.renew_at:
            return token.value
        lock = self._logins.setdefault(user, asyncio.Lock())
        async with lock:
            token = self._tokens.get(user)
            if token is None or self.clock.now() >= token.renew_at:
                token = await self._login(user)
                self._tokens[user] = token
            return token.value

    async def _login(self, user: str) -> _Token:
        if user not in self.passwords:
            raise SimulationError(f"the city has no log-in {user!r}")
        base = self.urls["intake"]
        try:
            async with self._slots[base]:
                self.calls += 1
                response = await self._pools[base].post(
                    f"{base}/auth/token", data={"username": user, "password": self.passwords[user]}
                )
        except httpx.TransportError as exc:
            raise SimulationError(f"log-in of {user}: {type(exc).__name__}: {exc}") from exc
        if response.status_code != 200:
            raise SimulationError(f"log-in of {user} refused: {response.status_code} {response.text[:300]}")
        body = response.json()
        renew_at = self.clock.now() + timedelta(seconds=body["expires_in"]) - _TOKEN_MARGIN
        return _Token(body["access_token"], renew_at)

    async def event_flow(self) -> float:
        """How many events the city's processes have published and consumed so far: the sum of the
        backbone's counters over every process. It stops changing when the city is quiet.
        """
        total = 0.0
        for base, pool in sorted(self._pools.items()):
            response = await pool.get(f"{base}/metrics")
            response.raise_for_status()
            for line in response.text.splitlines():
                if line.startswith(_FLOW_COUNTERS):
                    total += float(line.rsplit(" ", 1)[1])
        return total


_FLOW_COUNTERS = ("citycase_outbox_published_total{", "citycase_events_consumed_total{")
