"""Case numbers (案件编号): consecutive within the month, a number no filing used is handed out
again, a number a filing used never is."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from intake.domain import RejectionReason
from intake.handlers import file_report, reject_report, verify_report
from intake.models import case_number_counters
from intake.numbering import CaseNumbers
from shared.core.auth import Role
from shared.core.errors import IllegalTransition
from shared.events.catalogue import ReportSource
from tests.service.conftest import ServiceUnderTest, principal
from tests.service.intake.conftest import OTHER_CELL, inspector, send

OPERATOR = principal(Role.OPERATOR, "operator1")
CATEGORIES = ("01-01-04", "02-05-01", "01-01-01")  # different categories at one point: no duplicates


async def test_case_numbers_are_consecutive_within_the_month(intake: ServiceUnderTest) -> None:
    numbers = [(await send(intake, ReportSource.INSPECTOR, category=code))["case_number"] for code in CATEGORIES]
    assert numbers == ["2026-11-000001", "2026-11-000002", "2026-11-000003"]


async def test_numbers_are_reserved_in_blocks_by_one_case_numbers_per_service(intake: ServiceUnderTest) -> None:
    numbers = intake.ctx.resources.get(CaseNumbers)
    assert intake.ctx.resources.get(CaseNumbers) is numbers
    await send(intake, ReportSource.INSPECTOR)
    await send(intake, ReportSource.INSPECTOR, category="02-05-01")
    (counter,) = await intake.rows(case_number_counters)
    assert (counter["period"], counter["last"]) == ("2026-11", CaseNumbers.BLOCK)


async def test_a_number_a_refused_filing_kept_aside_is_released_and_reused(intake: ServiceUnderTest) -> None:
    first = await send(intake, ReportSource.INSPECTOR)
    with pytest.raises(IllegalTransition):
        await file_report(intake.ctx, OPERATOR, first["id"])
    following = await send(intake, ReportSource.INSPECTOR, category="02-05-01")
    assert (first["case_number"], following["case_number"]) == ("2026-11-000001", "2026-11-000002")


async def test_a_merged_report_or_a_resend_takes_no_number(intake: ServiceUnderTest) -> None:
    first = await send(intake, ReportSource.INSPECTOR, client_ref="r-1")
    # Caught at the insert by its client_ref, after a number was kept aside for it.
    resent = await send(intake, ReportSource.INSPECTOR, client_ref="r-1", resent=True)
    assert (resent["id"], resent["case_number"]) == (first["id"], first["case_number"])
    merged = await send(intake, ReportSource.INSPECTOR)
    assert merged["case_number"] is None
    following = await send(intake, ReportSource.INSPECTOR, cell=OTHER_CELL)
    assert (first["case_number"], following["case_number"]) == ("2026-11-000001", "2026-11-000002")


async def test_rejections_take_no_number(intake: ServiceUnderTest) -> None:
    video = await send(intake, ReportSource.VIDEO, reporter_id="camera-1")
    await reject_report(intake.ctx, OPERATOR, video["id"], RejectionReason.INVALID, "blurry")
    public = await send(intake, ReportSource.PUBLIC, cell=OTHER_CELL)
    await verify_report(intake.ctx, inspector("insp-003"), public["id"], confirmed=False, note=None, photos=[])
    filed = await send(intake, ReportSource.INSPECTOR, category="02-05-01")
    assert filed["case_number"] == "2026-11-000001"


async def test_the_month_of_a_number_is_the_citys(intake: ServiceUnderTest) -> None:
    intake.clock.set(datetime(2026, 11, 30, 16, 30, tzinfo=UTC))  # 1 December, 00:30 in Shanghai
    row = await send(intake, ReportSource.INSPECTOR)
    assert row["case_number"] == "2026-12-000001"
