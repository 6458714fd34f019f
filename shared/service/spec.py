"""What a service package declares about itself so the runtime can run it: the contract every
service plugs in with (its ``app.py`` holds its ``SPEC``).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import MetaData

from shared.core.settings import Settings
from shared.messaging.consumer import ConsumerSpec
from shared.messaging.store import ServiceStore
from shared.messaging.tracked import TrackedConsumerSpec
from shared.service.context import ServiceContext
from shared.service.timer import Timer

if TYPE_CHECKING:
    # Only the names of the types: the web framework stays out of the contract's imports.
    from fastapi import APIRouter, FastAPI

Worker = Callable[[], Coroutine[Any, Any, None]]


def _none(_ctx: ServiceContext) -> Sequence[Any]:
    return ()


def _no_resources(_store: ServiceStore, _settings: Settings) -> Sequence[object]:
    return ()


@dataclass(frozen=True)
class Mount:
    """Routes a service serves under a prefix of their own rather than its name, for clients that
    expect a standard's address (Open311's ``/open311/v2/...``): mounted by the runtime with the
    service's context, like the service's own routes. ``install`` prepares the mount's app before
    its routes are added: error handlers of the standard's shape, in place of the project's.
    ``description`` heads the mount's OpenAPI document, as a service's does."""

    router: APIRouter
    description: str
    install: Callable[[FastAPI], None] | None = None


def _no_mounts() -> Mapping[str, Mount]:
    return {}


@dataclass(frozen=True)
class ServiceSpec:
    """A service: its name, tables, HTTP routes, the consumers and background workers it runs.

    ``consumers`` follow the log with an inbox of event ids; ``tracked_consumers`` apply whole
    batches and keep their positions in the service's ``consumer_positions`` table.
    ``resources`` makes the service's own machinery once per process (``ServiceContext.resources``).
    ``mounts`` are more routes under prefixes of their own (``/open311``), by prefix.
    ``description`` heads the service's OpenAPI document (Markdown): what the service does, who
    calls it and how a caller proves who it is.
    ``timers`` say what the persisted timers among the workers have due (for the gauges).
    """

    name: str
    title: str
    description: str
    metadata: MetaData
    router: APIRouter
    consumers: Callable[[ServiceContext], Sequence[ConsumerSpec]] = _none
    workers: Callable[[ServiceContext], Sequence[Worker]] = field(default=_none)
    tracked_consumers: Callable[[ServiceContext], Sequence[TrackedConsumerSpec]] = field(default=_none)
    resources: Callable[[ServiceStore, Settings], Sequence[object]] = _no_resources
    mounts: Mapping[str, Mount] = field(default_factory=_no_mounts)
    timers: Sequence[Timer] = ()
