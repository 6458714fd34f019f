"""HTTP conventions shared by every service: one JSON error shape, ``{code, message, details}``."""

from __future__ import annotations

import logging
import time
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared.core.errors import DomainError
from shared.core.photos import PhotoTooLarge, UnsupportedPhoto
from shared.messaging.consumer import is_infrastructure_error

log = logging.getLogger(__name__)

_RETRY_AFTER_S = 5


class _OutageLog:
    """One warning when requests start failing on a dependency, then one a minute at most while
    it lasts, with the count: an outage under load is thousands of failed requests a minute."""

    def __init__(self, every_s: float = 60.0) -> None:
        self.every_s = every_s
        self._last = -every_s
        self._since = 0

    def report(self, error: BaseException) -> None:
        self._since += 1
        now = time.monotonic()
        if now - self._last >= self.every_s:
            log.warning("a dependency is unavailable (%d requests answered 503): %s", self._since, error)
            self._last, self._since = now, 0


_OUTAGES = _OutageLog()


class ErrorBody(BaseModel):
    """What every error response carries."""

    code: str
    message: str
    details: Any = None


# Every answer but a route's own success is an ``ErrorBody`` in JSON, whatever its status and
# whatever the route streams when it succeeds (NDJSON, events): documented once for every route.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    "default": {
        "description": "An error (4xx, 5xx): a code, a message and details",
        "content": {"application/json": {"schema": ErrorBody.model_json_schema()}},
    }
}


def error_response(status: int, code: str, message: str, details: Any = None) -> JSONResponse:
    """A JSON error response in the project's shape."""
    # ``mode="json"``: details may hold dates, UUIDs or decimals, which must not turn an error into a 500.
    body = ErrorBody(code=code, message=message, details=details).model_dump(mode="json")
    return JSONResponse(status_code=status, content=body)


def install_error_handlers(app: FastAPI) -> None:
    """Render framework errors in the project's error shape."""

    async def on_validation_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        details = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
        return error_response(422, "invalid_request", "the request is not valid", details)

    async def on_http_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        response = error_response(exc.status_code, f"http_{exc.status_code}", str(exc.detail))
        response.headers.update(exc.headers or {})  # e.g. a 401's ``WWW-Authenticate``
        return response

    async def on_domain_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, DomainError)
        response = error_response(exc.status, exc.code, exc.message, exc.details)
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            response.headers["Retry-After"] = str(retry_after)
        return response

    async def on_photo_too_large(_request: Request, exc: Exception) -> JSONResponse:
        return error_response(413, "photo_too_large", str(exc))

    async def on_unsupported_photo(_request: Request, exc: Exception) -> JSONResponse:
        return error_response(415, "unsupported_photo", str(exc))

    async def on_dependency_error(_request: Request, exc: Exception) -> JSONResponse:
        # Handled here, below the catch-all: Starlette re-raises what reaches the catch-all, so
        # the server would log a traceback and close the client's keep-alive connection for an
        # outage that is nobody's bug.
        if not is_infrastructure_error(exc):
            raise exc
        _OUTAGES.report(exc)
        response = error_response(503, "dependency_unavailable", "a database or the event bus is unavailable; retry")
        response.headers["Retry-After"] = str(_RETRY_AFTER_S)
        return response

    async def on_unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error", exc_info=exc)
        return error_response(500, "internal_error", "an unexpected error occurred; it has been logged")

    for dependency_error in (DBAPIError, PoolTimeout, ConnectionError, TimeoutError):
        app.add_exception_handler(dependency_error, on_dependency_error)

    app.add_exception_handler(Exception, on_unexpected)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(DomainError, on_domain_error)
    app.add_exception_handler(PhotoTooLarge, on_photo_too_large)
    app.add_exception_handler(UnsupportedPhoto, on_unsupported_photo)
