"""The app factory: one FastAPI app per process, each service mounted under its own prefix
(``/intake``, ``/dispatch``...) with its own OpenAPI docs, and under the prefixes of its mounts
(intake's ``/open311``), plus process-wide health and metrics.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager, suppress
from datetime import timedelta
from enum import StrEnum
from typing import Annotated, Any

from fastapi import FastAPI, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.routing import Mount as StarletteMount
from starlette.types import ASGIApp

from services.runtime.accounts import auth_router
from services.runtime.calendar import calendar_router
from services.runtime.city import city_router
from services.runtime.console import console_app
from services.runtime.gauges import Gauges
from services.runtime.operations import operations_router, readiness_warnings, watch_dead_letters
from services.runtime.registry import load_specs
from services.runtime.runtime import Runtime, ServiceRuntime, SharedParts, settle_heap
from shared.city.calendar import OfficialYears
from shared.core import tracing
from shared.core.auth import Sessions
from shared.core.clock import Clock, clock_of_folder
from shared.core.sessions import SessionStore
from shared.core.settings import SERVICE_NAMES, Settings, Tracing
from shared.messaging.dead_letters import DeadLetters
from shared.service.spec import Mount
from shared.web.docs import install_docs
from shared.web.errors import ERROR_RESPONSES, install_error_handlers
from shared.web.exposure import docs_arguments, expose, metrics_server
from shared.web.guard import RequestGuard, routes_needing_a_caller
from shared.web.headers import SecurityHeaders
from shared.web.http_metrics import CONSOLE, HttpMetrics, labelled
from shared.web.photos import router as photos_router
from shared.web.request_ids import RequestIds


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
    if settings.tracing is Tracing.OTLP:
        tracing.start_tracing(process_name(service.name for service in runtime.services))
    dead_letters = DeadLetters(runtime.bus, settings.topic_dead_letter)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        watcher = asyncio.create_task(watch_dead_letters(dead_letters, runtime.bus_connected), name="dead-letters")
        gauges = Gauges(runtime.services, runtime.bus, runtime.bus_connected)
        gauge_watcher = asyncio.create_task(gauges.watch(settings.metrics_refresh_seconds), name="gauges")
        if own_process:
            settle_heap()
        try:
            async with metrics_server(settings):
                yield
        finally:
            for task in (watcher, gauge_watcher):
                task.cancel()
                with suppress(asyncio.CancelledError):
                    await task
            await runtime.stop()
            # Last, once everything else is closed: the export blocks the loop, for 5 s at most.
            tracing.flush()

    app = FastAPI(
        title="citycase",
        description=_DESCRIPTION,
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
        app.router.routes.append(_WholeMount(f"/{service.name}", _service_app(service, runtime)))
        for prefix, mount in service.spec.mounts.items():
            app.router.routes.append(_WholeMount(prefix, _mount_app(service, runtime, prefix, mount)))
    app.add_middleware(
        RequestGuard, tokens=shared.tokens, guarded=routes_needing_a_caller(app), limit_for=settings.body_limit
    )
    expose(app, settings, shared.tokens)
    # Outside the guard, so its own refusals carry them too.
    app.add_middleware(SecurityHeaders)
    # Outside the guard and the headers, so every answer is counted and timed, the refusals included.
    app.add_middleware(HttpMetrics, application=app)
    # Outermost (but for tracing's, added last), so every answer carries the request's id, and
    # whatever is logged while answering (uvicorn's access line too) names it.
    app.add_middleware(RequestIds, services=_service_prefixes(runtime))

    @app.get("/healthz", summary="Liveness: the process is up", tags=["operations"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/readyz",
        summary="Readiness: every service's database and the event bus answer",
        tags=["operations"],
        responses=_READINESS_ANSWERS,
    )
    async def readyz(exclude: Excluded = None) -> JSONResponse:
        checks = {f"{s.name}.database": await _probe(s.ensure_database_answers) for s in runtime.services}
        checks["bus"] = await _probe(runtime.ensure_bus_answers)
        checks |= {f"{s.name}.outbox": await _relay_check(s) for s in runtime.services}
        warnings = {f"{s.name}.outbox": w for s in runtime.services if (w := await _warning(s.outbox_warning))}
        return _readiness(checks, warnings | readiness_warnings(dead_letters), exclude)

    # What the router does with a request none of its routes takes, after its own 405 for a known
    # path and its redirect for a trailing slash: the console's pages, or a JSON 404.
    app.router.default = labelled(console_app(settings.console_dir, app.routes), CONSOLE)
    if tracing.active():
        _trace(app, runtime)
    return app


def process_name(services: Iterable[str]) -> str:
    """What a process running ``services`` is called in its log lines and traces: ``all``, or the
    services' names (``intake``)."""
    names = list(services)
    return "all" if sorted(names) == sorted(SERVICE_NAMES) else "+".join(names)


def _service_prefixes(runtime: Runtime) -> dict[str, str]:
    """Each path prefix of the process's services (theirs, and their mounts') to the service."""
    prefixes = {f"/{service.name}": service.name for service in runtime.services}
    prefixes |= {prefix: service.name for service in runtime.services for prefix in service.spec.mounts}
    return prefixes


def _trace(app: FastAPI, runtime: Runtime) -> None:
    """Spans for the app's requests and its services' database statements."""
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=tracing.provider(),
        excluded_urls=tracing.not_traced_urls(),
        # A span per chunk received and sent would outnumber the request's own work.
        exclude_spans=["receive", "send"],
    )
    tracing.instrument_engines([service.store.engine for service in runtime.services])


_DESCRIPTION = """\
What every citycase process serves beside its services: the log-in (`POST /auth/token`, the OAuth2 password flow,
whose bearer token every service's routes take; `/auth/refresh`, `/auth/logout`), the city's reference data
(`/city/...`: its grid's geometry, its scopes, its categories), its working calendar and clock (`/calendar/...`),
the dead letters for a shift lead (`/ops/...`), and liveness, readiness and metrics for the operators.

Each service has its own API and documentation under its prefix: `/intake/docs`, `/dispatch/docs`,
`/handling/docs`, `/closure/docs`, `/assessment/docs` (and Open311 at `/open311/docs`), for the services this
process runs.
"""


class CheckKind(StrEnum):
    """The kinds of readiness checks, each service's and the process's (``intake.database``, ``bus``)."""

    DATABASE = "database"
    BUS = "bus"
    OUTBOX = "outbox"


# As Kubernetes' own API server takes ``/readyz?exclude=etcd``: an orchestrator's probe leaves out
# what must not take a replica out of service. Its deployment probes ``?exclude=bus&exclude=outbox``:
# writes never wait for the bus, and a broker outage must not empty every Service of the city.
Excluded = Annotated[
    list[CheckKind] | None,
    Query(description="kinds of checks reported but left out of the verdict (repeatable)", max_length=3),
]


class Readiness(BaseModel):
    """A readiness answer (its shape for the documentation; ``_readiness`` writes it)."""

    ready: bool
    checks: dict[str, str] = Field(description='each check: "ok", or what failed')
    excluded: list[CheckKind] | None = Field(
        default=None, description="the kinds of checks left out of the verdict, as asked (left out when none is)"
    )
    warnings: dict[str, str] | None = Field(
        default=None, description="what is stuck but leaves the process ready (left out when nothing is)"
    )


# A readiness answer of 503 is the same report as a 200 (with the failing checks), not an error.
_READINESS_ANSWERS: dict[int | str, dict[str, Any]] = {
    200: {"model": Readiness},
    503: {"model": Readiness, "description": "Not ready: the same checks, each failing one saying why"},
}


def _clock(settings: Settings) -> Clock:
    return clock_of_folder(settings.data_dir, settings.clock_file, real_time=settings.real_time)


def _service_app(service: ServiceRuntime, runtime: Runtime) -> FastAPI:
    app = _app_of(service, runtime, service.spec.title, service.spec.description)
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
        responses=_READINESS_ANSWERS,
    )
    async def readyz(exclude: Excluded = None) -> JSONResponse:
        checks = {"database": await _probe(service.ensure_database_answers)}
        checks["bus"] = await _probe(runtime.ensure_bus_answers)
        checks["outbox"] = await _relay_check(service)
        warning = await _warning(service.outbox_warning)
        return _readiness(checks, {"outbox": warning} if warning else {}, exclude)

    return app


class _WholeMount(StarletteMount):
    """A prefix's app takes every path under the prefix. Starlette's mount matches the rest of the
    path with ``.*``, which stops at a line break: ``/open311/v2/services/a%0Ab.json`` would fall
    through to the process's 404 in the project's shape instead of the mount's own (Open311's)."""

    def __init__(self, path: str, app: ASGIApp) -> None:
        super().__init__(path, app)
        self.path_regex = re.compile(self.path_regex.pattern, re.DOTALL)


def _mount_app(service: ServiceRuntime, runtime: Runtime, prefix: str, mount: Mount) -> FastAPI:
    """A service's routes under a prefix of their own, on the service's context; the mount's
    ``install`` comes after the project's error handlers, so that its own replace them."""
    app = _app_of(service, runtime, f"{service.spec.title}: {prefix}", mount.description)
    install_error_handlers(app)
    if mount.install is not None:
        mount.install(app)
    app.include_router(mount.router)
    return app


def _app_of(service: ServiceRuntime, runtime: Runtime, title: str, description: str) -> FastAPI:
    """An app of ``service``'s routes, with its own documentation, on the service's context."""
    app = FastAPI(
        title=title,
        description=description,
        version="0.1.0",
        responses=ERROR_RESPONSES,
        **docs_arguments(runtime.settings.docs),
    )
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


async def _relay_check(service: ServiceRuntime) -> str:
    """``ok``, or why the relay of ``service`` in this process counts as stalled."""
    try:
        stall = await service.relay_stall()
    except Exception as exc:
        return f"unknown: {type(exc).__name__}: {exc}"[:300]
    return stall or "ok"


async def _warning(look: Callable[[], Awaitable[str | None]]) -> str | None:
    try:
        return await look()
    except Exception:
        return None  # the database check says why


def _readiness(
    checks: dict[str, str], warnings: dict[str, str], exclude: Sequence[CheckKind] | None = None
) -> JSONResponse:
    """Ready when every check passes, but those of the kinds in ``exclude`` (reported all the same).
    Warnings (parked outbox rows, an old backlog) leave the process ready: readiness decides whether
    a replica takes traffic, and taking every replica out for one unpublishable event would stop the
    whole city over one case; the warning here and the outbox metrics are the alert.
    """
    left_out = {kind.value for kind in exclude or ()}
    ready = all(result == "ok" for name, result in checks.items() if name.rpartition(".")[2] not in left_out)
    content: dict[str, object] = {"ready": ready, "checks": checks}
    if left_out:
        content["excluded"] = sorted(left_out)
    if warnings:
        content["warnings"] = warnings
    return JSONResponse(status_code=200 if ready else 503, content=content)
