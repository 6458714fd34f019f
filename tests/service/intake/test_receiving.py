"""Receiving a report: where it starts by source, the refusals, resends and duplicates."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from intake.domain import ReportStatus
from intake.handlers import NewReport, receive_report
from intake.models import cases, reports
from shared.core.errors import IdempotencyConflict, InvalidInput
from shared.events.catalogue import (
    CaseClosed,
    CaseFiled,
    ReportMerged,
    ReportReceived,
    ReportSource,
    VerificationRequested,
)
from tests.service.conftest import MONDAY_0900, ServiceUnderTest, point_in
from tests.service.intake.conftest import CELL, ORDINARY, URGENT, send

TEN_MINUTES = timedelta(minutes=10)


async def test_an_inspector_report_is_filed_at_once(intake: ServiceUnderTest) -> None:
    row = await send(intake, ReportSource.INSPECTOR)
    assert row["status"] == ReportStatus.FILED
    assert re.fullmatch(r"\d{4}-\d{2}-\d{6}", row["case_number"])
    assert row["case_number"] == "2026-11-000001"
    assert (row["decided_by"], row["decided_at"]) == ("insp-001", MONDAY_0900)
    assert row["filing_deadline"] == MONDAY_0900 + TEN_MINUTES
    case = await intake.row(cases, row["id"])
    assert (case["status"], case["case_number"], case["source"]) == ("filed", row["case_number"], "inspector")
    assert (case["category_code"], case["cell_id"], case["department_id"]) == (URGENT, CELL, None)
    assert (case["reported_at"], case["filed_at"]) == (MONDAY_0900, MONDAY_0900)
    events = await intake.emitted()
    assert [type(event.data) for event in events] == [ReportReceived, CaseFiled]
    assert {event.subject for event in events} == {str(row["id"])}
    received, filed = (event.data for event in events)
    assert isinstance(received, ReportReceived)
    assert isinstance(filed, CaseFiled)
    assert (received.source, received.place.cell_id, received.reporter_id) == (ReportSource.INSPECTOR, CELL, "insp-001")
    assert (filed.case_number, filed.filed_by, filed.inspector_id) == (row["case_number"], "insp-001", "insp-001")
    assert (filed.filing_deadline, filed.dispatch_deadline) == (MONDAY_0900 + TEN_MINUTES, MONDAY_0900 + TEN_MINUTES)
    assert filed.urgent
    assert not filed.self_handled


async def test_a_problem_an_inspector_handled_on_the_spot_is_filed_as_such(intake: ServiceUnderTest) -> None:
    row = await send(intake, ReportSource.INSPECTOR, self_handled=True)
    assert (row["status"], row["self_handled"]) == (ReportStatus.FILED, True)
    filed = (await intake.payloads())[-1]
    assert isinstance(filed, CaseFiled)
    assert filed.self_handled


@pytest.mark.parametrize("source", [ReportSource.HOTLINE, ReportSource.PUBLIC])
async def test_hotline_and_public_reports_go_to_the_cells_inspector_first(
    intake: ServiceUnderTest, source: ReportSource
) -> None:
    reporter = "hotline" if source is ReportSource.HOTLINE else None
    row = await send(intake, source, category=ORDINARY, reporter_id=reporter, external_ref="WO-1")
    due = intake.ctx.deadline(MONDAY_0900, intake.ctx.city.category(ORDINARY), "filing").at
    assert (row["status"], row["verifier_id"], row["verification_due_at"]) == (ReportStatus.VERIFYING, "insp-001", due)
    assert row["case_number"] is None
    assert await intake.rows(cases) == []
    received, requested = await intake.payloads()
    assert isinstance(received, ReportReceived)
    assert received.source is source
    assert requested == VerificationRequested(inspector_id="insp-001", due_at=due)


async def test_a_verification_of_an_urgent_problem_is_due_in_calendar_minutes(intake: ServiceUnderTest) -> None:
    row = await send(intake, ReportSource.PUBLIC)
    assert row["verification_due_at"] == MONDAY_0900 + TEN_MINUTES


async def test_a_video_detection_waits_for_an_operator(intake: ServiceUnderTest) -> None:
    row = await send(intake, ReportSource.VIDEO, reporter_id="camera-7")
    assert (row["status"], row["verifier_id"], row["case_number"]) == (ReportStatus.AWAITING_REVIEW, None, None)
    assert [type(p) for p in await intake.payloads()] == [ReportReceived]
    assert await intake.rows(cases) == []


async def refused(intake: ServiceUnderTest, new: NewReport) -> InvalidInput:
    with pytest.raises(InvalidInput) as error:
        await receive_report(intake.ctx, new)
    assert await intake.rows(reports) == []
    assert await intake.rows(cases) == []
    assert await intake.emitted() == []
    return error.value


@pytest.mark.parametrize("source", [ReportSource.HOTLINE, ReportSource.PUBLIC, ReportSource.VIDEO])
async def test_only_an_inspector_may_report_a_problem_handled_on_the_spot(
    intake: ServiceUnderTest, source: ReportSource
) -> None:
    lon, lat = point_in(intake.ctx.city, CELL)
    await refused(intake, NewReport(source, URGENT, "fixed it", lon, lat, reporter_id="x", self_handled=True))


async def test_a_report_outside_the_grid_is_refused_and_leaves_nothing(intake: ServiceUnderTest) -> None:
    error = await refused(intake, NewReport(ReportSource.INSPECTOR, URGENT, "far away", 0.5, 0.5, reporter_id="i"))
    assert error.details == {"lon": 0.5, "lat": 0.5, "city": intake.ctx.city.name}


async def test_a_report_of_an_unknown_category_is_refused_and_leaves_nothing(intake: ServiceUnderTest) -> None:
    lon, lat = point_in(intake.ctx.city, CELL)
    error = await refused(intake, NewReport(ReportSource.INSPECTOR, "99-99-99", "what", lon, lat, reporter_id="i"))
    assert error.details == {"category_code": "99-99-99"}


async def test_a_resend_is_answered_with_the_first_report(intake: ServiceUnderTest) -> None:
    first = await send(intake, ReportSource.INSPECTOR, client_ref="phone-1")
    await intake.emitted()
    lon, lat = point_in(intake.ctx.city, CELL)
    again = NewReport(
        ReportSource.INSPECTOR, URGENT, "a problem", lon, lat, reporter_id="insp-001", client_ref="phone-1"
    )
    row, created = await receive_report(intake.ctx, again)
    assert not created
    assert row["id"] == first["id"]
    assert row["case_number"] == first["case_number"]
    assert len(await intake.rows(reports)) == 1
    assert len(await intake.rows(cases)) == 1
    assert await intake.emitted() == []


async def test_a_reused_key_with_a_different_report_is_a_conflict_that_changes_nothing(
    intake: ServiceUnderTest,
) -> None:
    await send(intake, ReportSource.INSPECTOR, client_ref="phone-1")
    await intake.emitted()
    lon, lat = point_in(intake.ctx.city, CELL)
    changed = NewReport(
        ReportSource.INSPECTOR, URGENT, "something else", lon, lat, reporter_id="insp-001", client_ref="phone-1"
    )
    with pytest.raises(IdempotencyConflict) as refused_change:
        await receive_report(intake.ctx, changed)
    assert refused_change.value.details == {"differing_fields": ["description"]}
    assert len(await intake.rows(reports)) == 1
    assert await intake.emitted() == []


async def test_a_citizen_reusing_anothers_key_never_receives_that_report(intake: ServiceUnderTest) -> None:
    """Anonymous reports share one key space: a key is a resend only with the same report."""
    first = await send(intake, ReportSource.PUBLIC, category=ORDINARY, client_ref="app-1")
    lon, lat = point_in(intake.ctx.city, CELL)
    guess = NewReport(ReportSource.PUBLIC, ORDINARY, "my own complaint", lon, lat, reporter_id=None, client_ref="app-1")
    with pytest.raises(IdempotencyConflict):
        await receive_report(intake.ctx, guess)
    resend = NewReport(
        ReportSource.PUBLIC, ORDINARY, first["description"], lon, lat, reporter_id=None, client_ref="app-1"
    )
    row, created = await receive_report(intake.ctx, resend)
    assert (row["id"], created) == (first["id"], False)


async def test_the_same_client_ref_from_another_reporter_is_another_report(intake: ServiceUnderTest) -> None:
    first = await send(intake, ReportSource.INSPECTOR, client_ref="phone-1")
    other = await send(intake, ReportSource.INSPECTOR, reporter_id="insp-009", client_ref="phone-1")
    assert other["id"] != first["id"]


async def test_a_report_near_an_open_case_of_its_category_is_merged_into_it(intake: ServiceUnderTest) -> None:
    case = await send(intake, ReportSource.INSPECTOR)
    await intake.emitted()
    duplicate = await send(intake, ReportSource.HOTLINE, reporter_id="hotline")
    assert (duplicate["status"], duplicate["merged_into"]) == (ReportStatus.MERGED, case["id"])
    assert (duplicate["decided_at"], duplicate["case_number"], duplicate["verifier_id"]) == (MONDAY_0900, None, None)
    events = await intake.emitted()
    assert [type(event.data) for event in events] == [ReportReceived, ReportMerged]
    assert events[1].data == ReportMerged(into_case_id=case["id"], distance_m=0.0)
    assert events[1].subject == str(duplicate["id"])
    assert len(await intake.rows(cases)) == 1


async def test_an_inspector_duplicate_is_merged_too_unless_handled_on_the_spot(intake: ServiceUnderTest) -> None:
    case = await send(intake, ReportSource.INSPECTOR)
    merged = await send(intake, ReportSource.INSPECTOR)
    assert (merged["status"], merged["merged_into"], merged["case_number"]) == (ReportStatus.MERGED, case["id"], None)
    handled = await send(intake, ReportSource.INSPECTOR, self_handled=True)
    assert (handled["status"], handled["merged_into"]) == (ReportStatus.FILED, None)


async def test_a_report_of_another_category_is_not_a_duplicate(intake: ServiceUnderTest) -> None:
    await send(intake, ReportSource.INSPECTOR)
    other_category = await send(intake, ReportSource.PUBLIC, category=ORDINARY)
    assert other_category["status"] == ReportStatus.VERIFYING


async def test_a_report_after_the_window_is_not_a_duplicate(intake: ServiceUnderTest) -> None:
    await send(intake, ReportSource.INSPECTOR)
    intake.clock.advance(timedelta(hours=intake.ctx.settings.duplicate_window_hours))
    within = await send(intake, ReportSource.PUBLIC)
    assert within["status"] == ReportStatus.MERGED
    intake.clock.advance(timedelta(seconds=1))
    too_late = await send(intake, ReportSource.PUBLIC)
    assert too_late["status"] == ReportStatus.VERIFYING


async def test_a_closed_case_takes_no_more_duplicates(intake: ServiceUnderTest) -> None:
    case = await send(intake, ReportSource.INSPECTOR)
    await intake.deliver(CaseClosed(closed_by="lead", on_time=True), case["id"], source="closure")
    after_closing = await send(intake, ReportSource.PUBLIC)
    assert after_closing["status"] == ReportStatus.VERIFYING
