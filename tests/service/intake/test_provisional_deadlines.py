"""Intake at year end: a verification due in a year the State Council has not published is
provisional until the official year is loaded, then recomputed and told; the case file shows the
handling deadline dispatch recomputed.
"""

from __future__ import annotations

from datetime import UTC, datetime

from intake import handlers
from intake.models import cases
from shared.events.catalogue import (
    CaseDispatched,
    DeadlineKind,
    DeadlineRecomputed,
    ReportSource,
    VerificationRequested,
)
from tests.service.conftest import NOTICE_2027, ServiceFactory, with_own_calendar
from tests.service.intake.conftest import ORDINARY, inspector, send

EVENING = datetime(2026, 12, 31, 9, 50, tzinfo=UTC)  # Thursday 31 December 2026, 17:50 in the city
# 30 working minutes to verify: 10 on Thursday; New Year's Day and the weekend off; 20 on Monday.
PROVISIONAL_DUE = datetime(2027, 1, 4, 0, 50, tzinfo=UTC)
OFFICIAL_DUE = datetime(2027, 1, 5, 0, 50, tzinfo=UTC)  # NOTICE_2027 gives Monday off: Tuesday


async def test_a_verification_due_in_the_provisional_year_is_recomputed_on_the_official_one(
    service_under_test: ServiceFactory,
) -> None:
    intake = with_own_calendar(await service_under_test("intake"))
    intake.clock.set(EVENING)
    report = await send(intake, ReportSource.HOTLINE, category=ORDINARY, reporter_id="hotline", external_ref="WO-1")
    assert (report["verification_due_at"], report["verification_due_provisional"]) == (PROVISIONAL_DUE, True)
    requested = [payload for payload in await intake.payloads() if isinstance(payload, VerificationRequested)]
    assert [(p.due_at, p.provisional) for p in requested] == [(PROVISIONAL_DUE, True)]

    assert await handlers.recompute_provisional_deadlines(intake.ctx) == 0
    intake.ctx.calendar.adopt(NOTICE_2027)
    assert await handlers.recompute_provisional_deadlines(intake.ctx) == 1

    (event,) = await intake.emitted()
    assert event.subject == str(report["id"])
    assert event.data == DeadlineRecomputed(
        kind=DeadlineKind.VERIFICATION, deadline=OFFICIAL_DUE, provisional=False, previous=PROVISIONAL_DUE
    )
    # Answered, the report is filed: its verification is no deadline any more.
    filed = await handlers.verify_report(
        intake.ctx, inspector(report["verifier_id"]), report["id"], confirmed=True, note=None, photos=[]
    )
    assert (filed["verification_due_at"], filed["verification_due_provisional"]) == (OFFICIAL_DUE, False)
    assert await handlers.recompute_provisional_deadlines(intake.ctx) == 0


async def test_the_case_file_shows_the_handling_deadline_and_whether_it_is_provisional(
    service_under_test: ServiceFactory,
) -> None:
    intake = await service_under_test("intake")
    case_id = (await send(intake, ReportSource.INSPECTOR, category=ORDINARY))["id"]
    provisional, official = datetime(2027, 1, 5, 1, 0, tzinfo=UTC), datetime(2027, 1, 6, 1, 0, tzinfo=UTC)
    dispatched = CaseDispatched(
        department_id="dept-1", dispatched_by="d", handling_deadline=provisional, attempt=1, provisional=True
    )
    await intake.deliver(dispatched, case_id, source="dispatch")
    row = await intake.row(cases, case_id)
    assert (row["handling_deadline"], row["handling_deadline_provisional"]) == (provisional, True)

    recomputed = DeadlineRecomputed(
        kind=DeadlineKind.HANDLING, deadline=official, provisional=False, previous=provisional
    )
    await intake.deliver(recomputed, case_id, source="dispatch")
    row = await intake.row(cases, case_id)
    assert (row["handling_deadline"], row["handling_deadline_provisional"]) == (official, False)
