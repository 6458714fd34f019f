"""The simulator's HTTP client: one connection pool to the city, each call made as the right user.

Two kinds of answers are expected in an event-driven city and are not errors: a 404 or a 409
while the event that makes the call legal is still on its way between services (the department's
inbox learns of a dispatch a moment after dispatch made it), and a 401 once a token has expired
in simulated time. The first is retried shortly, the second with a fresh token: the session's
refresh token buys one, and when the session has ended too, the user logs in again.

How long to pause before asking again is learnt: each kind of call (its method and path, the ids
left out) remembers how long its events have lately taken to arrive after a "not yet", and the
first pause is most of that, where a fixed first pause of 10 ms asked three or four times in vain
for each event that crosses Kafka (every "not yet" is a request the city serves for nothing).

A service process may be restarted under the simulation (fault tests do it): a call whose
connection is refused is sent again until the process is back, and a log-in goes to any process.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import aiohttp

from shared.core.clock import Clock
from shared.core.settings import SERVICE_NAMES

# Renew a token this long (simulated) before it expires, at most a third of its life, rather than
# wait for the 401.
_TOKEN_MARGIN = timedelta(minutes=10)
# Pauses between tries while an event travels: simulated time stands still meanwhile, so a pause
# that overshoots the event's arrival is wall time lost by the whole step. They grow gently and
# stay short (an event hop takes tens to hundreds of milliseconds); a "not yet" costs one cheap GET.
_FIRST_RETRY_S = 0.01
_RETRY_GROWTH = 1.5
_MAX_RETRY_S = 0.1
# The first pause after a "not yet" is this share of the time the kind of call's events have lately
# taken to arrive (a moving average, each new wait weighing ``_LEARNING``), between the fixed
# first pause and ``_LONGEST_FIRST_PAUSE_S``; the pauses after it grow from a tenth of it. An
# answer there at the first look after that pause may have come at any time within it: what is
# learnt then is half the pause (learning the whole would never learn a quicker event: the
# average would settle at ten times a call's own time). One that falls short asks again soon and
# learns the wait it saw: the average follows the city's pace both ways.
_SHARE_OF_LEARNT_WAIT = 0.9
_LEARNING = 0.2
_LONGEST_FIRST_PAUSE_S = 0.5
# Ids in a path: calls that differ only by them are one kind.
_ID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
# A call that got no answer: the connection refused or broken, or the time out.
_NO_ANSWER = (aiohttp.ClientError, TimeoutError)
# Failures before the request left: a process restarting refuses connections. Always safe to resend.
_NEVER_SENT = (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError)
# Methods the server takes twice as once (HTTP's idempotent methods).
_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})


class SimulationError(Exception):
    """The city answered in a way the simulation cannot continue from."""


class Stuck(SimulationError):
    """A call kept getting a "not yet" answer for longer than the patience allows."""


@dataclass(frozen=True)
class Answer:
    """An HTTP answer, read whole."""

    status_code: int
    body: bytes

    @property
    def text(self) -> str:
        """The body as text (the city answers in UTF-8)."""
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body as JSON."""
        return json.loads(self.body)


@dataclass
class _Token:
    value: str
    renew_at: datetime
    refresh: str
    session_ends: datetime


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
        # One pool per process, as many connections as calls in flight. Idle connections are
        # dropped before uvicorn's 5-second keep-alive ends on the other side: a request sent on a
        # connection the server is closing fails without a response.
        self._pools = {
            base: aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=concurrency, keepalive_timeout=2.0),
                # Bounds on connecting (a slot, then the connection) and on each read, as httpx's were:
                # a call that timed out connecting never left, and is sent again.
                timeout=aiohttp.ClientTimeout(total=None, connect=timeout_s, sock_read=timeout_s),
            )
            for base in set(self.urls.values())
        }
        self._slots = {base: asyncio.Semaphore(concurrency) for base in self._pools}
        self._tokens: dict[str, _Token] = {}
        self._logins: dict[str, asyncio.Lock] = {}
        self._waits = _Waits()

    async def aclose(self) -> None:
        """Close the connections."""
        for pool in self._pools.values():
            await pool.close()

    async def wait_ready(self, timeout_s: float = 120.0) -> None:
        """Wait until every service says it is ready (its database and the bus answer)."""
        async with asyncio.timeout(timeout_s):
            for service, url in self.urls.items():
                while True:
                    with contextlib.suppress(*_NO_ANSWER):
                        async with self._pools[url].get(f"{url}/{service}/readyz") as response:
                            if response.status == 200:
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
        resendable: bool = False,
        **kwargs: Any,
    ) -> Any:
        """One call as ``user`` (None: anonymous) to ``/<service><path>``; the JSON answer.

        Answers in ``retry_on`` (and 503, a dependency briefly down) are retried until they stop or
        the patience runs out (:class:`Stuck`); any other failure is a :class:`SimulationError`.
        A call whose connection broke is sent again when it never left, when its method is
        idempotent, or when it is ``resendable``: a write the city recognises when it comes again
        (a report with its ``client_ref``, a photo, which is stored by its content). Any other
        write might have been made before the line broke.
        """
        patience = _Patience(self.patience_s, self._waits, f"{method} {_shape(service, path)}")
        answer = await self._answer(
            user, method, service, path, patience, retry_on=retry_on, resendable=resendable, **kwargs
        )
        patience.arrived()
        return answer

    async def _answer(
        self,
        user: str | None,
        method: str,
        service: str,
        path: str,
        patience: _Patience,
        *,
        retry_on: Collection[int],
        resendable: bool,
        **kwargs: Any,
    ) -> Any:
        """:meth:`call`'s work, its pauses taken from ``patience`` (which the caller tells of the
        answer's arrival)."""
        target = f"/{service}{path}"
        resendable = resendable or method in _IDEMPOTENT
        logins = 0
        while True:
            token = await self._token(user) if user else None
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            try:
                response = await self._send(
                    [self.urls[service]], method, target, patience, resendable=resendable, headers=headers, **kwargs
                )
            except _NO_ANSWER as exc:
                raise SimulationError(f"{method} {path} as {user}: {type(exc).__name__}: {exc}") from exc
            status = response.status_code
            if status < 300:
                return response.json()
            if status == 401 and user is not None and logins < 2:
                self._renew_soon(user, token)
                logins += 1
                continue
            if status not in retry_on and status != 503:
                raise SimulationError(f"{method} {path} as {user}: {status} {response.text[:500]}")
            if patience.spent:
                raise Stuck(
                    f"{method} {path} as {user}: still {status} after {patience.waited:.0f}s: {response.text[:300]}"
                )
            if status != 503:
                patience.not_yet()
            self.retries += 1
            await patience.pause()

    async def _send(
        self,
        bases: Sequence[str],
        method: str,
        target: str,
        patience: _Patience,
        *,
        resendable: bool,
        **kwargs: Any,
    ) -> Answer:
        """Send ``method target`` to the first of the processes at ``bases`` able to take it.

        A process that is restarting refuses the connection, and one whose database or bus is
        briefly down answers 503: the next one is asked, and after each round all of them again,
        with a growing pause, until ``patience`` is spent (then the last 503 is answered, or the
        connection error raised). A connection that broke after the request left is tried again
        only when the request is ``resendable``.
        """
        while True:
            last: Answer | aiohttp.ClientError | TimeoutError | None = None
            for base in bases:
                try:
                    async with self._slots[base]:
                        self.calls += 1
                        last = await self._request(base, method, target, **kwargs)
                except _NO_ANSWER as exc:
                    if not (resendable or isinstance(exc, _NEVER_SENT)):
                        raise
                    last = exc
                    continue
                if last.status_code != 503:
                    return last
            if patience.spent:
                if isinstance(last, _NO_ANSWER):
                    raise last
                assert last is not None
                return last
            self.retries += 1
            await patience.pause()

    async def _request(
        self,
        base: str,
        method: str,
        target: str,
        *,
        files: Sequence[tuple[str, tuple[str, bytes, str]]] = (),
        data: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> Answer:
        """One request to the process at ``base``, its answer read whole. ``files`` (field,
        (name, content, type)) go as a multipart form with the fields of ``data``; ``data`` alone
        as a URL-encoded form; the rest as aiohttp takes it (``json``, ``params``, ``headers``)."""
        body: aiohttp.FormData | Mapping[str, str] | None = data
        if files:
            # A form is consumed by its request: a new one for each try.
            form = aiohttp.FormData()
            for name, value in (data or {}).items():
                form.add_field(name, value)
            for name, (filename, content, content_type) in files:
                form.add_field(name, content, filename=filename, content_type=content_type)
            body = form
        # A redirect is an answer to report, not to follow: every path the simulator calls is exact.
        request = self._pools[base].request(method, f"{base}{target}", data=body, allow_redirects=False, **kwargs)
        async with request as response:
            return Answer(response.status, await response.read())

    async def poll(
        self,
        user: str | None,
        service: str,
        path: str,
        ready: Callable[[Any], bool],
        *,
        waiting_for: str,
        just_caused: bool = False,
    ) -> Any:
        """GET ``path`` until ``ready(answer)`` holds (another service's event has arrived); the
        answer that satisfied it. :class:`Stuck` when the patience runs out first. Its pauses are
        learnt from the polls ``waiting_for`` the same thing: one path serves several (a routing
        comes in milliseconds, a deadline timer's report on the timer's next round). A poll for
        what the caller ``just_caused`` pauses before its first look, as after a "not yet": the
        event has only just set off.
        """
        kind = f"poll {_shape(service, path)} for {waiting_for}"
        # One patience whether the service does not know the case yet (404) or does not show the
        # event yet: the pauses and what is learnt are the whole wait's.
        patience = _Patience(self.patience_s, self._waits, kind)
        if just_caused:
            patience.not_yet()
            await patience.pause()
        while True:
            answer = await self._answer(user, "GET", service, path, patience, retry_on=(404, 409), resendable=True)
            if ready(answer):
                patience.arrived()
                return answer
            if patience.spent:
                raise Stuck(f"GET {path} as {user}: not there after {patience.waited:.0f}s: {str(answer)[:300]}")
            patience.not_yet()
            self.retries += 1
            await patience.pause()

    async def _token(self, user: str) -> str:
        token = self._tokens.get(user)
        if token is not None and self.clock.now() < token.renew_at:
            return token.value
        # One renewal per user at a time: a refresh token is good once, so two calls refreshing
        # with the same one would end the session.
        lock = self._logins.setdefault(user, asyncio.Lock())
        async with lock:
            token = self._tokens.get(user)
            if token is None or self.clock.now() >= token.renew_at:
                token = await self._renewed(user, token)
                self._tokens[user] = token
            return token.value

    def _renew_soon(self, user: str, refused: str | None) -> None:
        """The city refused ``refused``: renew it at the next call (unless it was renewed already)."""
        token = self._tokens.get(user)
        if token is not None and token.value == refused:
            token.renew_at = self.clock.now()

    async def _renewed(self, user: str, token: _Token | None) -> _Token:
        """A fresh token for ``user``: from the session's refresh token while it lasts, else (or
        when the refresh got no answer, its connection broken after it left) by logging in."""
        if token is not None and self.clock.now() < token.session_ends:
            form = {"grant_type": "refresh_token", "refresh_token": token.refresh}
            with contextlib.suppress(SimulationError):
                refreshed = await self._grant(user, "/auth/refresh", form)
                if refreshed is not None:
                    return refreshed
        if user not in self.passwords:
            raise SimulationError(f"the city has no log-in {user!r}")
        logged_in = await self._grant(user, "/auth/token", {"username": user, "password": self.passwords[user]})
        if logged_in is None:
            raise SimulationError(f"log-in of {user} refused")
        return logged_in

    async def _grant(self, user: str, path: str, form: dict[str, str]) -> _Token | None:
        """The token ``path`` grants for ``form``; None when it answers 401."""
        # Every process serves the log-in, intake's first. A log-in can be sent twice; a refresh
        # token is good once, so a refresh whose connection broke after it left is not.
        bases = sorted(self._pools, key=lambda base: base != self.urls["intake"])
        try:
            response = await self._send(
                bases, "POST", path, _Patience(self.patience_s), resendable=path == "/auth/token", data=form
            )
        except _NO_ANSWER as exc:
            raise SimulationError(f"{path} for {user}: {type(exc).__name__}: {exc}") from exc
        if response.status_code == 401:
            return None
        if response.status_code != 200:
            raise SimulationError(f"{path} for {user} refused: {response.status_code} {response.text[:300]}")
        body = response.json()
        now = self.clock.now()
        lifetime = timedelta(seconds=body["expires_in"])
        renew_at = now + lifetime - min(_TOKEN_MARGIN, lifetime / 3)
        return _Token(
            body["access_token"], renew_at, body["refresh_token"], now + timedelta(seconds=body["refresh_expires_in"])
        )

    async def event_flow(self) -> float:
        """How many events the city's processes have published and consumed so far: the sum of the
        backbone's counters over every process. It stops changing when the city is quiet.
        """
        total = 0.0
        for base in sorted(self._pools):
            response = await self._send([base], "GET", "/metrics", _Patience(self.patience_s), resendable=True)
            if response.status_code != 200:
                raise SimulationError(f"GET {base}/metrics: {response.status_code} {response.text[:300]}")
            for line in response.text.splitlines():
                if line.startswith(_FLOW_COUNTERS):
                    total += float(line.rsplit(" ", 1)[1])
        return total


_FLOW_COUNTERS = ("citycase_outbox_published_total{", "citycase_events_consumed_total{")


def _shape(service: str, path: str) -> str:
    """A call's target with its ids left out: calls that differ only by them are one kind."""
    return f"/{service}{_ID.sub('{id}', path)}"


class _Waits:
    """How long the events that each kind of call waits for have lately taken to arrive after a
    "not yet", and so how long to pause after the next one."""

    def __init__(self) -> None:
        self._seconds: dict[str, float] = {}

    def first_pause(self, kind: str) -> float | None:
        """The first pause after a "not yet" answer to a call of ``kind``; None before one of them
        has waited."""
        learnt = self._seconds.get(kind)
        if learnt is None:
            return None
        return min(max(learnt * _SHARE_OF_LEARNT_WAIT, _FIRST_RETRY_S), _LONGEST_FIRST_PAUSE_S)

    def learn(self, kind: str, seconds: float) -> None:
        """A call of ``kind`` got its answer ``seconds`` after its first "not yet"."""
        learnt = self._seconds.get(kind)
        self._seconds[kind] = seconds if learnt is None else learnt + _LEARNING * (seconds - learnt)


class _Patience:
    """The pauses between tries of one thing, until the patience (seconds of pauses) is spent: from
    10 ms growing to 100 ms; or, once ``waits`` has learnt how long calls of its ``kind`` wait for
    their event, a first one of most of that, then growing from a tenth of it. Told when a "not
    yet" came first and when the answer arrived, it teaches ``waits`` the wait in between."""

    def __init__(self, patience_s: float, waits: _Waits | None = None, kind: str = "") -> None:
        self.patience_s = patience_s
        self.waited = 0.0
        self._waits = waits
        self._kind = kind
        self._first = None if waits is None else waits.first_pause(kind)
        self._learnt_first = self._first is not None
        self._delay = (
            _FIRST_RETRY_S if self._first is None else min(max(self._first / 10, _FIRST_RETRY_S), _MAX_RETRY_S)
        )
        self._not_yet_since: float | None = None
        self._pauses = 0

    def not_yet(self) -> None:
        """The call was answered "not yet": its event is on its way."""
        if self._not_yet_since is None:
            self._not_yet_since = time.monotonic()

    def arrived(self) -> None:
        """The call got its answer: learn how long after its first "not yet", if it had one (half
        that when the first look after a learnt pause found it: it came sometime in the pause)."""
        if self._waits is None or self._not_yet_since is None:
            return
        waited = time.monotonic() - self._not_yet_since
        if self._pauses == 1 and self._learnt_first:
            waited /= 2
        self._waits.learn(self._kind, waited)

    @property
    def spent(self) -> bool:
        """Whether the pauses so far add up to the patience."""
        return self.waited >= self.patience_s

    async def pause(self) -> None:
        """Wait before the next try."""
        if self._first is not None:
            delay, self._first = self._first, None
        else:
            delay, self._delay = self._delay, min(self._delay * _RETRY_GROWTH, _MAX_RETRY_S)
        self._pauses += 1
        await asyncio.sleep(delay)
        self.waited += delay
