"""Closure at year end: a check task whose deadline reaches a year the State Council has not
published runs on a provisional deadline, recomputed and told when the official year is loaded;
the handling deadline dispatch recomputes is the one closure judges the closure by.
"""

from __future__ import annotations

from datetime import UTC, datetime

from closure import handlers
from closure.models import cases
from shared.events.catalogue import CaseDispatched, CheckRequested, DeadlineKind, DeadlineRecomputed
from tests.service.closure.helpers import handled, open_case
from tests.service.conftest import NOTICE_2027, ServiceFactory, with_own_calendar

EVENING = datetime(2026, 12, 31, 9, 0, tzinfo=UTC)  # Thursday 31 December 2026, 17:00 in the city
# 120 working minutes: an hour on Thursday, New Year's Day and the weekend off, then an hour of
# Monday 4 January, the provisional 2027's first working day.
PROVISIONAL_CHECK = datetime(2027, 1, 4, 1, 30, tzinfo=UTC)
OFFICIAL_CHECK = datetime(2027, 1, 5, 1, 30, tzinfo=UTC)  # NOTICE_2027 gives Monday off: Tuesday


async def test_a_check_requested_at_year_end_is_recomputed_on_the_official_year(
    service_under_test: ServiceFactory,
) -> None:
    closure = with_own_calendar(await service_under_test("closure"))
    closure.clock.set(EVENING)
    case_id = await open_case(closure)
    await handled(closure, case_id)
    row = await closure.row(cases, case_id)
    assert (row["check_deadline"], row["check_deadline_provisional"]) == (PROVISIONAL_CHECK, True)
    (requested,) = await closure.payloads()
    assert isinstance(requested, CheckRequested)
    assert (requested.check_deadline, requested.provisional) == (PROVISIONAL_CHECK, True)

    assert await handlers.recompute_provisional_deadlines(closure.ctx) == 0
    closure.ctx.calendar.adopt(NOTICE_2027)
    assert await handlers.recompute_provisional_deadlines(closure.ctx) == 1

    row = await closure.row(cases, case_id)
    assert (row["check_deadline"], row["check_deadline_provisional"]) == (OFFICIAL_CHECK, False)
    assert await closure.payloads() == [
        DeadlineRecomputed(
            kind=DeadlineKind.CHECK, deadline=OFFICIAL_CHECK, provisional=False, previous=PROVISIONAL_CHECK
        )
    ]
    assert await handlers.recompute_provisional_deadlines(closure.ctx) == 0


async def test_the_handling_deadline_dispatch_recomputed_is_the_one_in_force(
    service_under_test: ServiceFactory,
) -> None:
    closure = await service_under_test("closure")
    case_id = await open_case(closure)
    provisional, official = datetime(2027, 1, 5, 1, 0, tzinfo=UTC), datetime(2027, 1, 6, 1, 0, tzinfo=UTC)
    dispatched = CaseDispatched(
        department_id="dept-1", dispatched_by="d", handling_deadline=provisional, attempt=1, provisional=True
    )
    await closure.deliver(dispatched, case_id, source="dispatch")
    row = await closure.row(cases, case_id)
    assert (row["handling_deadline"], row["handling_deadline_provisional"]) == (provisional, True)

    recomputed = DeadlineRecomputed(
        kind=DeadlineKind.HANDLING, deadline=official, provisional=False, previous=provisional
    )
    await closure.deliver(recomputed, case_id, source="dispatch")
    row = await closure.row(cases, case_id)
    assert (row["handling_deadline"], row["handling_deadline_provisional"]) == (official, False)
    assert await closure.payloads() == []
