"""The contract a service plugs in with: reactions keyed by payload class and checked against the
catalogue when the service starts; resources found by class."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar, cast
from uuid import uuid4

import pytest

from shared.core.clock import SimulatedClock
from shared.events.catalogue import CaseAccepted, CaseCancelled, CaseClosed, EventPayload
from shared.events.envelope import Event
from shared.messaging.store import Transaction
from shared.service.context import On, Resources, ServiceContext, bind_reactions

CLOCK = SimulatedClock(datetime(2026, 11, 16, 1, 0, tzinfo=UTC))
CONTEXT = cast(ServiceContext, type("Ctx", (), {"service": "testing"})())
TX = cast(Transaction, object())


class Unregistered(EventPayload):
    """A payload the catalogue does not know, as a typo'd or forgotten class would be."""

    TYPE: ClassVar[str] = "case.never_registered"


async def _ignore(_ctx: ServiceContext, _tx: Transaction, _event: Event, _data: Any) -> None:
    return None


def test_a_reaction_to_a_payload_outside_the_catalogue_stops_the_start() -> None:
    with pytest.raises(ValueError, match="Unregistered"):
        bind_reactions(CONTEXT, [On(CaseClosed, _ignore), On(Unregistered, _ignore)])


def test_two_reactions_to_one_type_stop_the_start() -> None:
    with pytest.raises(ValueError, match="twice"):
        bind_reactions(CONTEXT, [On(CaseClosed, _ignore), On(CaseClosed, _ignore)])


async def test_reactions_are_keyed_by_type_and_receive_the_typed_payload() -> None:
    received: list[tuple[str, EventPayload]] = []

    async def on_ended(_ctx: ServiceContext, _tx: Transaction, event: Event, data: CaseClosed | CaseCancelled) -> None:
        received.append((event.subject, data))

    handlers = bind_reactions(CONTEXT, [On(CaseClosed, on_ended), On(CaseCancelled, on_ended)])
    assert set(handlers) == {"case.closed", "case.cancelled"}
    case_id = uuid4()
    closed = CaseClosed(closed_by="lead", on_time=True, handling_deadline=None, self_handled=False)
    await handlers["case.closed"](TX, Event.occurred(closed, subject=case_id, source="/t", clock=CLOCK))
    assert received == [(str(case_id), closed)]
    # An event of another class under the same type (a newer version) is refused, not mis-read.
    accepted = CaseAccepted(department_id="D1", accepted_by="u")
    stray = Event.occurred(accepted, subject=case_id, source="/t", clock=CLOCK)
    with pytest.raises(TypeError):
        await handlers["case.closed"](TX, stray)


def test_resources_are_found_by_class() -> None:
    class Numbers:
        pass

    numbers = Numbers()
    resources = Resources([numbers])
    assert resources.get(Numbers) is numbers
    with pytest.raises(LookupError):
        resources.get(int)
    with pytest.raises(ValueError, match="two resources"):
        Resources([Numbers(), Numbers()])
