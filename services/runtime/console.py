"""The browser console (``web/``, built into ``Settings.console_dir`` by ``make web``) served at
``/`` beside the APIs, by the process that serves every service (``make run``) and by the
gateway in front of a process per service (``python -m services launch``).

A history-mode single-page app: a browser asking for any page of the console (``/``,
``/cases/2026-11-000123``) gets ``index.html``, and the app's router shows the page. So that a
mistyped API path stays a JSON 404 rather than that page, the API's prefixes are the console's
no-go area: a console route never starts with one of ``API_PREFIXES``. ``index.html`` is
revalidated on every visit, so a new build shows at the next reload; the build's assets have
content hashes in their names (``assets/index-3f2a9c.js``) and are cached for a year.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from types import MappingProxyType

from starlette.exceptions import HTTPException
from starlette.middleware.gzip import GZipMiddleware
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from shared.core.settings import SERVICE_NAMES
from shared.web.errors import error_response
from shared.web.headers import CONSOLE_CSP
from shared.web.negotiation import weights

PROCESS_PREFIXES: tuple[str, ...] = (
    "auth",
    "city",
    "calendar",
    "ops",
    "healthz",
    "readyz",
    "metrics",
    "openapi.json",
    "docs",
    "redoc",
    "docs-assets",
)
"""The first path segments of what every process serves for the whole city, whichever services it
runs (log-in, the city's data, the calendar, operations, health, documentation)."""
MOUNTED_PREFIXES: Mapping[str, str] = MappingProxyType({"open311": "intake"})
"""The first path segments a service serves beyond its name (its ``ServiceSpec.mounts``), with the
service: Open311's ``/open311/v2/...`` is intake's. Written here rather than read from the specs so
that the gateway imports no service; a test holds the two equal."""
API_PREFIXES: frozenset[str] = frozenset({*SERVICE_NAMES, *MOUNTED_PREFIXES, *PROCESS_PREFIXES, "photos"})
"""The first path segments that are API, never a page of the console (photos are each service's,
``/intake/photos``; the bare prefix is kept from the console all the same). The console's
development server passes the same list to a running city (web/vite.config.ts; a test holds
the two equal)."""

ASSETS = "assets"
# The build's assets are named by their content: a changed file is a new name.
_IMMUTABLE = "public, max-age=31536000, immutable"
# Kept, but asked about again on every use (an ETag makes that a 304).
_REVALIDATE = "no-cache"
_NOT_BUILT_CSP = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"
_NOT_BUILT = """<!DOCTYPE html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>citycase · 控制台尚未构建 · console not built</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:40em;margin:4em auto;padding:0 1em;color:#222}
code{background:#f0f0f0;padding:0 .3em}</style>
</head>
<body>
<h1>控制台尚未构建<br>The console is not built</h1>
<p>浏览器控制台的文件（<code>web/dist</code>）不存在。在代码目录中运行 <code>make web</code> 构建后刷新本页。</p>
<p>The browser console's files (<code>web/dist</code>) are not there. Run <code>make web</code> in the
source folder to build them, then reload this page.</p>
<p>接口照常服务，文档见各服务的 <code>/docs</code>（如 <code>/intake/docs</code>）。</p>
<p>The APIs answer meanwhile; each service documents its own at <code>/&lt;service&gt;/docs</code>,
e.g. <code>/intake/docs</code>.</p>
</body>
</html>
"""


class Console:
    """ASGI app for whatever no route of the process took: the console's files and pages, and
    the JSON 404 of an unknown API path."""

    def __init__(self, directory: Path, api_prefixes: Iterable[str] = API_PREFIXES) -> None:
        self.directory = directory
        self.api_prefixes = frozenset(api_prefixes)
        # ``check_dir=False``: the console may be built after the process started.
        self.files = StaticFiles(directory=directory, check_dir=False)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await self.answer(scope)
        await response(scope, receive, send)

    async def answer(self, scope: Scope) -> Response:
        """The answer to an HTTP request no other route took."""
        path: str = scope["path"]
        first = path.lstrip("/").partition("/")[0]
        if first in self.api_prefixes:
            return _not_found()
        if scope["method"] not in ("GET", "HEAD"):
            refusal = error_response(405, "http_405", "Method Not Allowed")
            refusal.headers["Allow"] = "GET, HEAD"
            return refusal
        if first == ASSETS:
            return await self._file(path.lstrip("/"), scope, _IMMUTABLE) or _not_found()
        if "." in path.rsplit("/", 1)[-1]:
            # A file, not a page: favicon.ico, robots.txt, index.html itself.
            return await self._file(path.lstrip("/"), scope, _REVALIDATE) or _not_found()
        if not _wants_html(scope):
            return _not_found()
        page = await self._file("index.html", scope, _REVALIDATE)
        if page is None:
            return HTMLResponse(_NOT_BUILT, 503, headers={"Content-Security-Policy": _NOT_BUILT_CSP})
        return page

    async def _file(self, relative: str, scope: Scope, cache_control: str) -> Response | None:
        """The file at ``relative`` in the build (with its ETag: 304 when the request names
        it), or None when there is none. A page of the build carries the console's CSP."""
        try:
            response = await self.files.get_response(relative, scope)
        except HTTPException:
            return None
        response.headers["Cache-Control"] = cache_control
        # By the file's name, not the answer's type: a 304 has no media type, and the browser
        # applies the policy of the 304 to the page it had cached.
        if relative.endswith(".html"):
            response.headers["Content-Security-Policy"] = CONSOLE_CSP
        return response


def console_app(directory: Path, routes: Iterable[BaseRoute]) -> ASGIApp:
    """The console, for an app whose ``routes`` (and the services' prefixes) are API: to be
    the app's router's ``default``, what it does with a request none of its routes takes (after
    its own 405 for a known path and wrong method, and its redirect for a trailing slash).
    Compressed for clients that accept gzip."""
    own = {route.path.lstrip("/").partition("/")[0] for route in routes if isinstance(route, Route | Mount)}
    return GZipMiddleware(Console(directory, API_PREFIXES | (own - {""})), minimum_size=1024)


def _wants_html(scope: Scope) -> bool:
    """Whether the request's ``Accept`` admits an HTML page (no header admits anything)."""
    accept = next((value.decode("latin-1") for name, value in scope["headers"] if name == b"accept"), "*/*")
    return any(weights(accept).get(media_type, 0.0) > 0 for media_type in ("text/html", "text/*", "*/*"))


def _not_found() -> Response:
    return error_response(404, "http_404", "Not Found")
