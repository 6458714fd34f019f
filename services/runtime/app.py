"""The app factory: one FastAPI app per process, each service mounted under its own prefix
(``/intake``, ``/dispatch``...) with its own OpenAPI docs, plus process-wide health and metrics.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager

from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from services.runtime.accounts import auth_router
from services.runtime.registry import load_specs
from services.runtime.runtime import Runtime, ServiceRuntime, SharedParts, settle_heap
from shared.core.clock import Clock, FileClock, SystemClock
from shared.core.settings import Settings
from shared.web.errors import install_error_handlers
from shared.web.photos import router as photos_router


def create_app(
    service_names: Sequence[str], settings: Settings, clock: Clock | None = None, *, own_process: bool = False
) -> FastAPI:
    """The ASGI app of a process running ``service_names``, on ``clock`` when given, else on the
    settings' clock file when there is one (a simulation), else on the system clock.
    ``own_process``: the app is the process's whole work (a server), so its heap may be settled.
    """
    shared = SharedParts.load(settings, clock or _clock(settings))
    runtime = Runtime(load_specs(service_names), shared)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        if own_process:
            settle_heap()
        try:
            yield
        finally:
            await runtime.stop()

    app = FastAPI(title="citycase", version="0.1.0", lifespan=lifespan)
    app.state.runtime = runtime
    app.state.token_issuer = shared.tokens
    install_error_handlers(app)
    app.include_router(auth_router(shared.directory, shared.tokens))
    for service in runtime.services:
        app.mount(f"/{service.name}", _service_app(service, runtime))

    @app.get("/healthz", summary="Liveness: the process is up", tags=["operations"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", summary="Readiness: every service's database and the event bus answer", tags=["operations"])
    async def readyz() -> JSONResponse:
        checks = {f"{s.name}.database": await _probe(s.ensure_database_answers) for s in runtime.services}
        checks["bus"] = await _probe(runtime.ensure_bus_answers)
        return _readiness(checks)

    @app.get("/metrics", summary="Prometheus metrics", tags=["operations"], include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return app


def _clock(settings: Settings) -> Clock:
    return FileClock(settings.clock_file) if settings.clock_file is not None else SystemClock()


def _service_app(service: ServiceRuntime, runtime: Runtime) -> FastAPI:
    app = FastAPI(title=service.spec.title, version="0.1.0")
    app.state.context = service.context
    app.state.token_issuer = runtime.shared.tokens
    install_error_handlers(app)
    app.include_router(service.spec.router)
    app.include_router(photos_router)

    @app.get("/healthz", summary="Liveness", tags=["operations"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": service.name}

    @app.get("/readyz", summary="Readiness: the service's database and the event bus answer", tags=["operations"])
    async def readyz() -> JSONResponse:
        return _readiness(
            {"database": await _probe(service.ensure_database_answers), "bus": await _probe(runtime.ensure_bus_answers)}
        )

    return app


async def _probe(check: Callable[[], Awaitable[None]]) -> str:
    try:
        await check()
    except Exception as exc:
        return f"down: {type(exc).__name__}: {exc}"[:300]
    return "ok"


def _readiness(checks: dict[str, str]) -> JSONResponse:
    ready = all(result == "ok" for result in checks.values())
    return JSONResponse(status_code=200 if ready else 503, content={"ready": ready, "checks": checks})
