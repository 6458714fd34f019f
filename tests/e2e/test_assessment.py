"""The assessment stream end to end: the Tianmen bulletin reproduced through the APIs on both
backends, and the query API (rankings, bulletin in JSON and Excel, live feed, export) on the result.

Tianmen, December 2016: 1,054 reports received, 996 filed, 972 due, 911 closed (93.72%), 737
closed on time (75.82%). The scripted month makes exactly those cases happen through the HTTP
APIs; nothing is written to the counters but the events of the log.
"""

from __future__ import annotations

import asyncio
import io
import json
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from datetime import timedelta
from typing import Any, TypeVar

import pytest
import pytest_asyncio
from openpyxl import load_workbook
from shapely.geometry import Point

from tests.e2e.harness import PNG, Harness, running_city

pytestmark = pytest.mark.asyncio(loop_scope="module")
T = TypeVar("T")

POWER_MANHOLE = "01-01-04"  # urgent: 120 calendar minutes, routed to the power company
POWER_COMPANY, POWER_USER = "co-power", "dept-power"
STREET_VENDING = "02-05-01"  # days of working time, routed to the street office
MONTH = "2026-11"

SELF_HANDLED = 700  # closed on the spot, on time
ON_TIME = 37  # through the department, checked and closed within the two hours
LATE = 174  # closed after the deadline passed
OVERDUE = 61  # still open when the deadline passed
OPEN = 24  # filed, dispatched, within their deadline
REJECTED = 58  # public reports the operator declined


async def _each(items: Iterable[T], action: Callable[[T], Awaitable[Any]], width: int = 8) -> list[Any]:
    """``action`` on every item, a few at a time, like a busy command center."""
    gate = asyncio.Semaphore(width)

    async def one(item: T) -> Any:
        async with gate:
            return await action(item)

    return await asyncio.gather(*(one(item) for item in items))


class Spots:
    """Random points in inspector1's cells (the duplicate radius is shrunk for this city)."""

    def __init__(self, city: Harness) -> None:
        self.rng = random.Random(2016)
        self.polygons = [city.city.grid.polygon(cell) for cell in city.city.inspector("insp-001").cell_ids]

    def __call__(self) -> dict[str, float]:
        polygon = self.rng.choice(self.polygons)
        west, south, east, north = polygon.bounds
        while True:
            point = Point(self.rng.uniform(west, east), self.rng.uniform(south, north))
            if polygon.contains(point):
                return {"lon": point.x, "lat": point.y}


async def _report(city: Harness, spot: Callable[[], dict[str, float]], category: str, **extra: Any) -> str:
    body = {"category_code": category, "description": "Tianmen script", "location": spot(), **extra}
    report = await city.post("inspector1", "/intake/reports", body, expect=201)
    return str(report["id"])


async def _handle(city: Harness, case_id: str) -> None:
    await city.post(POWER_USER, f"/handling/cases/{case_id}/accept")
    await city.call(
        POWER_USER,
        "POST",
        f"/handling/cases/{case_id}/report",
        data={"result": "cover replaced"},
        files=[("photos", ("after.png", PNG, "image/png"))],
    )


async def _check(city: Harness, case_ids: list[str]) -> None:
    wanted = set(case_ids)
    await city.eventually(
        "inspector1", "/closure/checks", lambda body: wanted <= {c["id"] for c in body}, timeout_s=120
    )
    await _each(case_ids, lambda c: city.post("inspector1", f"/closure/cases/{c}/check", {"passed": True}))


async def _in_inbox(city: Harness, case_ids: list[str]) -> None:
    wanted = set(case_ids)
    await city.eventually(
        POWER_USER, "/handling/inbox?limit=500", lambda body: wanted <= {t["id"] for t in body}, timeout_s=120
    )


async def _month(city: Harness, predicate: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    body: dict[str, Any] = await city.eventually(
        "shiftlead", f"/assessment/indicators?period=month&date={MONTH}-16", predicate, timeout_s=120
    )
    return body


async def play_tianmen_month(city: Harness) -> None:
    """The month of the bulletin, step by step through the APIs."""
    spot = Spots(city)
    await _each(range(SELF_HANDLED), lambda _: _report(city, spot, STREET_VENDING, self_handled=True))
    await _each(range(OPEN), lambda _: _report(city, spot, STREET_VENDING))
    power: list[str] = await _each(range(ON_TIME + LATE + OVERDUE), lambda _: _report(city, spot, POWER_MANHOLE))
    on_time, late = power[:ON_TIME], power[ON_TIME : ON_TIME + LATE]
    public = await _each(
        range(REJECTED),
        lambda _: city.post(
            None,
            "/intake/public/reports",
            {"category_code": STREET_VENDING, "description": "Tianmen script", "location": spot()},
            expect=201,
        ),
    )
    await _each(
        public,
        lambda r: city.post(
            "operator", f"/intake/reports/{r['id']}/reject", {"reason_code": "invalid", "reason": "not found"}
        ),
    )
    await _in_inbox(city, power)
    await _each(on_time, lambda c: _handle(city, c))
    await _check(city, on_time)

    # Three hours later every power case still open has missed its two-hour deadline.
    city.advance(timedelta(hours=3))
    await _month(city, lambda body: body["counters"]["overdue_open"] == LATE + OVERDUE)
    await _each(late, lambda c: _handle(city, c))
    await _check(city, late)


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=["embedded", "postgres-kafka"])
async def tianmen(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Harness]:
    async with running_city(
        request.param, tmp_path_factory.mktemp(request.param), duplicate_radius_m=0.5, stream_batch_size=200
    ) as city:
        await play_tianmen_month(city)
        yield city


async def test_the_tianmen_bulletin_is_reproduced(tianmen: Harness) -> None:
    body = await _month(tianmen, lambda body: body["counters"]["closed"] == 911)
    counters, indicators = body["counters"], body["indicators"]
    assert counters["reports"] == 1054
    assert counters["filed"] == 996
    assert indicators["due"] == 972
    assert counters["closed"] == 911
    assert counters["closed_on_time"] == 737
    assert round(indicators["closure_rate"] * 100, 2) == 93.72
    assert round(indicators["on_time_closure_rate"] * 100, 2) == 75.82
    assert counters["overdue_open"] == OVERDUE
    assert round(indicators["effective_filing_rate"] * 100, 2) == 94.50
    # Every check was answered within its limit: all due, all on time.
    assert counters["checks_requested"] == counters["checks_due"] == counters["checks_on_time"] == ON_TIME + LATE
    assert indicators["on_time_check_rate"] == 1.0
    assert body["period"] == {"kind": "month", "start": "2026-11-01", "end": "2026-11-30"}

    # The same figures summed from day buckets over a custom range, and for the ISO week.
    ranged = await tianmen.get("shiftlead", "/assessment/indicators?period=range&from=2026-11-01&to=2026-11-30")
    assert ranged["counters"] == counters
    week = await tianmen.get("shiftlead", "/assessment/indicators?period=week&date=2026-11-18")
    assert week["period"]["start"] == "2026-11-16"
    assert week["counters"] == counters


async def test_the_stream_equals_the_batch_recount(tianmen: Harness) -> None:
    report = await tianmen.reconcile()
    compared = int(report.split("compared ")[1].split(" values")[0])
    assert compared > 1000
    assert report.startswith(f"compared {compared} values, 0 differences")


async def test_departments_are_ranked(tianmen: Harness) -> None:
    ranking = await tianmen.get(
        "dept-power", f"/assessment/rankings?scope_kind=department&indicator=on_time_closure_rate&date={MONTH}-01"
    )
    power = next(row for row in ranking["ranking"] if row["scope_id"] == POWER_COMPANY)
    assert power["counters"]["dispatches"] == ON_TIME + LATE + OVERDUE
    assert power["indicators"]["due"] == ON_TIME + LATE + OVERDUE
    assert power["value"] == pytest.approx(ON_TIME / (ON_TIME + LATE + OVERDUE))
    assert power["name"] == "国网演示市供电公司"
    # On-time dispatch is the command center's figure: never a department's score.
    assert "cases_dispatched" not in power["counters"]
    assert "on_time_dispatch_rate" not in power["indicators"]
    error = await tianmen.get(
        "dept-power", "/assessment/rankings?scope_kind=department&indicator=on_time_dispatch_rate", expect=422
    )
    assert error["code"] == "invalid_input"
    districts = await tianmen.get(
        "shiftlead", f"/assessment/rankings?scope_kind=district&indicator=on_time_dispatch_rate&date={MONTH}-01"
    )
    assert {row["value"] for row in districts["ranking"]} == {1.0}  # dispatched by the routing rules at once
    # The power company may read its own figures, not another department's.
    own = await tianmen.get("dept-power", f"/assessment/indicators?scope_kind=department&scope_id={POWER_COMPANY}")
    assert own["counters"]["closed"] == ON_TIME + LATE
    error = await tianmen.get(
        "dept-power", "/assessment/indicators?scope_kind=department&scope_id=office-990102001", expect=403
    )
    assert error["code"] == "out_of_scope"


async def test_the_monthly_bulletin_in_json_and_excel(tianmen: Harness) -> None:
    bulletin = await tianmen.get("shiftlead", f"/assessment/bulletins/{MONTH}")
    assert bulletin["totals"]["reports"] == 1054
    assert bulletin["totals"]["due"] == 972
    by_source = {row["id"]: row for row in bulletin["by_source"]}
    assert by_source["public"]["reports"] == REJECTED
    assert by_source["public"]["filed"] == 0
    assert by_source["inspector"]["filed"] == 996
    by_family = {row["id"]: row["reports"] for row in bulletin["by_family"]}
    assert by_family == {"component": ON_TIME + LATE + OVERDUE, "event": SELF_HANDLED + OPEN + REJECTED}
    assert bulletin["top_categories"][0]["code"] == STREET_VENDING
    assert bulletin["overdue_backlog"] == [
        {"department_id": POWER_COMPANY, "name": "国网演示市供电公司", "overdue_open": OVERDUE}
    ]

    response = await tianmen.client.get(
        f"/assessment/bulletins/{MONTH}.xlsx", headers={"Authorization": f"Bearer {await tianmen.login('shiftlead')}"}
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/vnd.openxmlformats")
    book = load_workbook(io.BytesIO(response.content))
    assert "部门排名 Departments" in book.sheetnames
    summary = {row[0]: row[1] for row in book["概况 Summary"].iter_rows(min_row=2, values_only=True)}
    assert summary["closed"] == 911
    assert summary["on_time_closure_rate"] == pytest.approx(737 / 972)


async def test_the_live_feed_sends_the_indicators(tianmen: Harness) -> None:
    headers = {"Authorization": f"Bearer {await tianmen.login('shiftlead')}"}
    # ``count`` ends the stream: the in-process test transport hands over a response only whole.
    url = "/assessment/live?period=month&scope_kind=city&interval=0.2&count=1"
    async with tianmen.client.stream("GET", url, headers=headers) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = response.aiter_lines()
        event = data = None
        async for line in lines:
            if line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
            if line.startswith("data:"):
                data = json.loads(line.split(":", 1)[1])
                break
    assert event == "indicators"
    assert data is not None
    assert data["counters"]["closed"] == 911


async def test_the_counters_export(tianmen: Harness) -> None:
    response = await tianmen.client.get(
        "/assessment/export/counters", headers={"Authorization": f"Bearer {await tianmen.login('shiftlead')}"}
    )
    assert response.status_code == 200
    rows = [json.loads(line) for line in response.text.splitlines()]
    city_month = next(
        r for r in rows if (r["scope_kind"], r["period_kind"], r["period_start"]) == ("city", "month", "2026-11-01")
    )
    assert city_month["values"]["reports"] == 1054
    assert all(all(value != 0 for value in row["values"].values()) for row in rows)


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/assessment/bulletins/2026-13", 422),
        ("/assessment/bulletins/november", 422),
        ("/assessment/indicators?period=range&from=2026-11-30&to=2026-11-01", 422),
        ("/assessment/indicators?period=range&from=2026-11-01", 422),
        ("/assessment/indicators?scope_kind=planet", 422),
        ("/assessment/rankings?indicator=happiness", 422),
        ("/assessment/indicators?date=yesterday", 422),
    ],
)
async def test_bad_queries_are_told_why(tianmen: Harness, path: str, status: int) -> None:
    error = await tianmen.get("shiftlead", path, expect=status)
    assert error["code"]
    assert error["message"]
