"""Closure following a case from the other services' events: filing, the deadline in force, and
the check task when the department reports the case handled."""

from __future__ import annotations

from datetime import UTC, datetime

from closure.models import cases
from shared.core.ids import new_id
from shared.events.catalogue import CaseClosed, CaseDispatched, CaseResumed, CheckRequested, ExtensionApproved
from tests.service.closure.helpers import case_filed, dispatched, first_cell, handled, open_case
from tests.service.conftest import MONDAY_0900, ServiceFactory, hours


async def test_a_filed_case_is_open_with_its_cells_inspector(service_under_test: ServiceFactory) -> None:
    closure = await service_under_test("closure")
    city = closure.ctx.city
    cell_id = first_cell(city)
    case_id = new_id()

    await closure.deliver(case_filed(city, cell_id), case_id)

    row = await closure.row(cases, case_id)
    assert row["status"] == "open"
    assert row["inspector_id"] == city.inspector_for(cell_id).id
    assert row["cell_id"] == cell_id
    assert row["case_number"] == "2026-11-000001"
    assert row["source"] == "hotline"
    assert (row["checks"], row["checks_requested"], row["checks_on_time"], row["checks_failed"]) == (0, 0, 0, 0)
    assert row["closed_at"] is None
    assert row["on_time"] is None
    assert await closure.payloads() == []


async def test_a_case_filed_by_an_inspector_keeps_that_inspector(service_under_test: ServiceFactory) -> None:
    closure = await service_under_test("closure")
    case_id = new_id()
    await closure.deliver(case_filed(closure.ctx.city, first_cell(closure.ctx.city), inspector_id="insp-x"), case_id)
    assert (await closure.row(cases, case_id))["inspector_id"] == "insp-x"


async def test_a_self_handled_case_closes_on_time_when_filed(service_under_test: ServiceFactory) -> None:
    closure = await service_under_test("closure")
    city = closure.ctx.city
    case_id = new_id()

    await closure.deliver(case_filed(city, first_cell(city), self_handled=True), case_id)

    row = await closure.row(cases, case_id)
    assert row["status"] == "closed"
    assert row["closed_at"] == MONDAY_0900
    assert row["on_time"] is True
    (event,) = await closure.emitted()
    assert event.subject == str(case_id)
    assert event.time == MONDAY_0900
    assert event.data == CaseClosed(closed_by="operator-1", on_time=True, handling_deadline=None, self_handled=True)


async def test_dispatch_extension_and_resumption_set_the_deadline_in_force(service_under_test: ServiceFactory) -> None:
    closure = await service_under_test("closure")
    case_id = await open_case(closure)

    await dispatched(closure, case_id, MONDAY_0900 + hours(4))
    row = await closure.row(cases, case_id)
    assert row["handling_deadline"] == MONDAY_0900 + hours(4)
    assert row["department_id"] == "dept-1"

    await closure.deliver(ExtensionApproved(approved_by="lead-1", handling_deadline=MONDAY_0900 + hours(30)), case_id)
    assert (await closure.row(cases, case_id))["handling_deadline"] == MONDAY_0900 + hours(30)

    await closure.deliver(CaseResumed(resumed_by="lead-1", handling_deadline=MONDAY_0900 + hours(50)), case_id)
    row = await closure.row(cases, case_id)
    assert row["handling_deadline"] == MONDAY_0900 + hours(50)
    assert row["department_id"] == "dept-1"
    assert row["status"] == "open"

    await closure.deliver(
        CaseDispatched(department_id="dept-2", dispatched_by="d", handling_deadline=MONDAY_0900 + hours(9), attempt=2),
        case_id,
    )
    row = await closure.row(cases, case_id)
    assert (row["department_id"], row["handling_deadline"]) == ("dept-2", MONDAY_0900 + hours(9))
    assert await closure.payloads() == []


async def test_a_handled_case_becomes_a_check_task_due_in_working_time(service_under_test: ServiceFactory) -> None:
    closure = await service_under_test("closure")
    case_id = await open_case(closure)
    await dispatched(closure, case_id, MONDAY_0900 + hours(30))
    # 17:00 in Shanghai: two working hours run past the evening to 09:30 the next morning.
    now = closure.clock.advance(hours(8))

    await handled(closure, case_id, result="cleared the pavement")

    due = datetime(2026, 11, 3, 1, 30, tzinfo=UTC)
    row = await closure.row(cases, case_id)
    assert row["status"] == "checking"
    assert row["handled_at"] == now
    assert row["handling_result"] == "cleared the pavement"
    assert row["check_deadline"] == due
    assert row["checks_requested"] == 1
    (event,) = await closure.emitted()
    assert event.data == CheckRequested(inspector_id=row["inspector_id"], check_deadline=due)
    assert event.time == now


async def test_a_handled_report_of_a_case_not_open_is_ignored(service_under_test: ServiceFactory) -> None:
    closure = await service_under_test("closure")
    city = closure.ctx.city
    closed_id = new_id()
    await closure.deliver(case_filed(city, first_cell(city), self_handled=True), closed_id)
    checking_id = await open_case(closure)
    await handled(closure, checking_id)
    await closure.emitted()
    before = {case_id: dict(await closure.row(cases, case_id)) for case_id in (closed_id, checking_id)}
    closure.clock.advance(hours(1))

    await handled(closure, closed_id)
    await handled(closure, checking_id)
    await handled(closure, new_id())  # a case closure never heard of

    assert {case_id: dict(await closure.row(cases, case_id)) for case_id in before} == before
    assert await closure.payloads() == []
