"""Headers every answer carries, whatever route or error produced it, and the Content Security
Policies of the pages a browser shows: the console and the API documentation. Every other answer
is data (JSON, a photo, a workbook), which a browser opened directly may show but never run.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send


def _policy(**directives: str) -> str:
    return "; ".join(f"{name.replace('_', '-')} {value}" for name, value in directives.items())


# Data loads nothing and runs nothing, and no site frames it.
DATA_CSP = _policy(default_src="'none'", frame_ancestors="'none'")
CONSOLE_CSP = _policy(
    default_src="'self'",
    # Scripts and style sheets only as files of this origin (the build's hashed assets): no inline
    # script, no eval.
    script_src="'self'",
    style_src="'self'",
    # ECharts writes its tooltips as HTML with style attributes, and Vue binds styles to
    # elements: inline style attributes, never <style> elements.
    style_src_attr="'unsafe-inline'",
    # Photos previewed before upload (blob:) and small icons inlined by the build (data:).
    img_src="'self' data: blob:",
    font_src="'self' data:",
    # The APIs and the live feeds of the same origin, nothing else.
    connect_src="'self'",
    object_src="'none'",
    base_uri="'self'",
    form_action="'self'",
    frame_ancestors="'none'",
)
DOCS_CSP = _policy(
    default_src="'none'",
    script_src="'self'",
    # Swagger UI styles elements inline and ReDoc writes its styles into <style> elements.
    style_src="'self' 'unsafe-inline'",
    img_src="'self' data:",
    font_src="'self' data:",
    # The OpenAPI document, and the requests "Try it out" sends.
    connect_src="'self'",
    # ReDoc's search index is built in a worker it starts from a blob.
    worker_src="'self' blob:",
    base_uri="'none'",
    form_action="'none'",
    frame_ancestors="'none'",
)

# No content-type guessing, no framing by other sites, no URL (with its ids) leaked to links;
# the pages that are more than data set their own policy, which is kept.
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"content-security-policy", DATA_CSP.encode()),
)


class SecurityHeaders:
    """ASGI middleware adding ``SECURITY_HEADERS`` to every HTTP response that lacks them."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(name, value) for name, value in SECURITY_HEADERS if name not in present]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, with_headers)
