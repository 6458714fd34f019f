"""The app factory: one FastAPI app per process, each service mounted under its own prefix
(``/intake``, ``/dispatch``...) with its own OpenAPI docs, and under the prefixes of its mounts
(intake's ``/open311``), plus process-wide health and metrics.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager, suppress
from datetime import timedelta
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from services.runtime.accounts import auth_router
from services.runtime.calendar import calendar_router
from services.runtime.city import city_router
from services.runtime.console import console_app
from services.runtime.operations import operations_router, readiness_warnings, watch_dead_letters
from services.runtime.registry import load_specs
from services.runtime.runtime import Runtime, ServiceRuntime, SharedParts, settle_heap
from shared.city.calendar import OfficialYears
from shared.core.auth import Sessions
from shared.core.clock import Clock, clock_of_folder
from shared.core.sessions import SessionStore
from shared.core.settings import Settings
from shared.messaging.dead_letters import DeadLetters
from shared.service.spec import Mount
from shared.web.docs import install_docs
from shared.web.errors import ERROR_RESPONSES, install_error_handlers
from shared.web.exposure import docs_arguments, expose, metrics_server
from shared.web.guard import RequestGuard, routes_needing_a_caller
from shared.web.headers import SecurityHeaders
from shared.web.photos import router as photos_router


def create_app(
    service_names: Sequence[str], settings: Settings, clock: Clock | None = None, *, own_process: bool = False
) -> FastAPI:
    """The ASGI app of a process running ``service_names``, on ``clock`` when given, else on the
    clock file of a simulated city (the settings', or the one its data folder ran on), else on the
    system clock (see ``shared.core.clock.clock_of_folder``).
    ``own_process``: the app is the process's whole work (a server), so its heap may be settled.
    """
    shared = SharedParts.load(settings, clock or _clock(settings))
    runtime = Runtime(load_specs(service_names), shared)
    dead_letters = DeadLetters(runtime.bus, settings.topic_dead_letter)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        watcher = asyncio.create_task(watch_dead_letters(dead_letters, runtime.bus_connected), name="dead-letters")
        if own_process:
            settle_heap()
        try:
            async with metrics_server(settings):
                yield
        finally:
            watcher.cancel()
            with suppress(asyncio.CancelledError):
                await watcher
            await runtime.stop()

    app = FastAPI(
        title="citycase",
        version="0.1.0",
        lifespan=lifespan,
        responses=ERROR_RESPONSES,
        **docs_arguments(settings.docs),
    )
    install_docs(app)
    app.state.runtime = runtime
    app.state.token_issuer = shared.tokens
    app.state.rate_limits = runtime.rate_limits
    install_error_handlers(app)
    store = SessionStore(settings.sessions_path)
    sessions = Sessions(
        shared.directory, shared.tokens, store, shared.clock, timedelta(hours=settings.refresh_token_ttl_hours)
    )
    app.include_router(auth_router(sessions))
    app.include_router(operations_router(dead_letters, runtime.bus_connected))
    app.include_router(calendar_router(shared.calendar, OfficialYears(settings.official_years_path), shared.clock))
    app.include_router(city_router(shared.city))
    for service in runtime.services:
        app.mount(f"/{service.name}", _service_app(service, runtime))
        for prefix, mount in service.spec.mounts.items():
            app.mount(prefix, _mount_app(service, runtime, prefix, mount))
    app.add_middleware(
        RequestGuard, tokens=shared.tokens, guarded=routes_needing_a_caller(app), limit_for=settings.body_limit
    )
    expose(app, settings, shared.tokens)
    # Outermost, so the guard's own refusals carry them too.
    app.add_middleware(SecurityHeaders)

    @app.get("/healthz", summary="Liveness: the process is up", tags=["operations"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/readyz",
        summary="Readiness: every service's database and the event bus answer",
        tags=["operations"],
        responses=_NOT_READY,
    )
    async def readyz() -> JSONResponse:
        checks = {f"{s.name}.database": await _probe(s.ensure_database_answers) for s in runtime.services}
        checks["bus"] = await _probe(runtime.ensure_bus_answers)
        warnings = {f"{s.name}.outbox": w for s in runtime.services if (w := await _warning(s.outbox_warning))}
        return _readiness(checks, warnings | readiness_warnings(dead_letters))

    # What the router does with a request none of its routes takes, after its own 405 for a known
    # path and its redirect for a trailing slash: the console's pages, or a JSON 404.
    app.router.default = console_app(settings.console_dir, app.routes)
    return app


# A readiness answer of 503 is the same report as a 200 (with the failing checks), not an error.
_NOT_READY: dict[int | str, dict[str, Any]] = {
    503: {"description": "Not ready: the same checks, each failing one saying why", "content": {"application/json": {}}}
}


def _clock(settings: Settings) -> Clock:
    return clock_of_folder(settings.data_dir, settings.clock_file, real_time=settings.real_time)


def _service_app(service: ServiceRuntime, runtime: Runtime) -> FastAPI:
    app = _app_of(service, runtime, service.spec.title)
    install_error_handlers(app)
    app.include_router(service.spec.router)
    app.include_router(photos_router)

    @app.get("/healthz", summary="Liveness", tags=["operations"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": service.name}

    @app.get(
        "/readyz",
        summary="Readiness: the service's database and the event bus answer",
        tags=["operations"],
        responses=_NOT_READY,
    )
    async def readyz() -> JSONResponse:
        checks = {"database": await _probe(service.ensure_database_answers)}
        checks["bus"] = await _probe(runtime.ensure_bus_answers)
        warning = await _warning(service.outbox_warning)
        return _readiness(checks, {"outbox": warning} if warning else {})

    return app


def _mount_app(service: ServiceRuntime, runtime: Runtime, prefix: str, mount: Mount) -> FastAPI:
    """A service's routes under a prefix of their own, on the service's context; the mount's
    ``install`` comes after the project's error handlers, so that its own replace them."""
    app = _app_of(service, runtime, f"{service.spec.title}: {prefix}")
    install_error_handlers(app)
    if mount.install is not None:
        mount.install(app)
    app.include_router(mount.router)
    return app


def _app_of(service: ServiceRuntime, runtime: Runtime, title: str) -> FastAPI:
    """An app of ``service``'s routes, with its own documentation, on the service's context."""
    app = FastAPI(title=title, version="0.1.0", responses=ERROR_RESPONSES, **docs_arguments(runtime.settings.docs))
    install_docs(app)
    app.state.context = service.context
    app.state.token_issuer = runtime.shared.tokens
    app.state.rate_limits = runtime.rate_limits
    return app


async def _probe(check: Callable[[], Awaitable[None]]) -> str:
    try:
        await check()
    except Exception as exc:
        return f"down: {type(exc).__name__}: {exc}"[:300]
    return "ok"


async def _warning(look: Callable[[], Awaitable[str | None]]) -> str | None:
    try:
        return await look()
    except Exception:
        return None  # the database check says why


def _readiness(checks: dict[str, str], warnings: dict[str, str]) -> JSONResponse:
    """Ready when every check passes. Warnings (parked outbox rows, an old backlog) leave the
    process ready: readiness decides whether a replica takes traffic, and taking every replica out
    for one unpublishable event would stop the whole city over one case; the warning here and the
    outbox metrics are the alert.
    """
    ready = all(result == "ok" for result in checks.values())
    content: dict[str, object] = {"ready": ready, "checks": checks}
    if warnings:
        content["warnings"] = warnings
    return JSONResponse(status_code=200 if ready else 503, content=content)
