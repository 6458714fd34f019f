"""One address for a city run as a process per service (``python -m services launch``): the
browser console at ``/``, and every API path passed to the process that serves it — ``/intake/...``
to intake's, ``/dispatch/...`` to dispatch's, a service's own mounts to it (``/open311/...`` to
intake's), and what every process serves for the whole city (log-in, the city's data, the
calendar, operations, health, documentation) to the first one.

What an ingress does in a real deployment, for a city on one machine: the console calls its APIs
on its own origin (its Content Security Policy allows no other), so something must put them
behind one address. Requests and answers stream through as they come, a live feed (SSE) event by
event and an export line by line. The caller's address travels as ``X-Forwarded-For``, which
uvicorn on the services believes from the loopback address the gateway calls from, so rate limits
still count per caller. The metrics are each process's own: scrape the processes, not the gateway.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import anyio
import httpx
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.runtime.console import MOUNTED_PREFIXES, PROCESS_PREFIXES, console_app
from shared.web.errors import error_response
from shared.web.headers import SecurityHeaders

log = logging.getLogger(__name__)

# Headers about one connection, not the message (RFC 9110 7.6.1): never passed on, nor those a
# request's own Connection header names.
_HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)
# Headers the gateway sets itself: a caller's own would be believed by the services behind it.
_SET_BY_GATEWAY = frozenset({b"host", b"forwarded", b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host"})
_RETRY_AFTER_S = 5
# A read waits at most a minute between two pieces of an answer: a live feed says something
# every 15 s even when the city is quiet (its keep-alive comment), and a process that says
# nothing for longer is stuck; its caller gets the answer cut short rather than a hung request.
_TIMEOUT = httpx.Timeout(10.0, read=60.0)
# Every open live feed holds a connection for as long as it is watched: room for a command
# center's screens, and a 503 (the pool's wait, then a transport error) beyond it.
_CONNECTIONS = 1000


def gateway_app(upstreams: Mapping[str, str], console_dir: Path) -> ASGIApp:
    """The gateway in front of the processes at ``upstreams`` (service name → base URL), serving
    the console's build from ``console_dir``, with the headers every answer of the city carries."""
    return SecurityHeaders(Gateway(upstreams, console_app(console_dir, ())))


class Gateway:
    """ASGI app: a request under a service's prefix, or under a process-wide one, goes to a
    process; anything else to ``console``."""

    def __init__(
        self, upstreams: Mapping[str, str], console: ASGIApp, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        if not upstreams:
            raise ValueError("a gateway needs at least one service to pass requests to")
        self.upstreams = {service: url.rstrip("/") for service, url in upstreams.items()}
        self.console = console
        # The process-wide routes are the same in every process: the first answers them.
        self.whole_city = next(iter(self.upstreams.values()))
        limits = httpx.Limits(max_connections=_CONNECTIONS, max_keepalive_connections=100)
        self.client = httpx.AsyncClient(timeout=_TIMEOUT, limits=limits, transport=transport)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        upstream = self.upstream_of(scope["path"]) if scope["type"] == "http" else None
        if upstream is None:
            await self.console(scope, receive, send)
            return
        await self._pass(upstream, scope, receive, send)

    def upstream_of(self, path: str) -> str | None:
        """The base URL of the process that serves ``path``, or None for the console's."""
        first = path.lstrip("/").partition("/")[0]
        if first in self.upstreams:
            return self.upstreams[first]
        if first in MOUNTED_PREFIXES:
            return self.upstreams.get(MOUNTED_PREFIXES[first])
        return self.whole_city if first in PROCESS_PREFIXES and first != "metrics" else None

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.client.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _pass(self, upstream: str, scope: Scope, receive: Receive, send: Send) -> None:
        request = self.client.build_request(
            scope["method"],
            _target(upstream, scope),
            headers=_forwarded_headers(scope),
            content=_body(receive) if _has_body(scope) else None,
        )
        try:
            response = await self.client.send(request, stream=True)
        except httpx.TransportError as exc:
            log.warning("gateway: %s %s: %s unavailable: %s", scope["method"], scope["path"], upstream, exc)
            refusal = error_response(503, "dependency_unavailable", "the service of this path is unavailable; retry")
            refusal.headers["Retry-After"] = str(_RETRY_AFTER_S)
            await refusal(scope, receive, send)
            return
        try:
            start = _answer_headers(response, upstream, _origin(scope))
            await send({"type": "http.response.start", "status": response.status_code, "headers": start})
            await _relay(response, receive, send)
        finally:
            await response.aclose()


def _target(upstream: str, scope: Scope) -> str:
    path: bytes = scope.get("raw_path") or scope["path"].encode()
    query: bytes = scope.get("query_string", b"")
    return upstream + path.decode("latin-1") + (f"?{query.decode('latin-1')}" if query else "")


def _connection_scoped(headers: list[tuple[bytes, bytes]]) -> frozenset[bytes]:
    """The hop-by-hop headers, and those the message's ``Connection`` header names as such."""
    named = {
        token.strip().lower() for name, value in headers if name.lower() == b"connection" for token in value.split(b",")
    }
    return _HOP_BY_HOP | named


def _answer_headers(response: httpx.Response, upstream: str, origin: bytes) -> list[tuple[bytes, bytes]]:
    """The process's answer headers for the caller. A redirect to the process's own address
    (Starlette's trailing-slash redirect is absolute, built on the Host the gateway sent)
    becomes a path on the gateway's; a ``Link`` to it (a list's next page, RFC 8288) the same
    address on the gateway's ``origin``, as absolute as the process wrote it: the caller cannot
    reach, and need not learn, the process's address."""
    headers = [(name.lower(), value) for name, value in response.headers.raw]
    dropped = _connection_scoped(headers)
    base = upstream.encode("latin-1")
    passed = []
    for name, value in headers:
        if name in dropped:
            continue
        if name == b"location" and value.startswith(base) and value[len(base) : len(base) + 1] in (b"/", b"?", b""):
            value = value[len(base) :] or b"/"
        if name == b"link":
            value = value.replace(b"<" + base + b"/", b"<" + origin + b"/").replace(
                b"<" + base + b"?", b"<" + origin + b"/?"
            )
        passed.append((name, value))
    return passed


def _origin(scope: Scope) -> bytes:
    """The gateway's address as the caller wrote it (scheme and Host), or nothing when the caller
    sent no Host: then what was the process's address becomes a path on the gateway's."""
    host = next((value for name, value in scope["headers"] if name.lower() == b"host"), None)
    return b"" if host is None else str(scope.get("scheme", "http")).encode("latin-1") + b"://" + host


def _forwarded_headers(scope: Scope) -> list[tuple[bytes, bytes]]:
    """The request's headers for the process, and who asked: a caller's own ``Forwarded`` and
    ``X-Forwarded-*`` are dropped, since the gateway is where the city's network begins."""
    dropped = _connection_scoped(scope["headers"]) | _SET_BY_GATEWAY
    headers: list[tuple[bytes, bytes]] = [(n, v) for n, v in scope["headers"] if n.lower() not in dropped]
    client = scope.get("client")
    if client:
        headers.append((b"x-forwarded-for", str(client[0]).encode("latin-1")))
    headers.append((b"x-forwarded-proto", str(scope.get("scheme", "http")).encode("latin-1")))
    host = next((value for name, value in scope["headers"] if name.lower() == b"host"), None)
    if host is not None:
        headers.append((b"x-forwarded-host", host))
    return headers


def _has_body(scope: Scope) -> bool:
    names = {name.lower() for name, _ in scope["headers"]}
    return b"content-length" in names or b"transfer-encoding" in names


async def _body(receive: Receive) -> AsyncIterator[bytes]:
    """The request's body as it arrives, for the process to read as it arrives."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        yield message.get("body", b"")
        if not message.get("more_body", False):
            return


async def _relay(response: httpx.Response, receive: Receive, send: Send) -> None:
    """The process's answer to the caller, each piece as it comes, until it ends or the caller
    leaves (then the process's stream is closed too, and a live feed there stops)."""
    async with anyio.create_task_group() as group:

        async def pass_on() -> None:
            try:
                async for chunk in response.aiter_raw():
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            except httpx.TransportError as exc:
                # The status is sent: the caller sees the answer end short.
                log.warning("gateway: an answer was cut off: %s", exc)
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            group.cancel_scope.cancel()

        async def watch() -> None:
            message: Message = {"type": ""}
            while message["type"] != "http.disconnect":
                message = await receive()
            group.cancel_scope.cancel()

        group.start_soon(pass_on)
        group.start_soon(watch)
