"""Requests and their durations per route, as Prometheus counts them: a pure ASGI middleware on the
process's app, so its cost on the hot path is a clock read, a dict look-up and two additions.

The route is the template that took the request, with the prefix of the app it is mounted in
(``/intake/reports/{report_id}``, ``/open311/v2/requests.json``), never the path itself: one
series per route, however many reports there are. Starlette leaves the innermost route it matched
and the mounts' prefixes (``root_path``) in the request's scope; a request none of the routes took
(a 404, a refusal before routing) is looked up in the OpenAPI documents' paths, and labelled
``unmatched`` when it matches none there either. The console's pages are ``console``.
"""

from __future__ import annotations

import re
import time
from typing import Any

from fastapi import FastAPI
from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.core.metrics import HTTP_REQUEST_DURATION, HTTP_REQUESTS
from shared.web.guard import documented_paths

UNMATCHED = "unmatched"
# The server takes some thirty methods (PROPFIND, MKCALENDAR...): any a caller invents would be a
# series of its own on every route, so those the API does not use are counted as one.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
OTHER_METHOD = "other"
CONSOLE = "console"
# Where an app that answers by itself, without routes (the console), leaves its label in the scope.
_LABEL = "citycase.route_label"


class HttpMetrics:
    """ASGI middleware counting each HTTP request by method, route template and status, and
    timing it, on ``application``'s routes."""

    def __init__(self, app: ASGIApp, *, application: FastAPI) -> None:
        self.app = app
        self.application = application
        # Read at the first request that needs them, once every route is there.
        self._templates: list[tuple[re.Pattern[str], str, frozenset[str]]] | None = None
        # The metrics' children, so a request does not pay for prometheus_client's label look-up.
        self._counted: dict[tuple[str, str, int], Any] = {}
        self._timed: dict[tuple[str, str], Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        root_path = scope.get("root_path", "")
        status = 500  # an exception that escapes the app is answered 500 by the server's handler

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            self._observe(scope, root_path, status, time.perf_counter() - started)

    def _observe(self, scope: Scope, root_path: str, status: int, seconds: float) -> None:
        method = scope["method"] if scope["method"] in _METHODS else OTHER_METHOD
        route = self._route(scope, root_path)
        counted = self._counted.get((method, route, status))
        if counted is None:
            counted = self._counted[method, route, status] = HTTP_REQUESTS.labels(method, route, str(status))
        timed = self._timed.get((method, route))
        if timed is None:
            timed = self._timed[method, route] = HTTP_REQUEST_DURATION.labels(method, route)
        counted.inc()
        timed.observe(seconds)

    def _route(self, scope: Scope, root_path: str) -> str:
        label = scope.get(_LABEL)
        if label is not None:
            return str(label)
        route = scope.get("route")
        if route is not None and not isinstance(route, Mount):
            # ``root_path`` grew by the prefix of every mount the request went through.
            return str(scope.get("root_path", ""))[len(root_path) :] + str(route.path_format)
        return self._looked_up(scope["method"], scope["path"][len(root_path) :])

    def _looked_up(self, method: str, path: str) -> str:
        """The template of the route that takes ``path``, the slow way, for the requests the app
        answered before routing them (a guard's refusal) or that no route took (a 404); a known
        path with another method (a 405) is its route's."""
        if self._templates is None:
            self._templates = route_templates(self.application)
        known = [(template, methods) for pattern, template, methods in self._templates if pattern.match(path)]
        taking = [template for template, methods in known if method in methods]
        return (taking or [template for template, _ in known] or [UNMATCHED])[0]


def route_templates(app: FastAPI) -> list[tuple[re.Pattern[str], str, frozenset[str]]]:
    """Every route of ``app`` and of the apps mounted in it, as (path pattern, template with the
    mounts' prefixes, methods): read from the OpenAPI documents, as the guard reads them."""
    return [(path.pattern, path.template, frozenset(path.operations)) for path in documented_paths(app)]


def labelled(app: ASGIApp, label: str) -> ASGIApp:
    """``app`` with its requests counted under ``label``: for an app that answers by itself, without
    routes whose templates could name them (the console's pages)."""

    async def labelling(scope: Scope, receive: Receive, send: Send) -> None:
        scope[_LABEL] = label
        await app(scope, receive, send)

    return labelling
