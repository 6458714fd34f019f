"""The hotline's callback to the citizen (回访) as closure takes it: an unsatisfied verdict reopens a
closed case for rework where the hotline's rule in the city's ``integrations.yaml`` says so; the
case then closes again through a new check. Anything else changes nothing and emits nothing."""

from __future__ import annotations

from pathlib import Path
from uuid import UUID

import pytest

from closure import handlers
from closure.models import cases
from shared.core.auth import Role
from shared.core.ids import new_id
from shared.events.catalogue import (
    CallbackRecorded,
    CallbackVerdict,
    CaseClosed,
    CaseReopened,
    CheckPassed,
    CheckRequested,
)
from shared.events.envelope import Event
from tests.service.closure.helpers import (
    closed_case,
    first_cell,
    handled,
    inspector_of,
    open_case,
    with_hotlines,
)
from tests.service.conftest import MONDAY_0900, ServiceFactory, ServiceUnderTest, hours, principal


def callback(
    verdict: CallbackVerdict, hotline_id: str = "12345", note: str | None = "still leaking"
) -> CallbackRecorded:
    return CallbackRecorded(hotline_id=hotline_id, work_order="WO-1", verdict=verdict, note=note)


async def unchanged_by(closure: ServiceUnderTest, case_id: UUID, payload: CallbackRecorded) -> None:
    before = dict(await closure.row(cases, case_id))
    closure.clock.advance(hours(0.5))  # any write would stamp a new updated_at
    await closure.deliver(payload, case_id, source="intake")
    assert dict(await closure.row(cases, case_id)) == before
    assert await closure.payloads() == []


@pytest.fixture
async def closure(service_under_test: ServiceFactory, tmp_path: Path) -> ServiceUnderTest:
    return with_hotlines(await service_under_test("closure"), tmp_path)


async def test_an_unsatisfied_callback_reopens_the_closed_case_and_it_closes_again(closure: ServiceUnderTest) -> None:
    case_id = await closed_case(closure)
    now = closure.clock.advance(hours(20))  # the next morning, past the handling deadline (13:00)

    await closure.deliver(callback(CallbackVerdict.UNSATISFIED), case_id, source="intake")

    row = await closure.row(cases, case_id)
    assert (row["status"], row["closed_at"], row["on_time"], row["reopens"]) == ("open", None, None, 1)
    assert (row["checks"], row["checks_requested"], row["checks_failed"]) == (1, 1, 0)
    (reopened,) = await closure.emitted()
    assert reopened.data == CaseReopened(department_id="dept-1", reason="still leaking")
    assert (reopened.subject, reopened.time) == (str(case_id), now)

    # The department handles it again: a new check task; passed, the case closes again, late.
    await handled(closure, case_id, result="pipe replaced")
    (requested,) = await closure.payloads()
    assert isinstance(requested, CheckRequested)
    closure.clock.advance(hours(1))
    inspector = inspector_of(closure.ctx.city, first_cell(closure.ctx.city))
    checked = await handlers.check(closure.ctx, inspector, case_id, passed=True, note=None, photos=[])
    assert (checked["status"], checked["on_time"], checked["reopens"], checked["checks_requested"]) == (
        "closed",
        False,
        1,
        2,
    )
    passed, closed = await closure.payloads()
    assert isinstance(passed, CheckPassed)
    assert closed == CaseClosed(
        closed_by=inspector.username, on_time=False, handling_deadline=MONDAY_0900 + hours(4), self_handled=False
    )


async def test_without_a_note_the_reopen_says_the_citizen_was_not_satisfied(closure: ServiceUnderTest) -> None:
    case_id = await closed_case(closure)
    await closure.deliver(callback(CallbackVerdict.UNSATISFIED, note=None), case_id, source="intake")
    (reopened,) = await closure.payloads()
    assert reopened == CaseReopened(department_id="dept-1", reason="the citizen was not satisfied (回访不满意)")


@pytest.mark.parametrize(
    "payload",
    [
        callback(CallbackVerdict.UNSATISFIED, hotline_id="12319"),
        callback(CallbackVerdict.UNSATISFIED, hotline_id="96345"),
        callback(CallbackVerdict.SATISFIED),
        callback(CallbackVerdict.BASICALLY_SATISFIED),
    ],
    ids=["the hotline's rule says no", "a hotline no longer configured", "satisfied", "basically satisfied"],
)
async def test_a_callback_that_does_not_reopen_changes_nothing(
    closure: ServiceUnderTest, payload: CallbackRecorded
) -> None:
    await unchanged_by(closure, await closed_case(closure), payload)


async def test_a_callback_for_a_case_not_closed_changes_nothing(closure: ServiceUnderTest) -> None:
    reopened = await closed_case(closure)
    await closure.deliver(callback(CallbackVerdict.UNSATISFIED), reopened, source="intake")
    await closure.emitted()
    await unchanged_by(closure, reopened, callback(CallbackVerdict.UNSATISFIED, note="again"))

    cancelled = await open_case(closure)
    await handlers.cancel(closure.ctx, principal(Role.SHIFT_LEAD), cancelled, "a duplicate")
    await closure.emitted()
    await unchanged_by(closure, cancelled, callback(CallbackVerdict.UNSATISFIED))

    await closure.deliver(callback(CallbackVerdict.UNSATISFIED), new_id(), source="intake")  # unknown here
    assert await closure.payloads() == []


async def test_a_duplicate_callback_event_reopens_once(closure: ServiceUnderTest) -> None:
    case_id = await closed_case(closure)
    event = Event.occurred(
        callback(CallbackVerdict.UNSATISFIED), subject=case_id, source="/citycase/intake", clock=closure.clock
    )

    await closure.deliver_events([event])
    await closure.deliver_events([event])

    assert (await closure.row(cases, case_id))["reopens"] == 1
    assert [type(payload) for payload in await closure.payloads()] == [CaseReopened]


async def test_a_city_without_integrations_never_reopens(service_under_test: ServiceFactory) -> None:
    closure = await service_under_test("closure")  # a context without integrations, as a city without the file
    await unchanged_by(closure, await closed_case(closure), callback(CallbackVerdict.UNSATISFIED))
