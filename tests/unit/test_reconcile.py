"""The batch recount of the indicators: hand-made records in, counters out (no I/O), then the
comparison with the stream's counters and the command's reading of the exports.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import httpx
import jwt
import pytest

from assessment import domain as assessment
from assessment.domain import Attribution, CaseState
from services.tools.cli import main
from services.tools.reconcile import (
    COUNTERS,
    AssignmentLine,
    CaseRecords,
    CityFacts,
    ClosureLine,
    CounterRow,
    Counters,
    DispatchLine,
    Endpoints,
    HandlingLine,
    ReconcileError,
    ReportLine,
    compare,
    reconcile,
    recount,
    recount_token,
)
from shared.core.clock import SIMULATION_CLOCK_FILE, FileClock
from shared.core.ids import new_id
from shared.core.settings import Mode, Settings
from shared.events.catalogue import (
    CallbackRecorded,
    CallbackVerdict,
    CaseCancelled,
    CaseClosed,
    CaseDispatched,
    CaseFiled,
    CaseHandled,
    CaseReopened,
    CategoryFamily,
    CheckPassed,
    CheckRequested,
    DeadlineKind,
    DeadlineMissed,
    EventPayload,
    GeoPoint,
    GridPlace,
    ReportReceived,
    ReportSource,
)
from shared.events.envelope import Event

CITY = CityFacts(
    timezone=ZoneInfo("Asia/Shanghai"),
    inspectors={"c1": "insp-1", "c2": "insp-2"},
    families={"02-05-01": "event", "01-01-04": "component"},
)
# Wednesday 18 November 2026, 10:00 in the city.
T = datetime(2026, 11, 18, 2, 0, tzinfo=UTC)
DAY, WEEK, MONTH = ("day", "2026-11-18"), ("week", "2026-11-16"), ("month", "2026-11-01")
PERIODS = (DAY, WEEK, MONTH)
PLACE_SCOPES = [
    ("city", "city"),
    ("district", "d1"),
    ("street", "s1"),
    ("community", "m1"),
    ("cell", "c1"),
    ("category", "02-05-01"),
    ("family", "event"),
    ("source", "inspector"),
    ("inspector", "insp-1"),
]


def report(**overrides: Any) -> ReportLine:
    """An inspector's street-vending report in cell c1 at T, filed a minute later (on time)."""
    fields: dict[str, Any] = {
        "id": new_id(),
        "source": "inspector",
        "category_code": "02-05-01",
        "cell_id": "c1",
        "community_id": "m1",
        "street_id": "s1",
        "district_id": "d1",
        "received_at": T,
        "filed_at": T + timedelta(minutes=1),
        "filing_deadline": T + timedelta(minutes=30),
    }
    return ReportLine(**(fields | overrides))


def dispatched(case_id: UUID, *departments: str, returned: int = 0, **overrides: Any) -> DispatchLine:
    """Dispatched to each department in turn, a minute apart; the first ``returned`` attempts returned."""
    attempts = tuple(
        AssignmentLine(
            attempt=n + 1,
            department_id=department,
            dispatched_at=T + timedelta(minutes=2 + n),
            returned_at=T + timedelta(minutes=2 + n, seconds=30) if n < returned else None,
        )
        for n, department in enumerate(departments)
    )
    fields: dict[str, Any] = {"id": case_id, "dispatch_deadline": T + timedelta(minutes=31), "assignments": attempts}
    return DispatchLine(**(fields | overrides))


def closure(case_id: UUID, status: str = "open", **overrides: Any) -> ClosureLine:
    return ClosureLine(id=case_id, status=status, **overrides)


def handled(case_id: UUID) -> HandlingLine:
    return HandlingLine(id=case_id, first_handled_at=T + timedelta(hours=1))


def only(counters: Counters, scopes: list[tuple[str, str]], expected: Mapping[str, int]) -> None:
    """Each of ``scopes`` holds exactly ``expected`` in every period of T."""
    for scope in scopes:
        for period in PERIODS:
            assert counters.values((*scope, *period)) == expected, (scope, period)


def departments(counters: Counters) -> set[str]:
    return {key[1] for key in counters.row_keys() if key[0] == "department"}


def test_a_report_rejected_merged_or_pending_counts_as_a_report_only() -> None:
    counters = recount([CaseRecords(report(filed_at=None, filing_deadline=None))], CITY)
    only(counters, PLACE_SCOPES, {"reports": 1})
    assert len(counters) == len(PLACE_SCOPES) * len(PERIODS)


def test_a_cancelled_case_keeps_only_its_report_and_its_cancellation() -> None:
    case = report()
    records = CaseRecords(
        case,
        dispatched(case.id, "office-1", deadline_missed_at=T + timedelta(hours=5)),
        handled(case.id),
        closure(case.id, "cancelled", checks_requested=1, checks_on_time=1),
    )
    counters = recount([records], CITY)
    only(counters, PLACE_SCOPES, {"reports": 1, "cancelled": 1})
    assert departments(counters) == set()  # a void case counts against no department


def test_a_self_handled_case_is_filed_and_closed_on_time_never_dispatched() -> None:
    case = report(filed_at=T, filing_deadline=T + timedelta(minutes=30))
    records = CaseRecords(case, None, HandlingLine(id=case.id), closure(case.id, "closed", on_time=True))
    counters = recount([records], CITY)
    only(counters, PLACE_SCOPES, {"reports": 1, "filed": 1, "filed_on_time": 1, "closed": 1, "closed_on_time": 1})
    assert departments(counters) == set()


def test_returns_and_dispatches_go_to_each_attempts_department_the_case_to_the_current_one() -> None:
    case = report()
    records = CaseRecords(
        case,
        dispatched(case.id, "office-1", "sanitation", returned=1),
        handled(case.id),
        closure(case.id, "checking", checks_requested=1),
    )
    counters = recount([records], CITY)
    per_case = {"handled": 1, "checks_requested": 1}
    only(
        counters,
        PLACE_SCOPES,
        {
            "reports": 1,
            "filed": 1,
            "filed_on_time": 1,
            "cases_dispatched": 1,
            "dispatched_on_time": 1,
            "dispatches": 2,
            "returns": 1,
            **per_case,
        },
    )
    only(counters, [("department", "office-1")], {"dispatches": 1, "returns": 1})
    only(counters, [("department", "sanitation")], {"dispatches": 1, **per_case})


def test_a_case_whose_latest_dispatch_was_returned_has_no_department() -> None:
    case = report()
    counters = recount([CaseRecords(case, dispatched(case.id, "office-1", returned=1), None, closure(case.id))], CITY)
    only(counters, [("department", "office-1")], {"dispatches": 1, "returns": 1})
    assert departments(counters) == {"office-1"}


def test_a_case_moved_to_another_department_counts_a_dispatch_to_each_and_no_return() -> None:
    case = report()
    counters = recount([CaseRecords(case, dispatched(case.id, "office-1", "co-power"), None, closure(case.id))], CITY)
    only(counters, [("department", "office-1")], {"dispatches": 1})
    only(counters, [("department", "co-power")], {"dispatches": 1})


def test_an_overdue_open_case_and_a_case_closed_late() -> None:
    overdue, late = report(), report()
    missed = T + timedelta(hours=4)
    counters = recount(
        [
            CaseRecords(
                overdue, dispatched(overdue.id, "co-power", deadline_missed_at=missed), None, closure(overdue.id)
            ),
            # The timer reported this one missed too, but it closed: closure wins over overdue.
            CaseRecords(
                late,
                dispatched(late.id, "co-power", deadline_missed_at=missed),
                handled(late.id),
                closure(late.id, "closed", on_time=False, checks_requested=1, checks=1, checks_on_time=1),
            ),
        ],
        CITY,
    )
    only(
        counters,
        [("department", "co-power")],
        {
            "dispatches": 2,
            "handled": 1,
            "checks_requested": 1,
            "checks_due": 1,
            "checks_on_time": 1,
            "closed": 1,
            "overdue_open": 1,
        },
    )


def test_checks_on_time_and_late_and_rework() -> None:
    case = report()
    records = CaseRecords(
        case,
        dispatched(case.id, "office-1"),
        handled(case.id),
        closure(case.id, "closed", on_time=True, checks_requested=3, checks=3, checks_on_time=1, checks_failed=2),
    )
    counters = recount([records], CITY)
    values = counters.values(("department", "office-1", *MONTH))
    wanted = ("checks_requested", "checks_due", "checks_on_time", "reworked", "closed_on_time")
    assert {k: values[k] for k in wanted} == {
        "checks_requested": 3,
        "checks_due": 3,
        "checks_on_time": 1,
        "reworked": 1,
        "closed_on_time": 1,
    }


MISSED = T + timedelta(hours=3)


@pytest.mark.parametrize(
    ("status", "answered", "missed_at", "due"),
    [
        ("checking", 0, None, 0),  # open within its limit: not due yet
        ("checking", 0, MISSED, 1),  # open past its limit: due, and not on time
        ("checking", 1, MISSED, 2),  # a failed check answered, the second one open past its limit
        ("open", 1, None, 1),  # answered (failed): due
        ("closed", 1, None, 1),  # answered after it was reported missed: due once
    ],
    ids=["open in time", "open past its limit", "reworked then missed", "failed", "answered late"],
)
def test_a_check_is_due_once_answered_or_once_open_past_its_limit(
    status: str, answered: int, missed_at: datetime | None, due: int
) -> None:
    case = report()
    records = CaseRecords(
        case,
        dispatched(case.id, "office-1"),
        handled(case.id),
        closure(
            case.id,
            status,
            checks_requested=answered + int(status == "checking"),
            checks=answered,
            check_missed_at=missed_at,
        ),
    )
    values = recount([records], CITY).values(("department", "office-1", *MONTH))
    assert values.get("checks_due", 0) == due
    assert values.get("checks_on_time", 0) == 0  # closure's own count, read as it is


def test_filing_and_dispatch_on_time_are_no_later_than_their_deadlines_and_no_deadline_is_on_time() -> None:
    on_the_dot, late, unknown = (
        report(filed_at=T + timedelta(minutes=30)),
        report(filed_at=T + timedelta(minutes=31)),
        report(filing_deadline=None),
    )
    counters = recount(
        [
            CaseRecords(on_the_dot, dispatched(on_the_dot.id, "a", dispatch_deadline=T + timedelta(minutes=2))),
            CaseRecords(late, dispatched(late.id, "a", dispatch_deadline=T + timedelta(minutes=1))),
            CaseRecords(unknown, dispatched(unknown.id, "a", dispatch_deadline=None)),
        ],
        CITY,
    )
    values = counters.values(("city", "city", *DAY))
    assert (values["filed"], values["filed_on_time"]) == (3, 2)
    assert (values["cases_dispatched"], values["dispatched_on_time"]) == (3, 2)


def test_a_case_filed_but_not_yet_dispatched_counts_as_filed_only() -> None:
    case = report()
    counters = recount([CaseRecords(case, DispatchLine(id=case.id), HandlingLine(id=case.id), closure(case.id))], CITY)
    only(counters, PLACE_SCOPES, {"reports": 1, "filed": 1, "filed_on_time": 1})


def test_report_counters_fall_in_the_month_received_case_counters_in_the_month_filed() -> None:
    # Received 23:50 on Monday 30 November, filed the next morning, late.
    received = datetime(2026, 11, 30, 15, 50, tzinfo=UTC)
    case = report(
        received_at=received,
        filed_at=datetime(2026, 12, 1, 1, 0, tzinfo=UTC),
        filing_deadline=received + timedelta(minutes=30),
    )
    records = CaseRecords(case, dispatched(case.id, "office-1", dispatch_deadline=None), None, closure(case.id))
    counters = recount([records], CITY)
    received_rows = {"reports": 1, "filed": 1}
    filed_rows = {"cases_dispatched": 1, "dispatched_on_time": 1, "dispatches": 1}
    department_rows = {"dispatches": 1}  # on-time dispatch is the command center's, not the department's
    assert counters.values(("city", "city", "day", "2026-11-30")) == received_rows
    assert counters.values(("city", "city", "month", "2026-11-01")) == received_rows
    assert counters.values(("city", "city", "day", "2026-12-01")) == filed_rows
    assert counters.values(("city", "city", "month", "2026-12-01")) == filed_rows
    # Both days are in the ISO week that starts on Monday 30 November.
    assert counters.values(("city", "city", "week", "2026-11-30")) == received_rows | filed_rows
    assert counters.values(("department", "office-1", "month", "2026-12-01")) == department_rows
    assert counters.values(("department", "office-1", "month", "2026-11-01")) == {}


@pytest.mark.parametrize(
    ("instant", "day", "week", "month"),
    [
        # Sunday 23:59:59 local is the last second of the week of Monday the 16th...
        (datetime(2026, 11, 22, 15, 59, 59, tzinfo=UTC), "2026-11-22", "2026-11-16", "2026-11-01"),
        # ...and a second later it is Monday the 23rd in the city, though still Sunday in UTC.
        (datetime(2026, 11, 22, 16, 0, 0, tzinfo=UTC), "2026-11-23", "2026-11-23", "2026-11-01"),
        # New Year's Day 2027 is a Friday: its ISO week began on Monday 28 December 2026.
        (datetime(2026, 12, 31, 16, 0, 0, tzinfo=UTC), "2027-01-01", "2026-12-28", "2027-01-01"),
        # ISO week 1 of 2026 began on Monday 29 December 2025.
        (datetime(2026, 1, 3, 4, 0, 0, tzinfo=UTC), "2026-01-03", "2025-12-29", "2026-01-01"),
    ],
)
def test_periods_are_local_days_iso_weeks_named_by_their_monday_and_months(
    instant: datetime, day: str, week: str, month: str
) -> None:
    counters = recount([CaseRecords(report(received_at=instant, filed_at=None))], CITY)
    assert {key[2:] for key in counters.row_keys() if key[:2] == ("city", "city")} == {
        ("day", day),
        ("week", week),
        ("month", month),
    }


def test_counters_add_up_across_cases_and_scopes() -> None:
    first, second = report(), report(cell_id="c2", source="hotline", category_code="01-01-04")
    counters = recount([CaseRecords(first), CaseRecords(second)], CITY)
    assert counters.values(("city", "city", *WEEK))["reports"] == 2
    assert counters.values(("inspector", "insp-2", *WEEK))["reports"] == 1
    assert counters.values(("family", "component", *WEEK))["filed"] == 1
    assert counters.values(("source", "hotline", *DAY))["filed_on_time"] == 1


def test_a_report_in_a_cell_or_category_the_city_does_not_know_is_an_error() -> None:
    with pytest.raises(ReconcileError, match="no cell or category 'c9'"):
        recount([CaseRecords(report(cell_id="c9"))], CITY)


# --- comparison ----------------------------------------------------------------------------------


def rows_of(counters: Counters) -> list[CounterRow]:
    """The batch's rows as the stream would send them, when the two agree."""
    return [
        CounterRow(scope_kind=k[0], scope_id=k[1], period_kind=k[2], period_start=k[3], values=counters.values(k))
        for k in counters.row_keys()
    ]


def sample() -> Counters:
    case = report()
    return recount([CaseRecords(case, dispatched(case.id, "office-1"), handled(case.id), closure(case.id))], CITY)


def test_two_paths_that_agree_compare_every_value_and_find_no_difference() -> None:
    stream = rows_of(sample())
    expected = sum(len(row.values) for row in stream)
    comparison = compare(sample(), stream)
    assert (comparison.compared, comparison.different) == (expected, 0)
    assert comparison.report() == [f"compared {expected} values, 0 differences"]


def test_differences_over_the_union_of_both_sides_are_counted_and_listed_in_order() -> None:
    stream = rows_of(sample())
    expected = sum(len(row.values) for row in stream)
    city_day = next(i for i, r in enumerate(stream) if r.key == ("city", "city", *DAY))
    stream[city_day] = stream[city_day].model_copy(
        update={"values": stream[city_day].values | {"handled": 2, "closed": 1, "overdue_open": 0}}
    )
    missing = next(i for i, r in enumerate(stream) if r.key == ("cell", "c1", *MONTH))
    del stream[missing]
    stream.append(CounterRow(scope_kind="cell", scope_id="c2", period_kind="day", period_start="2026-11-18", values={}))
    stream.append(
        CounterRow(scope_kind="source", scope_id="video", period_kind="day", period_start="2026-11-18", values={"x": 1})
    )

    comparison = compare(sample(), stream)
    # handled (2 vs 1) and closed (1 vs 0) differ; overdue_open is 0 on both sides but the stream
    # sent it, so it is compared; the missing cell row's values are each a difference; the
    # unknown counter of the stream's extra row is one.
    cell_month = len(sample().values(("cell", "c1", *MONTH)))
    assert comparison.compared == expected + 2 + 1
    assert comparison.different == 2 + cell_month + 1
    lines = comparison.report()
    assert lines[0] == f"compared {expected + 3} values, {2 + cell_month + 1} differences"
    assert lines[1:3] == [
        "  cell c1 month 2026-11-01 reports: batch 1, stream 0",
        "  cell c1 month 2026-11-01 filed: batch 1, stream 0",
    ]
    assert "  city city day 2026-11-18 handled: batch 1, stream 2" in lines
    assert "  city city day 2026-11-18 closed: batch 0, stream 1" in lines
    assert lines[-1] == "  source video day 2026-11-18 x: batch 0, stream 1"


def test_only_the_first_differences_are_listed() -> None:
    comparison = compare(sample(), [], listed=3)
    total = sum(len(row.values) for row in rows_of(sample()))
    lines = comparison.report()
    assert lines[0] == f"compared {total} values, {total} differences"
    assert len(lines) == 1 + 3 + 1
    assert lines[-1] == f"  ... and {total - 3} more"
    assert lines[1] == "  category 02-05-01 day 2026-11-18 reports: batch 1, stream 0"


# --- reading the exports -------------------------------------------------------------------------


def ndjson(items: list[Any]) -> bytes:
    return b"".join(
        (item if isinstance(item, str) else json.dumps(item, default=str)).encode() + b"\n" for item in items
    )


class FakeServices:
    """The five exports served from memory, as a process running every service would."""

    def __init__(self, cases: list[CaseRecords], stream: list[CounterRow]) -> None:
        self.bodies: dict[str, bytes] = {
            "/intake/export/reports": ndjson([c.report.model_dump(mode="json") for c in cases]),
            "/dispatch/export/cases": ndjson([c.dispatch.model_dump(mode="json") for c in cases if c.dispatch]),
            "/handling/export/cases": ndjson([c.handling.model_dump(mode="json") for c in cases if c.handling]),
            "/closure/export/cases": ndjson([c.closure.model_dump(mode="json") for c in cases if c.closure]),
            "/assessment/export/counters": ndjson([r.model_dump(mode="json") for r in stream]),
        }
        self.hosts: dict[str, str] = {}
        self.status: dict[str, int] = {}

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.hosts[request.url.path] = request.url.host
        assert request.headers["Authorization"] == "Bearer t"
        status = self.status.get(request.url.path, 200)
        if status != 200:
            return httpx.Response(status, json={"code": "not_found", "message": "no such route"})
        return httpx.Response(
            200, content=self.bodies[request.url.path], headers={"content-type": "application/x-ndjson"}
        )

    async def reconcile(self, endpoints: Endpoints | None = None) -> tuple[int, str]:
        out = io.StringIO()
        transport = httpx.MockTransport(self.handle)
        async with httpx.AsyncClient(transport=transport, headers={"Authorization": "Bearer t"}) as client:
            status = await reconcile(client, endpoints or Endpoints("http://citycase"), CITY, out)
        return status, out.getvalue()


def city_cases() -> list[CaseRecords]:
    """A few cases, sorted by id as the exports are."""
    cases = []
    for n in range(4):
        case = report()
        cases.append(
            CaseRecords(
                case,
                dispatched(case.id, "office-1", "sanitation", returned=n % 2) if n != 3 else None,
                handled(case.id),
                closure(case.id, "closed" if n == 3 else "open", on_time=True if n == 3 else None),
            )
        )
    return sorted(cases, key=lambda c: c.report.id)


async def test_reconcile_reads_the_five_exports_and_agrees_with_a_stream_that_counts_the_same() -> None:
    cases = city_cases()
    services = FakeServices(cases, rows_of(recount(cases, CITY)))
    status, output = await services.reconcile()
    assert status == 0
    assert output.splitlines()[0].endswith(" 0 differences")
    assert len(output.splitlines()) == 1


async def test_reconcile_exits_1_and_lists_what_differs() -> None:
    cases = city_cases()
    stream = rows_of(recount(cases[1:], CITY))
    status, output = await FakeServices(cases, stream).reconcile()
    assert status == 1
    summary, *listed, more = output.splitlines()
    assert re.fullmatch(r"compared \d+ values, (\d+) differences", summary)
    assert len(listed) == 50
    assert all(": batch " in line for line in listed)
    assert more == f"  ... and {int(summary.split()[3]) - 50} more"


async def test_each_service_can_live_at_its_own_address() -> None:
    services = FakeServices(city_cases(), [])
    endpoints = Endpoints("http://all", {"dispatch": "http://dispatch:8001/", "assessment": "https://stream"})
    await services.reconcile(endpoints)
    assert services.hosts == {
        "/intake/export/reports": "all",
        "/dispatch/export/cases": "dispatch",
        "/handling/export/cases": "all",
        "/closure/export/cases": "all",
        "/assessment/export/counters": "stream",
    }


async def test_a_service_that_refuses_is_an_error_naming_it() -> None:
    services = FakeServices(city_cases(), [])
    services.status["/assessment/export/counters"] = 404
    with pytest.raises(ReconcileError, match=r"GET http://citycase/assessment/export/counters: 404 .*no such route"):
        await services.reconcile()


async def test_an_unreadable_line_is_an_error_naming_the_export_and_the_line() -> None:
    services = FakeServices(city_cases(), [])
    services.bodies["/closure/export/cases"] = b'\n{"id": "not-a-uuid"}\n' + services.bodies["/closure/export/cases"]
    with pytest.raises(ReconcileError, match=r"closure/export/cases: line 2 is not a ClosureLine"):
        await services.reconcile()


async def test_records_out_of_order_or_without_a_report_are_errors() -> None:
    cases = city_cases()
    reports_only = sorted((CaseRecords(c.report) for c in cases), key=lambda c: c.report.id, reverse=True)
    services = FakeServices(reports_only, [])
    with pytest.raises(ReconcileError, match="the intake export is not ordered by id"):
        await services.reconcile()
    services = FakeServices(cases, [])
    services.bodies["/closure/export/cases"] = FakeServices(cases[::-1], []).bodies["/closure/export/cases"]
    with pytest.raises(ReconcileError, match="the closure export is not ordered by id"):
        await services.reconcile()
    orphan = FakeServices(cases[1:], [])
    orphan.bodies["/handling/export/cases"] = FakeServices(cases, []).bodies["/handling/export/cases"]
    with pytest.raises(ReconcileError, match=f"the handling export has case {cases[0].report.id}, which intake never"):
        await orphan.reconcile()


async def test_records_of_reports_received_after_intakes_export_are_skipped() -> None:
    cases = city_cases()
    services = FakeServices(cases[:-1], rows_of(recount(cases[:-1], CITY)))
    services.bodies["/closure/export/cases"] = FakeServices(cases, []).bodies["/closure/export/cases"]
    assert (await services.reconcile())[0] == 0


def test_the_command_checks_its_service_addresses(capsys: pytest.CaptureFixture[str]) -> None:
    for wrong in ("billing=http://x", "dispatch", "dispatch=ftp://x"):
        with pytest.raises(SystemExit) as exit_:
            main(["reconcile", "--service-url", wrong])
        assert exit_.value.code == 2
        assert "expected SERVICE=http(s)://..." in capsys.readouterr().err


def test_the_command_says_what_it_could_not_reach(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["reconcile", "--url", "http://127.0.0.1:9", "--timeout", "2"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("reconcile: GET http://127.0.0.1:9/intake/export/reports: ConnectError")


def test_every_base_counter_of_the_contract_is_recounted() -> None:
    contract = (Path(__file__).resolve().parents[2] / "assessment" / "INDICATORS.md").read_text()
    section = contract.split("## Base counters", 1)[1].split("\n## ", 1)[0]
    names = re.findall(r"^\| `(\w+)` \|", section, flags=re.MULTILINE)
    assert tuple(names) == COUNTERS


# --- callbacks (回访) and reopens ----------------------------------------------------------------


def hotline_report(verdict: CallbackVerdict | None, **overrides: Any) -> ReportLine:
    """A hotline's report in cell c1, and the latest verdict of its callback."""
    return report(source="hotline", callback_verdict=verdict, **overrides)


@pytest.mark.parametrize(
    ("verdict", "satisfied"),
    [
        (CallbackVerdict.SATISFIED, 1),
        (CallbackVerdict.BASICALLY_SATISFIED, 1),
        (CallbackVerdict.UNSATISFIED, 0),
    ],
)
def test_a_callback_counts_for_every_scope_and_the_department_that_closed_the_case(
    verdict: CallbackVerdict, satisfied: int
) -> None:
    case = hotline_report(verdict)
    records = CaseRecords(
        case, dispatched(case.id, "office-1"), handled(case.id), closure(case.id, "closed", on_time=True)
    )
    counters = recount([records], CITY)
    for scope in [("city", "city"), ("source", "hotline"), ("department", "office-1")]:
        for period in PERIODS:
            values = counters.values((*scope, *period))
            assert (values["callbacks"], values.get("satisfied", 0), values["closed"]) == (1, satisfied, 1)


def test_a_callback_of_a_report_never_filed_or_of_a_cancelled_case_is_not_counted() -> None:
    merged = hotline_report(CallbackVerdict.SATISFIED, filed_at=None, filing_deadline=None)
    cancelled = hotline_report(CallbackVerdict.UNSATISFIED)
    counters = recount(
        [
            CaseRecords(merged),
            CaseRecords(cancelled, dispatched(cancelled.id, "office-1"), None, closure(cancelled.id, "cancelled")),
        ],
        CITY,
    )
    assert counters.values(("city", "city", *MONTH)) == {"reports": 2, "cancelled": 1}


def test_a_reopened_case_is_reworked_and_not_closed_and_overdue_once_missed() -> None:
    case = hotline_report(CallbackVerdict.UNSATISFIED)
    records = CaseRecords(
        case,
        dispatched(case.id, "office-1", deadline_missed_at=T + timedelta(days=2)),
        handled(case.id),
        closure(case.id, "open", checks_requested=1, checks=1, checks_on_time=1, reopens=1),
    )
    values = recount([records], CITY).values(("department", "office-1", *MONTH))
    assert values == {
        "dispatches": 1,
        "handled": 1,
        "reworked": 1,
        "checks_requested": 1,
        "checks_due": 1,
        "checks_on_time": 1,
        "overdue_open": 1,
        "callbacks": 1,
    }


# The stream and the recount are two implementations of INDICATORS.md: on one history of callbacks
# and reopens, the stream's rules (assessment.domain) applied to its events and the recount's
# applied to the records the services keep of it must give the same counters, value by value.

PLACE = GridPlace(cell_id="c1", community_id="m1", street_id="s1", district_id="d1")
ATTRIBUTION = Attribution(family_of=CITY.families.__getitem__, inspector_of=CITY.inspectors.get)


@dataclass
class Story:
    """One hotline case as events (what the stream reads) and as records (what the recount reads)."""

    case_id: UUID = field(default_factory=new_id)
    events: list[Event] = field(default_factory=list)

    def add(self, payload: EventPayload, at: datetime) -> None:
        self.events.append(
            Event(id=new_id(), source="/citycase/test", subject=str(self.case_id), time=at, data=payload)
        )

    def filed_and_dispatched(self, department: str) -> None:
        self.add(
            ReportReceived(
                source=ReportSource.HOTLINE,
                category_code="02-05-01",
                description="a vendor",
                point=GeoPoint(lon=113.0, lat=30.0),
                place=PLACE,
            ),
            T,
        )
        self.add(
            CaseFiled(
                case_number="2026-11-000001",
                category_code="02-05-01",
                family=CategoryFamily.EVENT,
                source=ReportSource.HOTLINE,
                place=PLACE,
                filed_by="operator-1",
                reported_at=T,
                filing_deadline=T + timedelta(minutes=30),
                dispatch_deadline=T + timedelta(minutes=31),
            ),
            T + timedelta(minutes=1),
        )
        dispatched = CaseDispatched(
            department_id=department, dispatched_by="routing", handling_deadline=T + timedelta(days=1), attempt=1
        )
        self.add(dispatched, T + timedelta(minutes=2))

    def handled_and_checked(self, department: str, at: datetime, *, closed_on_time: bool) -> None:
        self.add(CaseHandled(department_id=department, handled_by="clerk", result="done"), at)
        self.add(CheckRequested(inspector_id="insp-1", check_deadline=at + timedelta(hours=1)), at)
        self.add(CheckPassed(inspector_id="insp-1"), at + timedelta(minutes=30))
        self.add(CaseClosed(closed_by="insp-1", on_time=closed_on_time), at + timedelta(minutes=30))

    def called_back(self, verdict: CallbackVerdict, at: datetime) -> None:
        self.add(CallbackRecorded(hotline_id="12345", work_order="WO-1", verdict=verdict), at)

    def reopened(self, department: str, at: datetime) -> None:
        self.add(CaseReopened(department_id=department, reason="not satisfied"), at)


def stream_rows(stories: list[Story]) -> list[CounterRow]:
    """The counter rows the assessment stream makes of the stories' events."""
    rows: dict[tuple[str, str, str, date], list[int]] = {}
    for story in stories:
        changes = assessment.decide(CaseState(), story.events, ATTRIBUTION, CITY.timezone)
        assert changes is not None
        for key, vector in assessment.to_periods(changes).items():
            rows[key] = [a + b for a, b in zip(rows.get(key, [0] * len(COUNTERS)), vector, strict=True)]
    return [
        CounterRow(
            scope_kind=kind,
            scope_id=scope_id,
            period_kind=period,
            period_start=start,
            values={name: n for name, n in zip(COUNTERS, vector, strict=True) if n},
        )
        for (kind, scope_id, period, start), vector in sorted(rows.items())
    ]


def test_the_stream_and_the_recount_agree_on_callbacks_and_reopens() -> None:
    day = timedelta(days=1)
    satisfied, open_again, closed_again, not_reopened, cancelled = stories = [Story() for _ in range(5)]
    for story in stories:
        story.filed_and_dispatched("office-1")
        story.handled_and_checked("office-1", T + timedelta(hours=2), closed_on_time=True)
    satisfied.called_back(CallbackVerdict.SATISFIED, T + day)
    # Reopened, then past its handling deadline: overdue open.
    open_again.called_back(CallbackVerdict.UNSATISFIED, T + day)
    open_again.reopened("office-1", T + day)
    open_again.add(
        DeadlineMissed(kind=DeadlineKind.HANDLING, deadline=T + day, department_id="office-1"),
        T + day + timedelta(hours=1),
    )
    # Reopened, reworked, closed again late, and basically satisfied the second time.
    closed_again.called_back(CallbackVerdict.UNSATISFIED, T + day)
    closed_again.reopened("office-1", T + day)
    closed_again.handled_and_checked("office-1", T + 2 * day, closed_on_time=False)
    closed_again.called_back(CallbackVerdict.BASICALLY_SATISFIED, T + 3 * day)
    # The hotline's rule did not reopen it.
    not_reopened.called_back(CallbackVerdict.UNSATISFIED, T + day)
    # Reopened, then voided.
    cancelled.called_back(CallbackVerdict.UNSATISFIED, T + day)
    cancelled.reopened("office-1", T + day)
    cancelled.add(CaseCancelled(cancelled_by="lead", reason="void"), T + 2 * day)

    def records(story: Story, verdict: CallbackVerdict, checks: int = 1, **closure_fields: Any) -> CaseRecords:
        case = hotline_report(verdict, id=story.case_id)
        missed = T + day + timedelta(hours=1) if story is open_again else None
        return CaseRecords(
            case,
            dispatched(case.id, "office-1", deadline_missed_at=missed),
            handled(case.id),
            closure(case.id, checks_requested=checks, checks=checks, checks_on_time=checks, **closure_fields),
        )

    batch = [
        records(satisfied, CallbackVerdict.SATISFIED, status="closed", on_time=True),
        records(open_again, CallbackVerdict.UNSATISFIED, status="open", reopens=1),
        records(closed_again, CallbackVerdict.BASICALLY_SATISFIED, 2, status="closed", on_time=False, reopens=1),
        records(not_reopened, CallbackVerdict.UNSATISFIED, status="closed", on_time=True),
        records(cancelled, CallbackVerdict.UNSATISFIED, status="cancelled", reopens=1),
    ]

    stream = stream_rows(stories)
    comparison = compare(recount(sorted(batch, key=lambda c: c.report.id), CITY), stream)

    assert comparison.report() == [f"compared {comparison.compared} values, 0 differences"]
    city_month = next(row.values for row in stream if row.key == ("city", "city", *MONTH))
    assert {
        name: city_month.get(name, 0) for name in ("callbacks", "satisfied", "reworked", "closed", "overdue_open")
    } == {
        "callbacks": 4,
        "satisfied": 2,
        "reworked": 2,
        "closed": 3,
        "overdue_open": 1,
    }


def test_the_recount_token_is_issued_on_the_clock_of_a_simulated_city(tmp_path: Path) -> None:
    """A simulated city a year ahead refuses a token issued on today's date as not valid yet."""
    ahead = datetime.now(UTC).replace(microsecond=0) + timedelta(days=365)
    FileClock.create(tmp_path / SIMULATION_CLOCK_FILE, ahead)
    settings = Settings(mode=Mode.EMBEDDED, data_dir=tmp_path, jwt_secret="s" * 32)
    claims = jwt.decode(recount_token(settings), options={"verify_signature": False})
    assert claims["iat"] == int(ahead.timestamp())
