"""The lifecycle services' exports, and the batch recount of the indicators read from them, on both
backends: a day of cases covering every rule of assessment/INDICATORS.md that the records decide.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio

from services.tools.reconcile import CityFacts, Endpoints, batch_counters
from shared.web import export
from tests.e2e.harness import Harness, running_city
from tests.e2e.test_lifecycle import (
    OWNERLESS_MANHOLE,
    POWER_MANHOLE,
    STREET_OFFICE,
    STREET_USER,
    STREET_VENDING,
    handle,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")

EXPORTS = ("/intake/export/reports", "/dispatch/export/cases", "/handling/export/cases", "/closure/export/cases")
DAY, WEEK, MONTH = ("day", "2026-11-16"), ("week", "2026-11-16"), ("month", "2026-11-01")


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=["embedded", "postgres-kafka"])
async def city(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Harness]:
    async with running_city(request.param, tmp_path_factory.mktemp(request.param)) as harness:
        yield harness


async def export_lines(city: Harness, path: str, user: str = "shiftlead", **params: str) -> list[dict[str, Any]]:
    token = await city.login(user)
    response = await city.client.get(path, params=params, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/x-ndjson"
    return [json.loads(line) for line in response.text.splitlines()]


def at(record: dict[str, Any], name: str) -> datetime:
    return datetime.fromisoformat(record[name])


def by_id(lines: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {line["id"]: line for line in lines}


async def filed_and_dispatched(city: Harness, category: str = STREET_VENDING, department: str = STREET_USER) -> str:
    """A report filed and routed, once intake has heard of the dispatch and the department's inbox
    holds the case (each service hears of it on its own: one knowing tells nothing of the other)."""
    report = await city.report(category)
    await city.case_status(report["id"], "dispatched")
    await city.eventually(department, f"/handling/cases/{report['id']}", lambda _task: True)
    return str(report["id"])


async def test_the_exports_hold_what_the_recount_needs_and_the_recount_counts_it(city: Harness) -> None:
    # 09:00: nine reports, in every way a report can go.
    closed_late, overdue = (
        await filed_and_dispatched(city, POWER_MANHOLE, "dept-power"),
        await filed_and_dispatched(city, POWER_MANHOLE, "dept-power"),
    )
    returned = await filed_and_dispatched(city)
    await city.post(STREET_USER, f"/handling/cases/{returned}/return", {"reason": "a market, not ours"})
    await city.eventually(
        "dispatcher", "/dispatch/queue?status=returned", lambda b: any(c["id"] == returned for c in b)
    )
    await city.post("dispatcher", f"/dispatch/cases/{returned}/dispatch", {"department_id": "sanitation"})
    self_handled = (await city.report(STREET_VENDING, self_handled=True))["id"]
    public = {"category_code": STREET_VENDING, "description": "vendor", "location": city.fresh_spot()}
    rejected = (await city.post(None, "/intake/public/reports", public, expect=201))["id"]
    await city.post("operator", f"/intake/reports/{rejected}/reject", {"reason_code": "invalid", "reason": "no"})
    near = await city.get("shiftlead", f"/intake/reports/{returned}")
    order = {
        "category_code": STREET_VENDING,
        "description": "vendor again",
        "location": {"lon": near["lon"] + 0.00005, "lat": near["lat"]},
        "external_ref": "WO-EXPORT-1",
    }
    merged = await city.post("hotline", "/intake/hotline/work-orders", order, expect=201)
    assert merged["status"] == "merged"
    cancelled = await filed_and_dispatched(city)
    await city.post("shiftlead", f"/closure/cases/{cancelled}/cancel", {"reason": "reported twice"})
    public = {"category_code": STREET_VENDING, "description": "vendor", "location": city.fresh_spot()}
    filed_late = (await city.post(None, "/intake/public/reports", public, expect=201))["id"]
    dispatched_late = (await city.report(OWNERLESS_MANHOLE))["id"]
    await city.case_status(dispatched_late, "coordination")

    # The power company handles one manhole, the check fails on time, it handles it again.
    await city.post("dept-power", f"/handling/cases/{closed_late}/accept")
    await handle(city, "dept-power", closed_late)
    await city.eventually("inspector1", "/closure/checks", lambda b: any(c["id"] == closed_late for c in b))
    await city.post("inspector1", f"/closure/cases/{closed_late}/check", {"passed": False, "note": "still open"})
    await city.eventually("dept-power", f"/handling/cases/{closed_late}", lambda t: t["status"] == "rework")
    city.advance(timedelta(minutes=1))
    await handle(city, "dept-power", closed_late)
    await city.eventually("inspector1", "/closure/checks", lambda b: any(c["id"] == closed_late for c in b))

    # 12:01: both manholes are past their 120 minutes, the second check past its 60, the public
    # report past its 30 working minutes of filing and the ownerless one past its 10 of dispatch.
    city.advance(timedelta(hours=3))
    for case_id in (closed_late, overdue):
        await city.timeline(case_id, "case.deadline_missed")
    await city.post("inspector1", f"/closure/cases/{closed_late}/check", {"passed": True})
    await city.post("inspector1", f"/intake/reports/{filed_late}/verification", {"confirmed": True})
    await city.post("dispatcher", f"/dispatch/cases/{dispatched_late}/dispatch", {"department_id": "co-power"})
    await city.case_status(closed_late, "closed")
    await city.case_status(filed_late, "dispatched")
    await city.case_status(dispatched_late, "dispatched")
    await city.case_status(cancelled, "cancelled")
    await city.eventually(STREET_USER, f"/handling/cases/{cancelled}", lambda t: t["status"] == "cancelled")

    reports = by_id(await export_lines(city, "/intake/export/reports"))
    assert reports[rejected]["status"] == "rejected"
    assert reports[rejected]["filed_at"] is None
    assert reports[merged["id"]]["merged_into"] == returned
    assert at(reports[filed_late], "filed_at") > at(reports[filed_late], "filing_deadline")
    assert reports[self_handled]["self_handled"] is True
    assert at(reports[self_handled], "filed_at") <= at(reports[self_handled], "filing_deadline")
    assert reports[closed_late]["community_id"]

    dispatch = by_id(await export_lines(city, "/dispatch/export/cases"))
    assert self_handled not in dispatch
    assert [
        (a["attempt"], a["department_id"], a["returned_at"] is not None) for a in dispatch[returned]["assignments"]
    ] == [
        (1, STREET_OFFICE, True),
        (2, "sanitation", False),
    ]
    assert dispatch[returned]["department_id"] == "sanitation"
    assert dispatch[overdue]["deadline_missed_at"] is not None
    late = dispatch[dispatched_late]
    assert at(late["assignments"][0], "dispatched_at") > at(late, "dispatch_deadline")

    handling = by_id(await export_lines(city, "/handling/export/cases"))
    assert at(handling[closed_late], "first_handled_at") < at(handling[closed_late], "handled_at")
    assert handling[overdue]["first_handled_at"] is None

    closure = by_id(await export_lines(city, "/closure/export/cases"))
    assert {
        k: closure[closed_late][k] for k in ("status", "on_time", "checks_requested", "checks_on_time", "checks_failed")
    } == {
        "status": "closed",
        "on_time": False,
        "checks_requested": 2,
        "checks_on_time": 1,
        "checks_failed": 1,
    }
    assert closure[cancelled]["status"] == "cancelled"
    assert (closure[self_handled]["status"], closure[self_handled]["on_time"]) == ("closed", True)

    city.client.headers["Authorization"] = f"Bearer {await city.login('shiftlead')}"
    try:
        counters = await batch_counters(city.client, Endpoints("http://citycase"), CityFacts.of(city.city))
    finally:
        del city.client.headers["Authorization"]
    whole_city = {
        "reports": 9,
        "filed": 6,
        "filed_on_time": 5,
        "cases_dispatched": 5,
        "dispatched_on_time": 4,
        "dispatches": 6,
        "returns": 1,
        "handled": 1,
        "reworked": 1,
        "checks_requested": 2,
        "checks_due": 2,
        "checks_on_time": 1,
        "closed": 2,
        "closed_on_time": 1,
        "overdue_open": 1,
        "cancelled": 1,
    }
    for period in (DAY, WEEK, MONTH):
        assert counters.values(("city", "city", *period)) == whole_city
        assert counters.values(("inspector", "insp-001", *period)) == whole_city
    assert counters.values(("source", "public", *DAY)) == {
        "reports": 2,
        "filed": 1,
        "cases_dispatched": 1,
        "dispatched_on_time": 1,
        "dispatches": 1,
    }
    # On-time dispatch is the command center's figure: no department is credited with it.
    assert counters.values(("department", "co-power", *DAY)) == {
        "dispatches": 3,
        "handled": 1,
        "reworked": 1,
        "checks_requested": 2,
        "checks_due": 2,
        "checks_on_time": 1,
        "closed": 1,
        "overdue_open": 1,
    }
    assert counters.values(("department", STREET_OFFICE, *DAY)) == {"dispatches": 2, "returns": 1}
    assert counters.values(("department", "sanitation", *DAY)) == {"dispatches": 1}


async def test_exports_page_by_id_and_resume_after_an_id(city: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    everything = await export_lines(city, "/intake/export/reports")
    assert len(everything) >= 9
    assert [line["id"] for line in everything] == sorted(line["id"] for line in everything)
    monkeypatch.setattr(export, "PAGE_SIZE", 2)
    for path in EXPORTS:
        whole = await export_lines(city, path)
        assert len(whole) >= 5
        assert [line["id"] for line in whole] == sorted(line["id"] for line in whole)
        rest = await export_lines(city, path, after=whole[2]["id"])
        assert rest == whole[3:]
    monkeypatch.undo()
    assert await export_lines(city, "/intake/export/reports") == everything


async def test_exports_are_for_the_command_center_and_refuse_bad_input_clearly(city: Harness) -> None:
    for path in EXPORTS:
        assert (await city.client.get(path)).status_code == 401
        for user in ("inspector1", "operator", STREET_USER):
            error = await city.call(user, "GET", path, expect=403)
            assert error["code"] == "http_403"
        error = await city.call("shiftlead", "GET", f"{path}?after=not-an-id", expect=422)
        assert error["code"] == "invalid_request"
        assert error["details"][0]["loc"] == ["query", "after"]
    # An id past every record: an empty export, not an error.
    assert await export_lines(city, "/closure/export/cases", after="ffffffff-ffff-7fff-bfff-ffffffffffff") == []


async def test_the_export_routes_are_documented_as_ndjson_of_their_records(city: Harness) -> None:
    for path, record in zip(
        EXPORTS, ("ReportRecord", "DispatchRecord", "HandlingRecord", "ClosureRecord"), strict=True
    ):
        service, route = path.split("/", 2)[1:]
        spec = (await city.client.get(f"/{service}/openapi.json")).json()
        ok = spec["paths"][f"/{route}"]["get"]["responses"]["200"]
        assert ok["content"]["application/x-ndjson"]["schema"]["$ref"] == f"#/components/schemas/{record}"
        assert record in spec["components"]["schemas"]
