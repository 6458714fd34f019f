"""The persisted check timer: an open check passes its deadline unanswered, and the stream hears of
it once (the check is due from then, and late); an answer later does not make it due again."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from closure import handlers, queries
from closure.api import ClosureRecord
from closure.app import SPEC
from closure.models import cases
from closure.timer import report_missed_checks
from shared.core.auth import Role
from shared.events.catalogue import CheckFailed, CheckPassed, CheckRequested, DeadlineKind, DeadlineMissed
from tests.service.closure.helpers import checking_case, first_cell, handled, inspector_of, open_case
from tests.service.conftest import MONDAY_0900, ServiceFactory, ServiceUnderTest, hours, principal

CHECK_DUE = MONDAY_0900 + hours(2)  # a check task of the working category, handled at 09:00: 11:00


async def nothing_reported(closure: ServiceUnderTest) -> None:
    before = [dict(row) for row in await closure.rows(cases)]
    assert await report_missed_checks(closure.ctx) == 0
    assert [dict(row) for row in await closure.rows(cases)] == before
    assert await closure.payloads() == []


async def test_a_check_past_its_deadline_is_reported_missed_once(service_under_test: ServiceFactory) -> None:
    closure = await service_under_test("closure")
    case_id = await checking_case(closure)
    assert (await closure.row(cases, case_id))["check_deadline"] == CHECK_DUE
    now = CHECK_DUE + timedelta(seconds=1)
    closure.clock.set(now)

    assert await report_missed_checks(closure.ctx) == 1

    row = await closure.row(cases, case_id)
    assert (row["status"], row["check_missed_at"]) == ("checking", now)
    (missed,) = await closure.emitted()
    assert missed.data == DeadlineMissed(kind=DeadlineKind.CHECK, deadline=CHECK_DUE)
    assert (missed.subject, missed.time) == (str(case_id), now)

    closure.clock.advance(hours(1))
    await nothing_reported(closure)


async def test_a_check_at_its_deadline_or_before_is_not_missed(service_under_test: ServiceFactory) -> None:
    closure = await service_under_test("closure")
    await checking_case(closure)
    closure.clock.set(CHECK_DUE - timedelta(minutes=1))
    await nothing_reported(closure)
    closure.clock.set(CHECK_DUE)  # answered now, the check would still be on time
    await nothing_reported(closure)


async def test_only_open_check_tasks_are_timed(service_under_test: ServiceFactory) -> None:
    closure = await service_under_test("closure")
    city = closure.ctx.city
    inspector = inspector_of(city, first_cell(city))
    await open_case(closure)  # not handled: no check task
    answered, cancelled = await checking_case(closure), await checking_case(closure)
    await handlers.check(closure.ctx, inspector, answered, passed=True, note=None, photos=[])
    await handlers.cancel(closure.ctx, principal(Role.SHIFT_LEAD), cancelled, "reported twice")
    await closure.emitted()
    closure.clock.set(CHECK_DUE + timedelta(days=7))

    await nothing_reported(closure)


async def test_an_answer_after_the_miss_is_late_and_the_next_check_is_timed_afresh(
    service_under_test: ServiceFactory,
) -> None:
    closure = await service_under_test("closure")
    city = closure.ctx.city
    inspector = inspector_of(city, first_cell(city))
    case_id = await checking_case(closure)
    closure.clock.set(CHECK_DUE + timedelta(minutes=5))
    assert await report_missed_checks(closure.ctx) == 1
    await closure.emitted()

    closure.clock.advance(timedelta(minutes=10))
    row = await handlers.check(closure.ctx, inspector, case_id, passed=False, note="still there", photos=[])
    assert (row["checks"], row["checks_on_time"], row["check_missed_at"], row["status"]) == (1, 0, None, "open")
    assert await closure.payloads() == [CheckFailed(inspector_id=inspector.inspector_id, reason="still there")]

    # Reworked: a new check task with its own deadline, reported missed again when it passes.
    await handled(closure, case_id, result="fixed again")
    (requested,) = await closure.payloads()
    assert isinstance(requested, CheckRequested)
    await nothing_reported(closure)
    closure.clock.set(requested.check_deadline + timedelta(seconds=1))
    assert await report_missed_checks(closure.ctx) == 1
    assert await closure.payloads() == [DeadlineMissed(kind=DeadlineKind.CHECK, deadline=requested.check_deadline)]

    row = await handlers.check(closure.ctx, inspector, case_id, passed=True, note=None, photos=[])
    assert (row["checks"], row["checks_requested"], row["checks_on_time"], row["check_missed_at"]) == (2, 2, 0, None)
    assert isinstance((await closure.payloads())[0], CheckPassed)


async def test_the_export_gives_the_recount_the_checks_answered_and_the_open_one_missed(
    service_under_test: ServiceFactory,
) -> None:
    closure = await service_under_test("closure")
    city = closure.ctx.city
    missed, answered = await checking_case(closure), await checking_case(closure)
    await handlers.check(closure.ctx, inspector_of(city, first_cell(city)), answered, passed=True, note=None, photos=[])
    closure.clock.advance(hours(1))
    waiting = await checking_case(closure)  # handled at 10:00: its check is due at 12:00
    now = CHECK_DUE + timedelta(seconds=1)
    closure.clock.set(now)
    assert await report_missed_checks(closure.ctx) == 1

    records = {
        row["id"]: ClosureRecord.model_validate(dict(row)) for row in await queries.export_page(closure.ctx, None, 10)
    }

    def checks(record: ClosureRecord) -> tuple[object, ...]:
        return (record.status, record.checks_requested, record.checks, record.check_missed_at, record.checks_on_time)

    assert checks(records[missed]) == ("checking", 1, 0, now, 0)
    assert checks(records[answered]) == ("closed", 1, 1, None, 1)
    assert checks(records[waiting]) == ("checking", 1, 0, None, 0)


async def test_closures_workers_report_missed_checks_as_time_passes(service_under_test: ServiceFactory) -> None:
    closure = await service_under_test("closure")
    case_id = await checking_case(closure)
    closure.clock.set(CHECK_DUE + timedelta(seconds=1))
    running = [asyncio.create_task(worker()) for worker in SPEC.workers(closure.ctx)]
    try:
        for _ in range(500):
            if (await closure.row(cases, case_id))["check_missed_at"] is not None:
                break
            await asyncio.sleep(0.01)
        assert (await closure.row(cases, case_id))["check_missed_at"] is not None
    finally:
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
    assert await closure.payloads() == [DeadlineMissed(kind=DeadlineKind.CHECK, deadline=CHECK_DUE)]
