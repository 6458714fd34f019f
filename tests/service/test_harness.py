"""The service harness itself: a use case's rows and outbox events are what the tests read."""

from __future__ import annotations

from intake.handlers import NewReport, receive_report
from intake.models import reports
from shared.events.catalogue import CaseFiled, ReportReceived, ReportSource
from tests.service.conftest import ServiceFactory, point_in


async def test_the_harness_reads_rows_and_the_outbox(service_under_test: ServiceFactory) -> None:
    intake = await service_under_test("intake")
    lon, lat = point_in(intake.ctx.city)
    row, created = await receive_report(
        intake.ctx,
        NewReport(ReportSource.INSPECTOR, "02-05-01", "vendor", lon, lat, reporter_id="I-1"),
    )
    assert created
    assert [type(p) for p in await intake.payloads()] == [ReportReceived, CaseFiled]
    assert await intake.payloads() == []
    assert (await intake.row(reports, row["id"]))["status"] == "filed"
