"""What a service package declares about itself so the runtime can run it: the contract every
service plugs in with (its ``app.py`` holds its ``SPEC``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import MetaData

from shared.city.model import City
from shared.core.settings import Settings
from shared.messaging.bus import Bus
from shared.messaging.consumer import ConsumerSpec
from shared.messaging.store import ServiceStore
from shared.messaging.tracked import TrackedConsumerSpec
from shared.service.context import ServiceContext

if TYPE_CHECKING:
    # Only the name of the type: the web framework stays out of the contract's imports.
    from fastapi import APIRouter

Worker = Callable[[], Coroutine[Any, Any, None]]


@dataclass(frozen=True)
class Replay:
    """What a replay of the case event log into a service's state did."""

    events: int
    seconds: float

    @property
    def events_per_second(self) -> float:
        """The replay's throughput."""
        return self.events / self.seconds if self.seconds > 0 else 0.0


Rebuild = Callable[[ServiceStore, Bus, City, Settings], Awaitable[Replay]]


def _none(_ctx: ServiceContext) -> Sequence[Any]:
    return ()


def _no_resources(_store: ServiceStore, _settings: Settings) -> Sequence[object]:
    return ()


@dataclass(frozen=True)
class ServiceSpec:
    """A service: its name, tables, HTTP routes, the consumers and background workers it runs.

    ``consumers`` follow the log with an inbox of event ids; ``tracked_consumers`` apply whole
    batches and keep their positions in the service's ``consumer_positions`` table. ``rebuild``,
    where a service has one, empties the state it derives from the log and replays the log.
    ``resources`` makes the service's own machinery once per process (``ServiceContext.resources``).
    """

    name: str
    title: str
    metadata: MetaData
    router: APIRouter
    consumers: Callable[[ServiceContext], Sequence[ConsumerSpec]] = _none
    workers: Callable[[ServiceContext], Sequence[Worker]] = field(default=_none)
    tracked_consumers: Callable[[ServiceContext], Sequence[TrackedConsumerSpec]] = field(default=_none)
    rebuild: Rebuild | None = None
    resources: Callable[[ServiceStore, Settings], Sequence[object]] = _no_resources
