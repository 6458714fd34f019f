"""The door of every process: a request body is refused before a byte of it is read when it is
larger than allowed or when its route needs a caller and the request carries no valid token.

FastAPI reads (and for JSON, parses) a body before it resolves the dependencies that check the
caller, so without this a stranger's 200 MB upload costs seconds and hundreds of megabytes before
its 401. A body without ``Content-Length`` (chunked) is counted as it streams in and cut off at
the limit.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from starlette.routing import Mount, compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.core.auth import InvalidToken, TokenIssuer
from shared.web.auth import UNAUTHORIZED, VERIFIED_CALLER

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
# Headers the guard decides on. Sent twice they could be read one way here (the last value) and
# another way by the application (Starlette's first): a JSON content type for a route's check and
# a multipart one for the limit. A request repeating one is refused rather than guessed at.
_SINGLE_HEADERS = frozenset({"content-type", "content-length", "authorization", "transfer-encoding"})
_NAMED_GROUP = re.compile(r"\(\?P<\w+>")


@dataclass(frozen=True, slots=True)
class DocumentedPath:
    """A path of an app's OpenAPI document, or of an app mounted in it, with the mounts' prefixes."""

    pattern: re.Pattern[str]
    template: str
    # Method (upper case) to its operation in the document.
    operations: dict[str, dict[str, Any]]


def documented_paths(app: FastAPI, prefix: str = "") -> list[DocumentedPath]:
    """Every path of ``app``'s OpenAPI document and of the apps mounted in it, the mounted ones first."""
    found: list[DocumentedPath] = []
    for route in app.routes:
        if isinstance(route, Mount) and isinstance(route.app, FastAPI):
            found += documented_paths(route.app, prefix + route.path)
    for path, operations in app.openapi().get("paths", {}).items():
        pattern, template, _ = compile_path(prefix + path)
        found.append(DocumentedPath(pattern, template, {method.upper(): op for method, op in operations.items()}))
    return found


def routes_needing_a_caller(app: FastAPI) -> list[tuple[str, re.Pattern[str]]]:
    """Every route of ``app`` and of the apps mounted in it that asks who calls, as (method, path
    pattern): read from the OpenAPI document, where a route depending on the bearer token
    carries a security requirement."""
    return [
        (method, path.pattern)
        for path in documented_paths(app)
        for method, operation in path.operations.items()
        if operation.get("security")
    ]


class RequestGuard:
    """ASGI middleware: ``Content-Length`` over ``limit_for(content_type)`` is a 413, an
    authenticated route without a valid bearer token a 401, both before the body is read; the
    caller it verified is left in the scope for ``current_principal``."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        tokens: TokenIssuer,
        guarded: Iterable[tuple[str, re.Pattern[str]]],
        limit_for: Callable[[str], int],
    ) -> None:
        self.app = app
        self.tokens = tokens
        # One pattern per method, the routes' patterns as alternatives: a request is matched once,
        # not once per route (intake alone has dozens). Their named groups, which may repeat
        # from one route to the next, are dropped: only whether one matches counts here.
        by_method: dict[str, list[str]] = {}
        for method, pattern in guarded:
            by_method.setdefault(method, []).append("(?:" + _NAMED_GROUP.sub("(?:", pattern.pattern) + ")")
        self.guarded = {method: re.compile("|".join(patterns)) for method, patterns in by_method.items()}
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _BODY_METHODS:
            await self.app(scope, receive, send)
            return
        headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]}
        repeated = _repeated(scope["headers"])
        if repeated:
            await _refuse(send, 400, "header_repeated", f"send the {repeated} header once")
            return
        limit = self.limit_for(headers.get("content-type", ""))
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            await _refuse(send, 413, "request_too_large", f"the body may be at most {limit} bytes")
            return
        if self._needs_caller(scope):
            try:
                scope.setdefault("state", {})[VERIFIED_CALLER] = self.tokens.verify(bearer_token(headers))
            except InvalidToken:
                await _refuse(send, 401, "http_401", UNAUTHORIZED, bearer=True)
                return
        body = _CountedBody(receive, send, limit)
        await self.app(scope, body.receive, body.send)

    def _needs_caller(self, scope: Scope) -> bool:
        pattern = self.guarded.get(scope["method"])
        return pattern is not None and pattern.match(scope["path"]) is not None


class _CountedBody:
    """The body as it streams in, cut off with a 413 once it passes the limit; the application,
    told the client is gone, stops, and whatever it answers after that is dropped."""

    def __init__(self, receive: Receive, send: Send, limit: int) -> None:
        self._receive = receive
        self._send = send
        self._limit = limit
        self._seen = 0
        self._refused = False

    async def receive(self) -> Message:
        message = await self._receive()
        if message["type"] == "http.request" and not self._refused:
            self._seen += len(message.get("body", b""))
            if self._seen > self._limit:
                self._refused = True
                await _refuse(self._send, 413, "request_too_large", f"the body may be at most {self._limit} bytes")
                return {"type": "http.disconnect"}
        return message

    async def send(self, message: Message) -> None:
        if not self._refused:
            await self._send(message)


def _repeated(raw: Iterable[tuple[bytes, bytes]]) -> str | None:
    """The first of the guard's headers the request sends more than once, if any."""
    seen: set[str] = set()
    for name, _value in raw:
        lowered = name.decode("latin-1").lower()
        if lowered in _SINGLE_HEADERS:
            if lowered in seen:
                return lowered
            seen.add(lowered)
    return None


def bearer_token(headers: dict[str, str]) -> str:
    """The token of an ``Authorization: Bearer`` header (names lower-cased); ``InvalidToken``
    without one."""
    scheme, _, token = headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise InvalidToken("no bearer token")
    return token.strip()


async def _refuse(send: Send, status: int, code: str, message: str, *, bearer: bool = False) -> None:
    body = json.dumps({"code": code, "message": message, "details": None}).encode()
    headers: list[tuple[bytes, bytes]] = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    if bearer:
        headers.append((b"www-authenticate", b"Bearer"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
