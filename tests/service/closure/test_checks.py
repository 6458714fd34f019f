"""The inspector's check on site (核查) closes a case (结案), on time or late, or sends it back for
rework (返工); a shift lead cancels (作废). Refusals write nothing and emit nothing."""

from __future__ import annotations

from uuid import UUID

import pytest

from closure import handlers
from closure.models import cases
from shared.core.auth import Role
from shared.core.errors import DomainError, IllegalTransition, NotFound, OutOfScope
from shared.events.catalogue import CaseCancelled, CaseClosed, CheckFailed, CheckPassed
from tests.service.closure.helpers import (
    another_inspector,
    checking_case,
    first_cell,
    handled,
    inspector_of,
    open_case,
)
from tests.service.conftest import MONDAY_0900, ServiceFactory, ServiceUnderTest, hours, principal

PHOTO = "a" * 64


async def snapshot(closure: ServiceUnderTest, case_id: UUID) -> dict[str, object]:
    """The case row as it is; then the clock moves on, so that any write would stamp a new updated_at."""
    row = dict(await closure.row(cases, case_id))
    closure.clock.advance(hours(0.5))
    return row


async def unchanged(closure: ServiceUnderTest, case_id: UUID, before: dict[str, object]) -> None:
    assert dict(await closure.row(cases, case_id)) == before
    assert await closure.payloads() == []


async def test_a_check_passed_before_the_deadline_closes_on_time(service_under_test: ServiceFactory) -> None:
    closure = await service_under_test("closure")
    case_id = await checking_case(closure)
    inspector = inspector_of(closure.ctx.city, first_cell(closure.ctx.city))
    now = closure.clock.advance(hours(1))

    row = await handlers.check(closure.ctx, inspector, case_id, passed=True, note="clean", photos=[PHOTO])

    assert row["status"] == "closed"
    assert row["closed_at"] == now
    assert row["on_time"] is True
    assert (row["checks"], row["checks_on_time"], row["checks_failed"], row["checks_requested"]) == (1, 1, 0, 1)
    assert dict(await closure.row(cases, case_id)) == dict(row)
    passed, closed = await closure.emitted()
    assert passed.data == CheckPassed(inspector_id=inspector.inspector_id, note="clean", photos=[PHOTO])
    assert closed.data == CaseClosed(
        closed_by=inspector.username, on_time=True, handling_deadline=MONDAY_0900 + hours(4), self_handled=False
    )
    assert passed.time == closed.time == now


async def test_a_check_passed_after_the_deadline_closes_late(service_under_test: ServiceFactory) -> None:
    closure = await service_under_test("closure")
    case_id = await checking_case(closure)
    inspector = inspector_of(closure.ctx.city, first_cell(closure.ctx.city))
    now = closure.clock.advance(hours(5))  # past the check deadline (11:00) and the handling deadline (13:00)

    row = await handlers.check(closure.ctx, inspector, case_id, passed=True, note=None, photos=[])

    assert row["status"] == "closed"
    assert row["closed_at"] == now
    assert row["on_time"] is False
    assert (row["checks"], row["checks_on_time"]) == (1, 0)
    _, closed = await closure.payloads()
    assert closed == CaseClosed(
        closed_by=inspector.username, on_time=False, handling_deadline=MONDAY_0900 + hours(4), self_handled=False
    )


async def test_a_failed_check_sends_the_case_back_for_rework(service_under_test: ServiceFactory) -> None:
    closure = await service_under_test("closure")
    case_id = await checking_case(closure)
    inspector = inspector_of(closure.ctx.city, first_cell(closure.ctx.city))

    row = await handlers.check(closure.ctx, inspector, case_id, passed=False, note="still there", photos=[PHOTO])

    assert row["status"] == "open"
    assert row["check_deadline"] is None
    assert row["closed_at"] is None
    assert (row["checks"], row["checks_on_time"], row["checks_failed"], row["checks_requested"]) == (1, 1, 1, 1)
    assert await closure.payloads() == [
        CheckFailed(inspector_id=inspector.inspector_id, reason="still there", photos=[PHOTO])
    ]

    # Reworked and checked again, late this time, without a note.
    await handled(closure, case_id, result="fixed again")
    await closure.emitted()
    closure.clock.advance(hours(3))
    row = await handlers.check(closure.ctx, inspector, case_id, passed=False, note=None, photos=[])
    assert (row["checks"], row["checks_on_time"], row["checks_failed"], row["checks_requested"]) == (2, 1, 2, 2)
    assert await closure.payloads() == [CheckFailed(inspector_id=inspector.inspector_id, reason="not solved")]


@pytest.mark.parametrize(
    ("checking", "own_inspector", "error", "status"),
    [(True, False, OutOfScope, 403), (False, True, IllegalTransition, 409)],
    ids=["another inspector", "no check task"],
)
async def test_a_check_is_the_cells_inspectors_and_answers_only_a_check_task(
    service_under_test: ServiceFactory, checking: bool, own_inspector: bool, error: type[DomainError], status: int
) -> None:
    closure = await service_under_test("closure")
    case_id = await (checking_case(closure) if checking else open_case(closure))
    before = await snapshot(closure, case_id)
    cell_id = first_cell(closure.ctx.city)
    caller = (inspector_of if own_inspector else another_inspector)(closure.ctx.city, cell_id)

    with pytest.raises(error) as refused:
        await handlers.check(closure.ctx, caller, case_id, passed=True, note=None, photos=[])

    assert refused.value.status == status
    await unchanged(closure, case_id, before)


async def test_a_closed_case_cannot_be_checked_again(service_under_test: ServiceFactory) -> None:
    closure = await service_under_test("closure")
    case_id = await checking_case(closure)
    inspector = inspector_of(closure.ctx.city, first_cell(closure.ctx.city))
    await handlers.check(closure.ctx, inspector, case_id, passed=True, note=None, photos=[])
    await closure.emitted()
    before = await snapshot(closure, case_id)

    with pytest.raises(IllegalTransition):
        await handlers.check(closure.ctx, inspector, case_id, passed=False, note=None, photos=[])

    await unchanged(closure, case_id, before)


async def test_checking_a_case_closure_does_not_know_is_not_found(service_under_test: ServiceFactory) -> None:
    closure = await service_under_test("closure")
    inspector = inspector_of(closure.ctx.city, first_cell(closure.ctx.city))
    with pytest.raises(NotFound):
        await handlers.check(closure.ctx, inspector, UUID(int=1), passed=True, note=None, photos=[])
    assert await closure.payloads() == []


@pytest.mark.parametrize("checking", [False, True])
async def test_a_shift_lead_cancels_a_case(service_under_test: ServiceFactory, checking: bool) -> None:
    closure = await service_under_test("closure")
    case_id = await (checking_case(closure) if checking else open_case(closure))
    lead = principal(Role.SHIFT_LEAD)

    row = await handlers.cancel(closure.ctx, lead, case_id, "a duplicate")

    assert row["status"] == "cancelled"
    assert (await closure.row(cases, case_id))["status"] == "cancelled"
    assert await closure.payloads() == [CaseCancelled(cancelled_by=lead.username, reason="a duplicate")]


async def test_cancelling_twice_is_refused(service_under_test: ServiceFactory) -> None:
    closure = await service_under_test("closure")
    case_id = await open_case(closure)
    lead = principal(Role.SHIFT_LEAD)
    await handlers.cancel(closure.ctx, lead, case_id, "a duplicate")
    await closure.emitted()
    before = await snapshot(closure, case_id)

    with pytest.raises(IllegalTransition) as refused:
        await handlers.cancel(closure.ctx, lead, case_id, "again")

    assert refused.value.status == 409
    await unchanged(closure, case_id, before)


async def test_a_closed_case_cannot_be_cancelled(service_under_test: ServiceFactory) -> None:
    closure = await service_under_test("closure")
    case_id = await checking_case(closure)
    await handlers.check(
        closure.ctx,
        inspector_of(closure.ctx.city, first_cell(closure.ctx.city)),
        case_id,
        passed=True,
        note=None,
        photos=[],
    )
    await closure.emitted()
    before = await snapshot(closure, case_id)

    with pytest.raises(IllegalTransition):
        await handlers.cancel(closure.ctx, principal(Role.SHIFT_LEAD), case_id, "too late")

    await unchanged(closure, case_id, before)
