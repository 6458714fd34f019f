"""Deciding a report: the inspector's verification (核实), an operator's filing (立案) or
rejection (不予立案), and the refusals that leave everything as it was."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import pytest

from intake.domain import RejectionReason, ReportStatus
from intake.handlers import file_report, reject_report, verify_report
from intake.models import cases, reports
from shared.core.auth import Role
from shared.core.errors import IllegalTransition, NotFound, OutOfScope
from shared.core.ids import new_id
from shared.events.catalogue import CaseFiled, ReportRejected, ReportSource, ReportVerified
from tests.service.conftest import MONDAY_0900, ServiceUnderTest, hours, principal
from tests.service.intake.conftest import ORDINARY, inspector, send

OPERATOR = principal(Role.OPERATOR, "operator1")


async def unchanged(intake: ServiceUnderTest, report_id: UUID, before: dict[str, Any]) -> None:
    """The refused command wrote nothing and emitted nothing."""
    assert dict(await intake.row(reports, report_id)) == before
    assert await intake.rows(cases) == []
    assert await intake.emitted() == []


async def a_report_being_verified(intake: ServiceUnderTest) -> dict[str, Any]:
    row = await send(intake, ReportSource.HOTLINE, category=ORDINARY, reporter_id="hotline", external_ref="WO-7")
    await intake.emitted()
    intake.clock.advance(hours(1))
    return dict(row)


async def test_a_confirmed_verification_files_the_report(intake: ServiceUnderTest) -> None:
    report = await a_report_being_verified(intake)
    row = await verify_report(
        intake.ctx, inspector("insp-001"), report["id"], confirmed=True, note="seen it", photos=["a" * 64]
    )
    now = MONDAY_0900 + hours(1)
    assert (row["status"], row["case_number"]) == (ReportStatus.FILED, "2026-11-000001")
    assert (row["decided_by"], row["decided_at"]) == ("user-insp-001", now)
    category = intake.ctx.city.category(ORDINARY)
    assert row["filing_deadline"] == intake.ctx.deadline(MONDAY_0900, category, "filing").at
    case = await intake.row(cases, report["id"])
    assert (case["status"], case["source"], case["external_ref"], case["filed_at"]) == ("filed", "hotline", "WO-7", now)
    verified, filed = await intake.payloads()
    assert verified == ReportVerified(inspector_id="insp-001", confirmed=True, note="seen it", photos=["a" * 64])
    assert isinstance(filed, CaseFiled)
    assert (filed.filed_by, filed.source, filed.reported_at) == ("user-insp-001", ReportSource.HOTLINE, MONDAY_0900)
    assert filed.dispatch_deadline == intake.ctx.deadline(now, category, "dispatch").at


async def test_a_verification_that_finds_nothing_rejects_the_report(intake: ServiceUnderTest) -> None:
    report = await a_report_being_verified(intake)
    row = await verify_report(intake.ctx, inspector("insp-001"), report["id"], confirmed=False, note=None, photos=[])
    assert (row["status"], row["rejection_code"], row["rejection_reason"]) == (
        ReportStatus.REJECTED,
        "not_confirmed",
        "not found on site",
    )
    assert (row["decided_by"], row["case_number"]) == ("user-insp-001", None)
    assert await intake.rows(cases) == []
    assert await intake.payloads() == [
        ReportVerified(inspector_id="insp-001", confirmed=False),
        ReportRejected(reason_code="not_confirmed", reason="not found on site", rejected_by="user-insp-001"),
    ]


async def test_another_inspectors_task_is_out_of_scope(intake: ServiceUnderTest) -> None:
    report = await a_report_being_verified(intake)
    with pytest.raises(OutOfScope):
        await verify_report(intake.ctx, inspector("insp-003"), report["id"], confirmed=True, note=None, photos=[])
    await unchanged(intake, report["id"], report)


async def test_a_report_answers_one_verification_only(intake: ServiceUnderTest) -> None:
    report = await a_report_being_verified(intake)
    await verify_report(intake.ctx, inspector("insp-001"), report["id"], confirmed=False, note=None, photos=[])
    await intake.emitted()
    before = dict(await intake.row(reports, report["id"]))
    with pytest.raises(IllegalTransition) as error:
        await verify_report(intake.ctx, inspector("insp-001"), report["id"], confirmed=True, note=None, photos=[])
    assert error.value.details == {"action": "verify", "current_state": "rejected"}
    await unchanged(intake, report["id"], before)


@pytest.mark.parametrize("source", [ReportSource.VIDEO, ReportSource.PUBLIC])
async def test_an_operator_files_a_report_waiting_for_review_or_verification(
    intake: ServiceUnderTest, source: ReportSource
) -> None:
    report = await send(intake, source, reporter_id="camera-1" if source is ReportSource.VIDEO else None)
    await intake.emitted()
    row = await file_report(intake.ctx, OPERATOR, report["id"])
    assert (row["status"], row["decided_by"], row["case_number"]) == (ReportStatus.FILED, "operator1", "2026-11-000001")
    assert (await intake.row(cases, report["id"]))["status"] == "filed"
    (filed,) = await intake.payloads()
    assert isinstance(filed, CaseFiled)
    assert (filed.filed_by, filed.source) == ("operator1", source)


async def test_an_operator_rejects_a_report_not_yet_filed(intake: ServiceUnderTest) -> None:
    report = await send(intake, ReportSource.VIDEO, reporter_id="camera-1")
    await intake.emitted()
    row = await reject_report(intake.ctx, OPERATOR, report["id"], RejectionReason.OUT_OF_SCOPE, "private land")
    assert (row["status"], row["rejection_code"], row["rejection_reason"]) == (
        ReportStatus.REJECTED,
        "out_of_scope",
        "private land",
    )
    assert (row["decided_by"], row["decided_at"]) == ("operator1", MONDAY_0900)
    assert await intake.rows(cases) == []
    assert await intake.payloads() == [
        ReportRejected(reason_code="out_of_scope", reason="private land", rejected_by="operator1")
    ]


async def test_a_filed_report_can_be_neither_filed_again_nor_rejected(intake: ServiceUnderTest) -> None:
    report = dict(await send(intake, ReportSource.INSPECTOR))
    await intake.emitted()
    with pytest.raises(IllegalTransition) as error:
        await file_report(intake.ctx, OPERATOR, report["id"])
    assert error.value.details == {"action": "file", "current_state": "filed"}
    with pytest.raises(IllegalTransition) as error:
        await reject_report(intake.ctx, OPERATOR, report["id"], RejectionReason.INVALID, "no")
    assert error.value.details == {"action": "reject", "current_state": "filed"}
    assert dict(await intake.row(reports, report["id"])) == report
    assert len(await intake.rows(cases)) == 1
    assert await intake.emitted() == []


async def test_a_rejected_report_can_be_neither_filed_nor_rejected_again(intake: ServiceUnderTest) -> None:
    report = await send(intake, ReportSource.VIDEO, reporter_id="camera-1")
    await reject_report(intake.ctx, OPERATOR, report["id"], RejectionReason.INVALID, "blurry")
    await intake.emitted()
    before = dict(await intake.row(reports, report["id"]))
    with pytest.raises(IllegalTransition):
        await file_report(intake.ctx, OPERATOR, report["id"])
    with pytest.raises(IllegalTransition):
        await reject_report(intake.ctx, OPERATOR, report["id"], RejectionReason.INVALID, "again")
    await unchanged(intake, report["id"], before)


async def test_deciding_a_report_that_does_not_exist_is_not_found(intake: ServiceUnderTest) -> None:
    missing = new_id()
    with pytest.raises(NotFound):
        await file_report(intake.ctx, OPERATOR, missing)
    with pytest.raises(NotFound):
        await reject_report(intake.ctx, OPERATOR, missing, RejectionReason.INVALID, "no")
    with pytest.raises(NotFound):
        await verify_report(intake.ctx, inspector("insp-001"), missing, confirmed=True, note=None, photos=[])
    assert await intake.rows(reports) == []
    assert await intake.emitted() == []
