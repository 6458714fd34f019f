"""The year-end case: a case dispatched in late December on a deadline in a year the State
Council has not published yet runs on a provisional deadline, recomputed, and told, when the
city loads the year's official days.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from dispatch import handlers
from shared.events.catalogue import CaseDispatched, DeadlineKind, DeadlineRecomputed
from shared.service.context import ServiceContext
from shared.service.deadlines import recompute_on_official_years
from tests.service.conftest import NOTICE_2027, ServiceFactory, ServiceUnderTest, with_own_calendar
from tests.service.dispatch.conftest import LEAD, case_row, file_case

YEAR_END = datetime(2026, 12, 28, 1, 0, tzinfo=UTC)  # Monday 28 December 2026, 09:00 in the city
# Pavement (人行道): five working days (2100 working minutes) to handle; a city-wide rule sends it
# to the housing bureau.
FIVE_DAYS = "01-02-05"
# 28, 29, 30, 31 December; New Year's Day (Friday) off by the statutory rules, the weekend, then
# Monday 4 January: the fifth working day ends on Tuesday 5 January, 09:00.
PROVISIONAL_DUE = datetime(2027, 1, 5, 1, 0, tzinfo=UTC)
OFFICIAL_DUE = datetime(2027, 1, 6, 1, 0, tzinfo=UTC)  # NOTICE_2027 gives Monday 4 January off: Wednesday


@pytest.fixture
async def dispatch_service(service_under_test: ServiceFactory) -> ServiceUnderTest:
    """Dispatch at year end, with a calendar of its own (the tests teach it 2027) and a short
    look interval for its workers."""
    sut = with_own_calendar(await service_under_test("dispatch"), timer_interval_seconds=0.01)
    sut.clock.set(YEAR_END)
    return sut


async def test_a_case_filed_at_year_end_is_dispatched_on_a_provisional_deadline(
    dispatch_service: ServiceUnderTest,
) -> None:
    case_id = await file_case(dispatch_service, FIVE_DAYS, drain=False)

    row = await case_row(dispatch_service, case_id)
    assert (row["status"], row["department_id"]) == ("dispatched", "bureau-housing")
    assert (row["handling_deadline"], row["handling_deadline_provisional"]) == (PROVISIONAL_DUE, True)
    (dispatched,) = await dispatch_service.payloads()
    assert isinstance(dispatched, CaseDispatched)
    assert (dispatched.handling_deadline, dispatched.provisional) == (PROVISIONAL_DUE, True)


async def test_loading_the_official_year_recomputes_the_deadline_and_says_so(
    dispatch_service: ServiceUnderTest,
) -> None:
    case_id = await file_case(dispatch_service, FIVE_DAYS)
    # Nothing to recompute while the year is still provisional.
    assert await handlers.recompute_provisional_deadlines(dispatch_service.ctx) == 0
    assert await dispatch_service.emitted() == []

    assert dispatch_service.ctx.calendar.adopt(NOTICE_2027)
    assert await handlers.recompute_provisional_deadlines(dispatch_service.ctx) == 1

    row = await case_row(dispatch_service, case_id)
    assert (row["handling_deadline"], row["handling_deadline_provisional"]) == (OFFICIAL_DUE, False)
    (event,) = await dispatch_service.emitted()
    assert event.subject == str(case_id)
    assert event.data == DeadlineRecomputed(
        kind=DeadlineKind.HANDLING, deadline=OFFICIAL_DUE, provisional=False, previous=PROVISIONAL_DUE
    )
    # Official now: a second run finds nothing.
    assert await handlers.recompute_provisional_deadlines(dispatch_service.ctx) == 0
    assert await dispatch_service.emitted() == []


async def test_a_suspension_in_the_provisional_year_is_counted_again_on_the_official_one(
    dispatch_service: ServiceUnderTest,
) -> None:
    case_id = await file_case(dispatch_service, FIVE_DAYS)
    # Suspended over Monday 4 January, a working day of the provisional 2027: a day stood still.
    dispatch_service.clock.set(datetime(2027, 1, 4, 0, 0, tzinfo=UTC))
    await handlers.suspend(dispatch_service.ctx, LEAD, case_id, "waiting for the owner")
    dispatch_service.clock.set(datetime(2027, 1, 4, 12, 0, tzinfo=UTC))
    resumed = await handlers.resume(dispatch_service.ctx, LEAD, case_id)
    assert (resumed["handling_deadline"], resumed["handling_deadline_provisional"]) == (
        PROVISIONAL_DUE + timedelta(days=1),
        True,
    )
    await dispatch_service.emitted()

    dispatch_service.ctx.calendar.adopt(NOTICE_2027)
    assert await handlers.recompute_provisional_deadlines(dispatch_service.ctx) == 1
    # Officially that Monday is off: the pause cost no working time.
    row = await case_row(dispatch_service, case_id)
    assert (row["handling_deadline"], row["handling_deadline_provisional"]) == (OFFICIAL_DUE, False)


async def test_the_worker_recomputes_at_start_and_whenever_the_calendar_learns_a_year(
    dispatch_service: ServiceUnderTest,
) -> None:
    case_id = await file_case(dispatch_service, FIVE_DAYS)
    runs: list[int] = []

    async def recompute(ctx: ServiceContext) -> int:
        runs.append(await handlers.recompute_provisional_deadlines(ctx))
        return runs[-1]

    worker = asyncio.create_task(recompute_on_official_years(dispatch_service.ctx, recompute))
    try:
        await until(lambda: runs == [0])  # at start: nothing official to recompute on yet
        dispatch_service.ctx.calendar.adopt(NOTICE_2027)
        await until(lambda: runs == [0, 1])
    finally:
        worker.cancel()
        with pytest.raises(asyncio.CancelledError):
            await worker
    row = await case_row(dispatch_service, case_id)
    assert (row["handling_deadline"], row["handling_deadline_provisional"]) == (OFFICIAL_DUE, False)
    assert [type(payload) for payload in await dispatch_service.payloads()] == [DeadlineRecomputed]


async def until(condition: Callable[[], bool]) -> None:
    """Poll ``condition`` until it holds (the worker runs on its own)."""
    async with asyncio.timeout(10):
        while not condition():
            await asyncio.sleep(0.01)
