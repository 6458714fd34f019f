"""What a service package declares about itself so the runtime can run it."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter
from sqlalchemy import MetaData

from shared.context import ServiceContext
from shared.messaging.consumer import ConsumerSpec
from shared.messaging.tracked import TrackedConsumerSpec

Worker = Callable[[], Coroutine[Any, Any, None]]


def _none(_ctx: ServiceContext) -> Sequence[Any]:
    return ()


@dataclass(frozen=True)
class ServiceSpec:
    """A service: its name, tables, HTTP routes, the consumers and background workers it runs.

    ``consumers`` follow the log with an inbox of event ids; ``tracked_consumers`` apply whole
    batches and keep their positions in the service's ``consumer_positions`` table.
    """

    name: str
    title: str
    metadata: MetaData
    router: APIRouter
    consumers: Callable[[ServiceContext], Sequence[ConsumerSpec]] = _none
    workers: Callable[[ServiceContext], Sequence[Worker]] = field(default=_none)
    tracked_consumers: Callable[[ServiceContext], Sequence[TrackedConsumerSpec]] = field(default=_none)
