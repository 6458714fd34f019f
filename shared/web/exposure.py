"""What a process shows besides its API: the OpenAPI documents and pages of the process and of
every service mounted in it, and the Prometheus metrics; each open, for shift leads only, or off
(``Settings.docs``, ``Settings.metrics``), and the metrics optionally on a port of their own.

The documentation routes are FastAPI's own (they put a mounted service's prefix into its
document's ``servers``), so "for shift leads" is a door in front of their paths rather than a
dependency on routes this module would have to copy.
"""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest, start_http_server
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from shared.core.auth import InvalidToken, Role, TokenIssuer
from shared.core.settings import Exposure, Settings
from shared.web.auth import FORBIDDEN, UNAUTHORIZED
from shared.web.docs import PAGES
from shared.web.errors import error_response
from shared.web.guard import bearer_token

METRICS_PATH = "/metrics"


def docs_arguments(exposure: Exposure) -> dict[str, Any]:
    """The ``FastAPI(...)`` arguments for ``exposure``: without the OpenAPI document when it is
    off, and never with FastAPI's own pages, which load their scripts from a CDN
    (``shared.web.docs.install_docs`` serves them from local files instead)."""
    pages: dict[str, Any] = {"docs_url": None, "redoc_url": None}
    return {"openapi_url": None, **pages} if exposure is Exposure.OFF else pages


def documentation_paths(app: FastAPI, prefix: str = "") -> set[str]:
    """The paths of the documentation routes of ``app`` and of the apps mounted in it: the
    OpenAPI document and the pages (their scripts and styles are public files, left open)."""
    pages = [route.path for route in app.routes if isinstance(route, Route) and route.name in PAGES]
    paths = {prefix + path for path in (app.openapi_url, *pages) if path}
    for route in app.routes:
        if isinstance(route, Mount) and isinstance(route.app, FastAPI):
            paths |= documentation_paths(route.app, prefix + route.path)
    return paths


def expose(app: FastAPI, settings: Settings, tokens: TokenIssuer) -> None:
    """Serve ``/metrics`` on ``app`` as the settings say (not when the metrics have a port of their
    own), and put the documentation and the metrics behind a shift lead's token when they say so.
    Call it once every service is mounted."""
    if settings.metrics is not Exposure.OFF and settings.metrics_port is None:

        @app.get(METRICS_PATH, summary="Prometheus metrics", tags=["operations"], include_in_schema=False)
        async def metrics() -> Response:
            return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

        if settings.metrics is Exposure.SHIFT_LEAD:
            app.add_middleware(ShiftLeadOnly, tokens=tokens, paths=[METRICS_PATH], static_token=settings.metrics_token)
    if settings.docs is Exposure.SHIFT_LEAD:
        app.add_middleware(ShiftLeadOnly, tokens=tokens, paths=documentation_paths(app))


@asynccontextmanager
async def metrics_server(settings: Settings) -> AsyncIterator[None]:
    """prometheus_client's own HTTP server on ``metrics_port`` while the block runs, when one is
    set: a port a firewall can keep inside the network, apart from the API's."""
    if settings.metrics_port is None:
        yield
        return
    server, thread = start_http_server(settings.metrics_port, settings.metrics_host or settings.http_host)
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


class ShiftLeadOnly:
    """ASGI middleware: a request for one of ``paths`` needs a shift lead's bearer token, or
    ``static_token`` when one is given (a metrics scraper's, which cannot log in); 401 or 403
    otherwise, with the same texts as every route."""

    def __init__(
        self, app: ASGIApp, *, tokens: TokenIssuer, paths: Iterable[str], static_token: str | None = None
    ) -> None:
        self.app = app
        self.tokens = tokens
        self.paths = frozenset(paths)
        self.static_token = static_token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] in self.paths:
            refusal = self._refusal(scope)
            if refusal is not None:
                await refusal(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _refusal(self, scope: Scope) -> Response | None:
        headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]}
        try:
            token = bearer_token(headers)
            if self.static_token is not None and hmac.compare_digest(token.encode(), self.static_token.encode()):
                return None
            caller = self.tokens.verify(token)
        except InvalidToken:
            response = error_response(401, "http_401", UNAUTHORIZED)
            response.headers["WWW-Authenticate"] = "Bearer"
            return response
        return None if caller.role is Role.SHIFT_LEAD else error_response(403, "http_403", FORBIDDEN)
