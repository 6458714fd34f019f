"""Every request has an id, in each log line written for it and in its answer's ``X-Request-ID``:
the caller's (a gateway's or a client's that will quote it to an operator) when it is a short
token, else a fresh one. A caller's id goes into log lines, so anything else — too long, spaces,
control characters, quotes that would end a field of a text line — is not believed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.core import tracing
from shared.core.ids import new_id
from shared.core.logs import REQUEST_ID, SERVICE

HEADER = "x-request-id"
# RFC 9110's token characters (no spaces, quotes, separators or controls), 1 to 128 of them.
_SAFE = re.compile(rb"[A-Za-z0-9!#$%&'*+.^_`|~-]{1,128}")


def request_id_of(headers: list[tuple[bytes, bytes]]) -> str:
    """The caller's request id when it is safe to log, else a new one."""
    for name, value in headers:
        if name.lower() == HEADER.encode() and _SAFE.fullmatch(value):
            return value.decode("ascii")
    return new_id().hex


class RequestIds:
    """ASGI middleware: the request's id (and the service its path belongs to) in the context of
    everything that handles it, and the id in the answer's ``X-Request-ID``."""

    def __init__(self, app: ASGIApp, services: Mapping[str, str]) -> None:
        """``services``: a path prefix (``/intake``, ``/open311``) to the service it belongs to."""
        self.app = app
        self.services = dict(services)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_of(scope.get("headers", []))
        request_token = REQUEST_ID.set(request_id)
        prefix = "/" + scope["path"][1:].split("/", 1)[0]
        service_token = SERVICE.set(self.services.get(prefix))
        if tracing.active():
            tracing.annotate_current({"citycase.request_id": request_id})
        header = (HEADER.encode(), request_id.encode())
        root_path = scope.get("root_path", "")

        async def with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), header]}
                if tracing.active():
                    # Routed by now; the request's span ends with the answer's last part.
                    _name_span(scope, root_path)
            await send(message)

        try:
            await self.app(scope, receive, with_id)
        finally:
            SERVICE.reset(service_token)
            REQUEST_ID.reset(request_token)


def _name_span(scope: Scope, root_path: str) -> None:
    """Name the request's span for the route that took it, with the prefixes of the apps it is
    mounted in (``POST /intake/reports``): the instrumentation, which looks at the outer app's
    routes only, names every request of a service for its mount (``POST /intake``)."""
    route = scope.get("route")
    template = getattr(route, "path_format", None)
    if template is None or isinstance(route, Mount):
        return
    # ``root_path`` grew by the prefix of every mount the request went through.
    full = str(scope.get("root_path", ""))[len(root_path) :] + str(template)
    tracing.rename_current(f"{scope['method']} {full}", {"http.route": full})
