"""Every transition of intake's lifecycle, legal and illegal, as its domain decides it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from intake import domain as intake
from shared.core.errors import IllegalTransition
from shared.events.catalogue import ReportSource

T0 = datetime(2026, 11, 16, 1, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("source", "status"),
    [
        (ReportSource.INSPECTOR, intake.ReportStatus.FILED),
        (ReportSource.HOTLINE, intake.ReportStatus.VERIFYING),
        (ReportSource.PUBLIC, intake.ReportStatus.VERIFYING),
        (ReportSource.VIDEO, intake.ReportStatus.AWAITING_REVIEW),
    ],
)
def test_where_a_report_starts_depends_on_who_sent_it(source: ReportSource, status: intake.ReportStatus) -> None:
    assert intake.initial_status(source) is status


@pytest.mark.parametrize("status", list(intake.ReportStatus))
def test_only_open_reports_can_be_filed_or_rejected(status: intake.ReportStatus) -> None:
    open_ = status in (intake.ReportStatus.AWAITING_REVIEW, intake.ReportStatus.VERIFYING)
    for check in (intake.check_can_file, intake.check_can_reject):
        if open_:
            check(status)
        else:
            with pytest.raises(IllegalTransition) as error:
                check(status)
            assert error.value.details == {"action": check.__name__.removeprefix("check_can_"), "current_state": status}


@pytest.mark.parametrize("status", list(intake.ReportStatus))
def test_only_a_report_being_verified_takes_a_verification(status: intake.ReportStatus) -> None:
    if status is intake.ReportStatus.VERIFYING:
        intake.check_can_verify(status)
    else:
        with pytest.raises(IllegalTransition):
            intake.check_can_verify(status)


def test_duplicates_are_the_nearest_open_case_of_the_category_within_radius_and_window() -> None:
    rule = intake.DuplicateRule(radius_m=50, window=timedelta(hours=72))
    lon, lat = 122.2, 30.0
    metre = 1 / 111_320
    near = intake.OpenCase("near", "01-01-04", lon, lat + 20 * metre, T0)
    nearer = intake.OpenCase("nearer", "01-01-04", lon, lat + 10 * metre, T0)
    other_category = intake.OpenCase("other", "02-01-01", lon, lat, T0)
    too_far = intake.OpenCase("far", "01-01-04", lon, lat + 60 * metre, T0)
    too_old = intake.OpenCase("old", "01-01-04", lon, lat, T0 - timedelta(hours=73))
    found = rule.find("01-01-04", lon, lat, T0, [near, nearer, other_category, too_far, too_old])
    assert found is not None
    assert found[0] is nearer
    assert found[1] == pytest.approx(10, abs=0.1)
    assert rule.find("01-01-04", lon, lat, T0, [other_category, too_far, too_old]) is None


def test_case_numbers_rank_cases_within_their_month() -> None:
    assert intake.case_number("2026-11", 123) == "2026-11-000123"


@pytest.mark.parametrize("status", list(intake.CaseStatus))
def test_a_closed_or_cancelled_case_file_stays_so_whatever_late_event_arrives(status: intake.CaseStatus) -> None:
    ended = status in (intake.CaseStatus.CLOSED, intake.CaseStatus.CANCELLED)
    assert intake.status_follows_events(status) is not ended
