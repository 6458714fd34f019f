"""What intake's API reads, and who may see what."""

from __future__ import annotations

from datetime import timedelta

import pytest

from intake import queries
from intake.domain import RejectionReason, ReportStatus
from intake.handlers import reject_report
from shared.city.model import City
from shared.core.auth import Role
from shared.core.errors import NotFound, OutOfScope
from shared.core.ids import new_id
from shared.events.catalogue import CaseDispatched, ReportSource
from shared.integration.endpoints import Integrations
from tests.service.conftest import MONDAY_0900, ServiceUnderTest, hours, principal
from tests.service.intake.conftest import OTHER_CELL, ids, inspector, send

STAFF = [principal(role) for role in (Role.OPERATOR, Role.DISPATCHER, Role.SHIFT_LEAD)]
HOTLINE = principal(Role.HOTLINE, "hotline")
NONE = Integrations.none()  # a city without integrations.yaml
DEPT = "bureau-urban"


async def test_an_inspector_sees_its_open_verification_tasks_oldest_first(intake: ServiceUnderTest) -> None:
    first = await send(intake, ReportSource.PUBLIC)
    intake.clock.advance(hours(1))
    second = await send(intake, ReportSource.HOTLINE, category="02-05-01", reporter_id="hotline")
    elsewhere = await send(intake, ReportSource.PUBLIC, cell=OTHER_CELL)
    await reject_report(intake.ctx, STAFF[0], elsewhere["id"], RejectionReason.INVALID, "no")
    tasks = (await queries.verification_tasks(intake.ctx, inspector("insp-001"), 100)).rows
    assert [task["id"] for task in tasks] == [first["id"], second["id"]]
    assert (await queries.verification_tasks(intake.ctx, inspector("insp-003"), 100)).rows == []


async def test_the_work_queue_lists_reports_by_status_oldest_first(intake: ServiceUnderTest) -> None:
    videos = []
    for n in range(3):
        videos.append(await send(intake, ReportSource.VIDEO, reporter_id=f"camera-{n}", cell=_cells(intake)[n]))
        intake.clock.advance(timedelta(minutes=1))
    await send(intake, ReportSource.PUBLIC)
    queue = (await queries.reports_by_status(intake.ctx, ReportStatus.AWAITING_REVIEW, 2)).rows
    assert [row["id"] for row in queue] == [videos[0]["id"], videos[1]["id"]]
    assert len((await queries.reports_by_status(intake.ctx, ReportStatus.VERIFYING, 100)).rows) == 1
    assert (await queries.reports_by_status(intake.ctx, ReportStatus.MERGED, 100)).rows == []


def _cells(intake: ServiceUnderTest) -> list[str]:
    return [cell.id for cell in intake.ctx.city.cells[:3]]


async def test_staff_see_every_report_others_only_their_own(intake: ServiceUnderTest) -> None:
    own = await send(intake, ReportSource.INSPECTOR)
    ordered = await send(intake, ReportSource.HOTLINE, cell=OTHER_CELL, reporter_id="hotline")
    public = await send(intake, ReportSource.PUBLIC, category="02-05-01")
    for report in (own, ordered, public):
        for staff in STAFF:
            assert (await queries.visible_report(intake.ctx, report["id"], staff))["id"] == report["id"]
    assert (await queries.visible_report(intake.ctx, own["id"], inspector("insp-001")))["id"] == own["id"]
    assert (await queries.visible_report(intake.ctx, ordered["id"], HOTLINE))["id"] == ordered["id"]
    # The inspector who must verify the hotline's report sees it; another inspector does not.
    assert ordered["verifier_id"] == "insp-003"
    assert (await queries.visible_report(intake.ctx, ordered["id"], inspector("insp-003")))["id"] == ordered["id"]
    for report, caller in ((own, inspector("insp-003")), (own, HOTLINE), (ordered, inspector("insp-001"))):
        with pytest.raises(NotFound):
            await queries.visible_report(intake.ctx, report["id"], caller)
    assert public["verifier_id"] == "insp-001"  # who verifies it on site reads it
    for caller in (inspector("insp-003"), HOTLINE, principal(Role.DEPARTMENT, department_id=DEPT)):
        with pytest.raises(NotFound):
            await queries.visible_report(intake.ctx, public["id"], caller)
    with pytest.raises(NotFound):
        await queries.report(intake.ctx, new_id())


async def test_a_department_sees_its_cases_an_inspector_those_in_its_cells(intake: ServiceUnderTest) -> None:
    case_id = (await send(intake, ReportSource.INSPECTOR))["id"]
    dispatched = CaseDispatched(
        department_id=DEPT, dispatched_by="d", handling_deadline=MONDAY_0900 + hours(8), attempt=1
    )
    await intake.deliver(dispatched, case_id, source="dispatch")
    allowed = [*STAFF, principal(Role.DEPARTMENT, department_id=DEPT), inspector("insp-001")]
    for caller in allowed:
        assert (await queries.visible_case(intake.ctx, case_id, caller))["department_id"] == DEPT
    for caller in (principal(Role.DEPARTMENT, department_id="bureau-housing"), inspector("insp-003")):
        with pytest.raises(OutOfScope):
            await queries.visible_case(intake.ctx, case_id, caller)
        with pytest.raises(OutOfScope):
            await queries.visible_timeline(intake.ctx, case_id, caller)
    with pytest.raises(NotFound):
        await queries.visible_case(intake.ctx, new_id(), STAFF[0])


async def test_a_case_not_yet_dispatched_is_no_departments(intake: ServiceUnderTest) -> None:
    case_id = (await send(intake, ReportSource.INSPECTOR))["id"]
    with pytest.raises(OutOfScope):
        await queries.visible_case(intake.ctx, case_id, principal(Role.DEPARTMENT, department_id=DEPT))


async def test_staff_see_the_timeline_of_a_report_that_never_became_a_case(intake: ServiceUnderTest) -> None:
    report = await send(intake, ReportSource.VIDEO, reporter_id="camera-1")
    await reject_report(intake.ctx, STAFF[0], report["id"], RejectionReason.INVALID, "blurry")
    await intake.deliver_events(await intake.emitted())
    steps = await queries.visible_timeline(intake.ctx, report["id"], STAFF[1])
    assert [step["event_type"] for step in steps] == ["report.received", "report.rejected"]
    assert steps[1]["reason"] == "blurry"
    with pytest.raises(NotFound):
        await queries.visible_timeline(intake.ctx, report["id"], inspector("insp-001"))
    with pytest.raises(NotFound):
        await queries.visible_timeline(intake.ctx, new_id(), STAFF[0])


async def test_the_timeline_is_in_the_order_things_happened(intake: ServiceUnderTest) -> None:
    case_id = (await send(intake, ReportSource.INSPECTOR))["id"]
    await intake.deliver_events(await intake.emitted())
    steps = await queries.visible_timeline(intake.ctx, case_id, inspector("insp-001"))
    assert [step["event_type"] for step in steps] == ["report.received", "case.filed"]


async def test_the_export_reads_every_report_in_id_order_page_by_page(intake: ServiceUnderTest) -> None:
    sent = [await send(intake, ReportSource.VIDEO, reporter_id=f"camera-{n}") for n in range(5)]
    first = await queries.export_page(intake.ctx, None, 3)
    rest = await queries.export_page(intake.ctx, first[-1]["id"], 3)
    assert [row["id"] for row in [*first, *rest]] == sorted(ids(sent))
    assert await queries.export_page(intake.ctx, rest[-1]["id"], 3) == []


def test_the_visibility_rules_by_role(city: City) -> None:
    row = {"reporter_id": "insp-001"}
    assert queries.may_see_report(inspector("insp-001"), row, NONE)
    assert not queries.may_see_report(inspector("insp-002"), row, NONE)
    assert all(queries.is_staff(caller) for caller in STAFF)
    assert not queries.is_staff(HOTLINE)
    case = {"department_id": DEPT, "cell_id": OTHER_CELL, "reporter_id": "hotline"}
    for caller in [*STAFF, principal(Role.DEPARTMENT, department_id=DEPT), inspector("insp-003"), HOTLINE]:
        queries.ensure_may_see_case(city, caller, case, NONE)
    strangers = (
        principal(Role.DEPARTMENT, department_id="bureau-housing"),
        principal(Role.DEPARTMENT),  # an account of no department holds no case
        inspector("insp-001"),
        principal(Role.HOTLINE, "hotline-12319"),
        principal(Role.VIDEO, "camera-1"),
    )
    for caller in strangers:
        with pytest.raises(OutOfScope):
            queries.ensure_may_see_case(city, caller, case, NONE)


def test_a_citizens_public_report_is_for_staff_only() -> None:
    """A public report has no reporter: an account with no inspector id (a system, a department)
    once matched it as its own through ``None == None``."""
    public = {"reporter_id": None, "verifier_id": "insp-001"}
    for caller in (HOTLINE, principal(Role.VIDEO, "camera-1"), principal(Role.DEPARTMENT, department_id=DEPT)):
        assert not queries.may_see_report(caller, public, NONE)
    assert queries.may_see_report(inspector("insp-001"), public, NONE)  # it must verify it
    assert not queries.may_see_report(inspector("insp-002"), public, NONE)
    assert all(queries.may_see_report(staff, public, NONE) for staff in STAFF)


async def test_a_system_account_reads_only_the_cases_it_reported(intake: ServiceUnderTest) -> None:
    ordered = await send(intake, ReportSource.HOTLINE, cell=OTHER_CELL, reporter_id="hotline")
    own = await send(intake, ReportSource.INSPECTOR)
    await queries.visible_report(intake.ctx, ordered["id"], HOTLINE)
    for report in (ordered, own):
        for stranger in (principal(Role.VIDEO, "camera-1"), principal(Role.DEPARTMENT, department_id=DEPT)):
            with pytest.raises(NotFound):
                await queries.visible_report(intake.ctx, report["id"], stranger)
    with pytest.raises(OutOfScope):
        await queries.visible_case(intake.ctx, own["id"], HOTLINE)
    with pytest.raises(OutOfScope):
        await queries.visible_timeline(intake.ctx, own["id"], HOTLINE)
