"""What a service's handlers are given: its store, the clock, the city and its calendar, photos."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from fastapi import Request

from shared.calendar import CalendarDataMissing, TimeBasis, TimeLimit, WorkingCalendar
from shared.city import Category, City
from shared.clock import Clock
from shared.errors import DependencyMissing
from shared.events.catalogue import EventPayload
from shared.events.envelope import Event
from shared.messaging.consumer import Handler
from shared.messaging.store import ServiceStore, Transaction
from shared.settings import Settings
from shared.storage import PhotoStore


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

    @property
    def source(self) -> str:
        """The CloudEvents ``source`` of this service's events."""
        return f"/citycase/{self.service}"

    def deadline(self, start: datetime, category: Category, kind: str) -> datetime:
        """When the ``kind`` limit (filing, dispatch, handling, check) of ``category`` ends.

        A year without calendar data is a visible 503 naming the year, never a wrong deadline.
        """
        limit = TimeLimit(getattr(category, kind), TimeBasis(category.time_basis))
        try:
            return self.calendar.add(start, limit)
        except CalendarDataMissing as exc:
            raise DependencyMissing(str(exc), {"calendar": "missing year"}) from exc

    def event(self, payload: EventPayload, case_id: object, *, at: datetime | None = None) -> Event:
        """A new event of this service about ``case_id``, stamped with the clock.

        ``at`` stamps it with an instant the handler already wrote in its rows instead, so a row and
        the event it goes with agree to the microsecond: the batch recount reads the rows, the
        assessment stream reads the events, and both must put a case in the same period.
        """
        return Event.occurred(payload, subject=str(case_id), source=self.source, clock=self.clock, at=at)


async def service_context(request: Request) -> ServiceContext:
    """The context of the service a request reached (a route dependency; a coroutine so that
    FastAPI does not hand it to a thread pool)."""
    context: ServiceContext = request.app.state.context
    return context


Reaction = Callable[[ServiceContext, Transaction, Event], Awaitable[None]]


def bind_reactions(ctx: ServiceContext, reactions: Mapping[str, Reaction]) -> dict[str, Handler]:
    """Consumer handlers, by event type, that run each reaction with the service's context."""

    def bind(reaction: Reaction) -> Handler:
        async def handle(tx: Transaction, event: Event) -> None:
            await reaction(ctx, tx, event)

        return handle

    return {event_type: bind(reaction) for event_type, reaction in reactions.items()}
