"""Every read of the assessment service, from counters the stream wrote: indicators of a scope in
a day, week, month or range, rankings with ties, the overdue backlog, the export, the bulletin,
and who may read what."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import get_args

import pytest

from assessment import api, bulletin, queries
from assessment.domain import PeriodKind
from assessment.models import counters
from assessment.queries import Period
from shared.city.indicators import INDICATORS, NOT_FOR_DEPARTMENTS, RANKED_KINDS, SCOPE_KINDS
from shared.core.auth import Role
from shared.core.errors import InvalidInput, OutOfScope
from tests.service.assessment.conftest import CELL, OTHER_CELL, WEDNESDAY, Assessment, History, history
from tests.service.conftest import principal

NOVEMBER = Period.bucket(PeriodKind.MONTH, date(2026, 11, 1))


def reported(assessment: Assessment, at: datetime, cell: str = CELL) -> History:
    """A report that became a case, not yet dispatched."""
    case = history(assessment, cell)
    case.received(at)
    case.filed(at + timedelta(minutes=5))
    return case


def closed_by(assessment: Assessment, department: str, *, on_time: bool = True, cell: str = CELL) -> History:
    """A case dispatched to ``department`` and closed."""
    case = reported(assessment, WEDNESDAY, cell)
    case.dispatched(department, WEDNESDAY + timedelta(minutes=30))
    case.closed(WEDNESDAY + timedelta(hours=4), on_time=on_time)
    return case


async def test_indicators_of_a_district_for_a_day_a_week_a_month_and_a_range(assessment: Assessment) -> None:
    saturday, monday = WEDNESDAY - timedelta(days=4), WEDNESDAY + timedelta(days=5)  # Oct 31, Nov 9
    cases = [reported(assessment, at) for at in (saturday, WEDNESDAY, monday)]
    cases.append(reported(assessment, WEDNESDAY, OTHER_CELL))
    await assessment.apply([event for case in cases for event in case.events])
    ctx = assessment.svc.ctx

    async def reports(name: str, day: date | None = None, start: date | None = None, end: date | None = None) -> int:
        period = queries.period_asked(ctx, name, day, start, end)
        return (await queries.indicators(ctx, "district", "990102", period))["reports"]

    assert await reports("day", date(2026, 11, 4)) == 1
    assert await reports("day", date(2026, 11, 5)) == 0
    assert await reports("week", date(2026, 11, 8)) == 1  # Monday Nov 2 to Sunday Nov 8
    assert await reports("week", date(2026, 10, 31)) == 1
    assert await reports("month", date(2026, 11, 20)) == 2
    assert await reports("month", date(2026, 10, 1)) == 1
    assert await reports("range", start=date(2026, 10, 31), end=date(2026, 11, 4)) == 2
    assert await reports("range", start=date(2026, 11, 5), end=date(2026, 11, 30)) == 1
    assert await reports("range", start=date(2026, 10, 1), end=date(2026, 12, 31)) == 3
    city = await queries.indicators(ctx, "city", "city", NOVEMBER)
    assert (city["reports"], city["filed"]) == (3, 3)


async def test_a_period_defaults_to_today_in_the_citys_zone_and_a_range_must_make_sense(
    assessment: Assessment,
) -> None:
    ctx = assessment.svc.ctx  # the clock: Monday 2026-11-02 09:00 in Shanghai
    assert queries.period_asked(ctx, "day") == Period("day", date(2026, 11, 2), date(2026, 11, 2))
    assert queries.period_asked(ctx, "week") == Period("week", date(2026, 11, 2), date(2026, 11, 8))
    assert queries.period_asked(ctx, "month") == Period("month", date(2026, 11, 1), date(2026, 11, 30))
    assert queries.period_asked(ctx, "month", date(2028, 2, 10)).end == date(2028, 2, 29)
    assert queries.period_asked(ctx, "range", None, date(2026, 1, 1), date(2030, 12, 31)).kind == "range"
    assert queries.period_asked(ctx, "day").to_json() == {
        "kind": "day",
        "start": date(2026, 11, 2),
        "end": date(2026, 11, 2),
    }
    with pytest.raises(InvalidInput, match="needs both"):
        queries.period_asked(ctx, "range", None, date(2026, 11, 1))
    with pytest.raises(InvalidInput, match="ends before it starts"):
        queries.period_asked(ctx, "range", None, date(2026, 11, 30), date(2026, 11, 1))
    with pytest.raises(InvalidInput, match="at most five years"):
        queries.period_asked(ctx, "range", None, date(2020, 1, 1), date(2026, 11, 1))


async def test_rankings_share_a_rank_on_ties_and_put_scopes_without_a_value_last(assessment: Assessment) -> None:
    cases = [
        closed_by(assessment, "bureau-urban"),
        closed_by(assessment, "bureau-urban"),
        closed_by(assessment, "bureau-housing"),
        closed_by(assessment, "bureau-transport"),
        closed_by(assessment, "bureau-transport", on_time=False),
    ]
    waiting = reported(assessment, WEDNESDAY)
    waiting.dispatched("bureau-landscape", WEDNESDAY + timedelta(hours=1))
    await assessment.apply([event for case in [*cases, waiting] for event in case.events])
    ctx = assessment.svc.ctx
    by_scope = await queries.scopes_of_kind(ctx, "department", NOVEMBER)
    assert set(by_scope) == {"bureau-urban", "bureau-housing", "bureau-transport", "bureau-landscape"}

    def ranking(descending: bool) -> list[tuple[int | None, str, float | int | None]]:
        rows = bulletin.ranked(ctx.city, "department", by_scope, "on_time_closure_rate", descending=descending)
        return [(row["rank"], row["scope_id"], row["value"]) for row in rows]

    # Equal values share a rank; the one with more cases due comes first.
    assert ranking(descending=True) == [
        (1, "bureau-urban", 1.0),
        (1, "bureau-housing", 1.0),
        (3, "bureau-transport", 0.5),
        (None, "bureau-landscape", None),
    ]
    assert ranking(descending=False) == [
        (1, "bureau-transport", 0.5),
        (2, "bureau-urban", 1.0),
        (2, "bureau-housing", 1.0),
        (None, "bureau-landscape", None),
    ]
    by_district = await queries.scopes_of_kind(ctx, "district", NOVEMBER)
    assert {scope: values["reports"] for scope, values in by_district.items()} == {"990102": 6}


async def test_on_time_dispatch_ranks_places_never_departments(assessment: Assessment) -> None:
    late = reported(assessment, WEDNESDAY)
    late.dispatched("bureau-urban", WEDNESDAY + timedelta(hours=2))  # after its one-hour dispatch limit
    cases = [late, closed_by(assessment, "bureau-urban"), closed_by(assessment, "bureau-housing", cell=OTHER_CELL)]
    await assessment.apply([event for case in cases for event in case.events])
    ctx = assessment.svc.ctx

    by_district = await queries.scopes_of_kind(ctx, "district", NOVEMBER)
    districts = bulletin.ranked(ctx.city, "district", by_district, "on_time_dispatch_rate")
    assert [(row["rank"], row["scope_id"], row["value"]) for row in districts] == [
        (1, "990103", 1.0),
        (2, "990102", 0.5),
    ]

    by_department = await queries.scopes_of_kind(ctx, "department", NOVEMBER)
    for indicator in ("on_time_dispatch_rate", "dispatched_on_time", "cases_dispatched"):
        with pytest.raises(InvalidInput, match=f"a department has no {indicator}"):
            bulletin.ranked(ctx.city, "department", by_department, indicator)
    departments = bulletin.ranked(ctx.city, "department", by_department, "on_time_closure_rate")
    assert {row["scope_id"] for row in departments} == {"bureau-urban", "bureau-housing"}
    for row in departments:
        assert not NOT_FOR_DEPARTMENTS & (row["counters"].keys() | row["indicators"].keys())
        assert row["counters"]["dispatches"] >= 1

    answer = await bulletin.monthly_bulletin(ctx, date(2026, 11, 1))
    assert answer["totals"]["on_time_dispatch_rate"] == 2 / 3
    assert all("on_time_dispatch_rate" not in row["indicators"] for row in answer["department_ranking"])


async def test_the_backlog_counts_overdue_open_cases_filed_up_to_a_month(assessment: Assessment) -> None:
    october = reported(assessment, WEDNESDAY - timedelta(days=10))  # filed in October
    october.dispatched("bureau-urban", WEDNESDAY - timedelta(days=10))
    october.missed("bureau-urban", WEDNESDAY - timedelta(days=8))
    november = reported(assessment, WEDNESDAY)
    november.dispatched("bureau-housing", WEDNESDAY + timedelta(minutes=30))
    november.missed("bureau-housing", WEDNESDAY + timedelta(days=1))
    closed = closed_by(assessment, "bureau-transport")
    await assessment.apply([event for case in (october, november, closed) for event in case.events])
    ctx = assessment.svc.ctx
    assert await queries.backlog_by_department(ctx, date(2026, 10, 31)) == {"bureau-urban": 1}
    assert await queries.backlog_by_department(ctx, date(2026, 11, 30)) == {"bureau-urban": 1, "bureau-housing": 1}


async def test_the_export_is_in_key_order_with_zero_values_and_rows_left_out(assessment: Assessment) -> None:
    kept = closed_by(assessment, "bureau-urban", cell=OTHER_CELL)
    voided = reported(assessment, WEDNESDAY)
    voided.dispatched("bureau-housing", WEDNESDAY + timedelta(minutes=30))
    await assessment.apply(kept.events + voided.events)
    await assessment.apply([voided.cancelled(WEDNESDAY + timedelta(hours=1))])
    ctx = assessment.svc.ctx

    lines = [line async for line in queries.export_counters(ctx)]
    keys = [(line["scope_kind"], line["scope_id"], line["period_kind"], line["period_start"]) for line in lines]
    assert keys == sorted(keys)
    assert len(keys) == len(set(keys))
    assert all(line["values"] and all(line["values"].values()) for line in lines)
    assert not any(line["scope_id"] == "bureau-housing" for line in lines)  # retracted: its rows are zero
    assert ("department", "bureau-urban", "month", "2026-11-01") in keys
    city_month = next(line for line in lines if line["scope_kind"] == "city" and line["period_kind"] == "month")
    assert city_month == {
        "scope_kind": "city",
        "scope_id": "city",
        "period_kind": "month",
        "period_start": "2026-11-01",
        "values": {
            "reports": 2,
            "filed": 1,  # the cancelled case keeps its report only
            "filed_on_time": 1,
            "cases_dispatched": 1,
            "dispatched_on_time": 1,
            "dispatches": 1,
            "closed": 1,
            "closed_on_time": 1,
            "cancelled": 1,
        },
    }
    assert [line async for line in queries.export_counters(ctx, page=2)] == lines
    assert len(await assessment.svc.rows(counters)) > len(lines)  # the zero rows are stored


async def test_the_monthly_bulletin_reads_the_month_and_the_backlog(assessment: Assessment) -> None:
    late = reported(assessment, WEDNESDAY)
    late.dispatched("bureau-housing", WEDNESDAY + timedelta(minutes=30))
    late.missed("bureau-housing", WEDNESDAY + timedelta(days=1))
    cases = [closed_by(assessment, "bureau-urban"), late]
    await assessment.apply([event for case in cases for event in case.events])
    answer = await bulletin.monthly_bulletin(assessment.svc.ctx, date(2026, 11, 1))
    assert answer["period"] == NOVEMBER.to_json()
    assert (answer["totals"]["reports"], answer["totals"]["due"], answer["totals"]["closure_rate"]) == (2, 2, 0.5)
    assert [row["scope_id"] for row in answer["department_ranking"]] == ["bureau-urban", "bureau-housing"]
    assert [row["department_id"] for row in answer["overdue_backlog"]] == ["bureau-housing"]
    assert answer["top_categories"][0]["reports"] == 2


@pytest.mark.parametrize(
    ("role", "scope", "kind", "scope_id", "allowed"),
    [
        (Role.SHIFT_LEAD, {}, "department", "bureau-urban", True),
        (Role.OPERATOR, {}, "inspector", "insp-001", True),
        (Role.DISPATCHER, {}, "city", "city", True),
        (Role.DEPARTMENT, {"department_id": "bureau-urban"}, "department", "bureau-urban", True),
        (Role.DEPARTMENT, {"department_id": "bureau-urban"}, "department", "bureau-housing", False),
        (Role.DEPARTMENT, {"department_id": "bureau-urban"}, "city", "city", False),
        (Role.INSPECTOR, {"inspector_id": "insp-001"}, "inspector", "insp-001", True),
        (Role.INSPECTOR, {"inspector_id": "insp-001"}, "inspector", "insp-002", False),
        (Role.INSPECTOR, {"inspector_id": "insp-001"}, "district", "990102", False),
    ],
)
def test_departments_and_inspectors_read_their_own_figures_the_command_center_all(
    role: Role, scope: dict[str, str], kind: str, scope_id: str, allowed: bool
) -> None:
    reader = principal(role, **scope)
    if allowed:
        queries.ensure_may_read(reader, kind, scope_id)
    else:
        with pytest.raises(OutOfScope, match="rankings are open to all"):
            queries.ensure_may_read(reader, kind, scope_id)


def test_who_may_call_the_reads() -> None:
    assert set(queries.READERS) == set(Role) - {Role.HOTLINE, Role.VIDEO}
    assert queries.LEADS == (Role.SHIFT_LEAD,)


def test_the_api_takes_its_names_from_the_one_list() -> None:
    assert get_args(api.ScopeKind) == SCOPE_KINDS
    assert get_args(api.RankedKind) == RANKED_KINDS
    assert get_args(api.Indicator) == INDICATORS
