"""HTTP conventions shared by every service: one JSON error shape, ``{code, message, details}``."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared.core.errors import DomainError
from shared.core.photos import PhotoTooLarge, UnsupportedPhoto
from shared.messaging.consumer import is_infrastructure_error

log = logging.getLogger(__name__)


class ErrorBody(BaseModel):
    """What every error response carries."""

    code: str
    message: str
    details: Any = None


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
        return error_response(exc.status_code, f"http_{exc.status_code}", str(exc.detail))

    async def on_domain_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, DomainError)
        return error_response(exc.status, exc.code, exc.message, exc.details)

    async def on_photo_too_large(_request: Request, exc: Exception) -> JSONResponse:
        return error_response(413, "photo_too_large", str(exc))

    async def on_unsupported_photo(_request: Request, exc: Exception) -> JSONResponse:
        return error_response(415, "unsupported_photo", str(exc))

    async def on_unexpected(_request: Request, exc: Exception) -> JSONResponse:
        if is_infrastructure_error(exc):
            log.warning("a dependency is unavailable: %s", exc)
            return error_response(503, "dependency_unavailable", "a database or the event bus is unavailable; retry")
        log.exception("unexpected error", exc_info=exc)
        return error_response(500, "internal_error", "an unexpected error occurred; it has been logged")

    app.add_exception_handler(Exception, on_unexpected)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(DomainError, on_domain_error)
    app.add_exception_handler(PhotoTooLarge, on_photo_too_large)
    app.add_exception_handler(UnsupportedPhoto, on_unsupported_photo)
