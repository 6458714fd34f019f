"""What a service's handlers are given: its store, the clock, the city and its calendar, photos,
the city's integrations (hotlines, department systems); and how a service declares the events it reacts to.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

from shared.city.calendar import Deadline, TimeBasis, TimeLimit, WorkingCalendar
from shared.city.model import Category, City
from shared.core.clock import Clock
from shared.core.photos import PhotoStore
from shared.core.settings import Settings
from shared.events.catalogue import CATALOGUE, Catalogue, EventPayload
from shared.events.envelope import Event
from shared.integration.endpoints import Integrations
from shared.messaging.consumer import Handler
from shared.messaging.store import ServiceStore, Transaction

P = TypeVar("P", bound=EventPayload)
R = TypeVar("R")


class Resources:
    """A service's own long-lived machinery, one object per class (intake's case-number blocks,
    for one), made by its spec's ``resources`` when the service starts and found by class.
    """

    def __init__(self, resources: Iterable[object] = ()) -> None:
        self._by_class: dict[type, object] = {}
        for resource in resources:
            if type(resource) in self._by_class:
                raise ValueError(f"two resources of class {type(resource).__name__}")
            self._by_class[type(resource)] = resource

    def get(self, kind: type[R]) -> R:
        """The service's resource of class ``kind``; ``LookupError`` when the service has none."""
        resource = self._by_class.get(kind)
        if not isinstance(resource, kind):
            raise LookupError(f"the service has no {kind.__name__}; its spec's resources make one")
        return resource


@dataclass(frozen=True)
class ServiceContext:
    """Everything a use case of one service may touch."""

    service: str
    settings: Settings
    clock: Clock
    store: ServiceStore
    city: City
    calendar: WorkingCalendar
    photos: PhotoStore
    resources: Resources = field(default_factory=Resources)
    # The city's integrations.yaml, loaded beside the city; a city without one has none.
    integrations: Integrations = field(default_factory=Integrations.none)

    @property
    def source(self) -> str:
        """The CloudEvents ``source`` of this service's events."""
        return f"/citycase/{self.service}"

    def deadline(self, start: datetime, category: Category, kind: str) -> Deadline:
        """When the ``kind`` limit (filing, dispatch, handling, check) of ``category`` ends, and
        whether a provisional calendar year counted in it.

        A year the calendar cannot serve at all is ``CalendarDataMissing``, a visible 503 naming
        the year, never a wrong deadline.
        """
        return self.calendar.deadline(start, TimeLimit(getattr(category, kind), TimeBasis(category.time_basis)))

    def event(self, payload: EventPayload, case_id: object, *, at: datetime | None = None) -> Event:
        """A new event of this service about ``case_id``, stamped with the clock.

        ``at`` stamps it with an instant the handler already wrote in its rows instead, so a row and
        the event it goes with agree to the microsecond: the batch recount reads the rows, the
        assessment stream reads the events, and both must put a case in the same period.
        """
        return Event.occurred(payload, subject=str(case_id), source=self.source, clock=self.clock, at=at)


@dataclass(frozen=True)
class On(Generic[P]):
    """A reaction to the events of one payload class: ``react(ctx, tx, event, payload)``, where
    ``payload`` is the event's data already of that class.

    Keyed by the class, not by a type string: a misspelt payload is an import error, and
    ``bind_reactions`` refuses a class the catalogue does not register, at start.
    """

    payload: type[P]
    react: Callable[[ServiceContext, Transaction, Event, P], Awaitable[None]]


def bind_reactions(
    ctx: ServiceContext, reactions: Iterable[On[Any]], catalogue: Catalogue = CATALOGUE
) -> dict[str, Handler]:
    """The consumer's handlers by event type, each running its reaction with the service's context.

    Raises ``ValueError`` for a payload class outside ``catalogue`` or one given two reactions.
    """
    handlers: dict[str, Handler] = {}
    for reaction in reactions:
        if not catalogue.registers(reaction.payload):
            raise ValueError(f"{ctx.service} reacts to {reaction.payload.__name__}, which the event catalogue lacks")
        if reaction.payload.TYPE in handlers:
            raise ValueError(f"{ctx.service} reacts twice to {reaction.payload.TYPE}")
        handlers[reaction.payload.TYPE] = _bind(ctx, reaction)
    return handlers


def _bind(ctx: ServiceContext, reaction: On[P]) -> Handler:
    async def handle(tx: Transaction, event: Event) -> None:
        # The consumer decoded the record with the catalogue's model of its type: the class is
        # the reaction's own unless a newer version is registered for the same type.
        if not isinstance(event.data, reaction.payload):
            raise TypeError(f"{event.type} v{event.version} is not {reaction.payload.__name__}")
        await reaction.react(ctx, tx, event, event.data)

    return handle
