"""What the console reads beside the case lifecycle, through the running city's HTTP APIs: one
indicator of every scope of a kind in one call (the map), which must say what the indicators of
each scope say one by one; and the search of the case file, each filter narrowing it and each
caller finding only the cases it may see.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio

from shared.city.indicators import NOT_FOR_DEPARTMENTS
from tests.e2e.harness import Harness, running_city

pytestmark = pytest.mark.asyncio(loop_scope="module")

STREET_VENDING = "02-05-01"  # routed to the street office of the place
POWER_MANHOLE = "01-01-04"  # routed to the power company
STREET_OFFICE, POWER = "office-990102001", "co-power"
MAPPED = ["cell", "community", "street", "district", "department", "inspector"]


@dataclass
class Filed:
    """The city with three cases filed by inspector1 and dispatched: two street vendors (the
    street office) and a manhole cover (the power company), oldest first."""

    city: Harness
    cases: list[dict[str, Any]]


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=["embedded", "postgres-kafka"])
async def filed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Filed]:
    async with running_city(request.param, tmp_path_factory.mktemp(request.param)) as city:
        cases = []
        for category in (STREET_VENDING, STREET_VENDING, POWER_MANHOLE):
            report = await city.report(category)
            cases.append(await city.case_status(report["id"], "dispatched"))
        await city.eventually(
            "shiftlead", "/assessment/indicators?period=day", lambda body: body["counters"]["cases_dispatched"] == 3
        )
        yield Filed(city, cases)


def value_of(answer: dict[str, Any], indicator: str) -> Any:
    return answer["counters"][indicator] if indicator in answer["counters"] else answer["indicators"][indicator]


@pytest.mark.parametrize("kind", MAPPED)
@pytest.mark.parametrize("indicator", ["reports", "dispatches", "due", "closure_rate", "on_time_dispatch_rate"])
async def test_the_map_says_what_each_scope_says_alone(filed: Filed, kind: str, indicator: str) -> None:
    city = filed.city
    query = f"/assessment/map?scope_kind={kind}&indicator={indicator}&period=day"
    if kind == "department" and indicator in NOT_FOR_DEPARTMENTS:
        assert (await city.get("shiftlead", query, expect=422))["code"] == "invalid_input"
        return
    answer = await city.get("shiftlead", query)
    assert (answer["scope_kind"], answer["indicator"], answer["period"]["kind"]) == (kind, indicator, "day")
    values = answer["values"]
    everyone = [scope.id for scope in getattr(city.city, SCOPES[kind])]
    assert list(values) == everyone
    assert len(values) == {"cell": 4014}.get(kind, len(everyone))
    # The scopes the cases are in, and a few they are not.
    touched = {scope_of(city, case, kind) for case in filed.cases}
    for scope_id in [*sorted(touched), *everyone[-3:]]:
        one = await city.get("shiftlead", f"/assessment/indicators?scope_kind={kind}&scope_id={scope_id}&period=day")
        assert values[scope_id] == value_of(one, indicator), (kind, scope_id)
    if indicator in ("reports", "dispatches"):
        assert sum(values[scope_id] for scope_id in touched) == 3
    if indicator == "closure_rate":
        assert set(values.values()) == {None}  # nothing due yet: a rate over nothing


SCOPES = {
    "cell": "cells",
    "community": "communities",
    "street": "streets",
    "district": "districts",
    "department": "departments",
    "inspector": "inspectors",
}


def scope_of(city: Harness, case: dict[str, Any], kind: str) -> str:
    """The scope of ``kind`` a case counts in."""
    if kind == "department":
        return str(case["department_id"])
    cell = city.city.cell(case["cell_id"])
    if kind == "inspector":
        return city.city.inspector_for(cell.id).id
    return cell.id if kind == "cell" else str(getattr(cell, f"{kind}_id"))


async def test_the_map_is_read_like_the_rankings(filed: Filed) -> None:
    city = filed.city
    for user in ("dept-street", "inspector1", "operator"):
        answer = await city.get(user, "/assessment/map?scope_kind=district&indicator=reports&period=month")
        assert sum(answer["values"].values()) == 3
    await city.get("hotline", "/assessment/map?scope_kind=district&indicator=reports", expect=403)
    await city.get("shiftlead", "/assessment/map?scope_kind=city&indicator=reports", expect=422)
    await city.get("shiftlead", "/assessment/map?scope_kind=cell&indicator=fame", expect=422)
    await city.get("shiftlead", "/assessment/map?scope_kind=cell&period=range&from=2026-11-20", expect=422)


async def search(city: Harness, user: str, query: str = "", expect: int = 200) -> Any:
    return await city.get(user, f"/intake/cases?{query}", expect=expect)


async def test_each_filter_narrows_the_search(filed: Filed) -> None:
    city, cases = filed.city, filed.cases
    ids = [case["id"] for case in cases]
    everything = await search(city, "shiftlead")
    assert [case["id"] for case in everything["items"]] == ids[::-1]  # newest first
    assert everything["items"][0] == cases[-1]  # the row GET /intake/cases/{id} answers
    assert everything["next"] is None

    async def found(query: str) -> set[str]:
        return {case["id"] for case in (await search(city, "shiftlead", query))["items"]}

    number = cases[1]["case_number"]
    assert await found(f"number={number}") == {ids[1]}
    assert await found(f"number={number[:7]}") == set(ids)
    assert await found(f"category={STREET_VENDING}") == set(ids[:2])
    assert await found("category=01-01") == {ids[2]}  # a major class
    assert await found(f"department={POWER}") == {ids[2]}
    assert await found("status=dispatched&status=accepted") == set(ids)
    assert await found("status=closed") == set()
    assert await found("district=990102") == set(ids)
    assert await found("district=990106") == set()
    assert await found("source=inspector") == set(ids)
    assert await found("source=hotline") == set()
    assert await found("filed_from=2026-11-16&filed_to=2026-11-16") == set(ids)
    assert await found("filed_to=2026-11-15") == set()


async def test_pages_follow_each_other_with_the_next_token(filed: Filed) -> None:
    city = filed.city
    seen: list[str] = []
    page = await search(city, "shiftlead", "limit=2")
    while True:
        assert len(page["items"]) <= 2
        seen += [case["id"] for case in page["items"]]
        if page["next"] is None:
            break
        page = await search(city, "shiftlead", f"limit=2&after={page['next']}")
    assert seen == [case["id"] for case in filed.cases][::-1]


async def test_a_department_finds_its_own_cases_and_no_other(filed: Filed) -> None:
    city, ids = filed.city, [case["id"] for case in filed.cases]
    street = await search(city, "dept-street")
    assert [case["id"] for case in street["items"]] == ids[1::-1]
    assert {case["department_id"] for case in street["items"]} == {STREET_OFFICE}
    assert (await search(city, "dept-street", f"department={POWER}"))["items"] == []
    assert [case["id"] for case in (await search(city, "dept-power"))["items"]] == [ids[2]]
    assert (await search(city, "dept-sanitation"))["items"] == []
    assert len((await search(city, "inspector1"))["items"]) == 3  # all in inspector1's cells
    assert (await search(city, "hotline"))["items"] == []
    await city.get("dept-street", f"/intake/cases/{ids[2]}", expect=403)


@pytest.mark.parametrize(
    "query",
    [
        "category=99-99",
        "district=nowhere",
        "department=bureau-nothing",
        "filed_from=2026-11-16&filed_to=2026-11-15",
        "filed_from=16/11/2026",
        "after=not-a-position",
        "status=lost",
        "source=rumour",
        "limit=0",
        "limit=201",
        "number=2026%25",
        "district=990102%00",
    ],
)
async def test_a_bad_filter_is_invalid_input(filed: Filed, query: str) -> None:
    answer = await search(filed.city, "shiftlead", query, expect=422)
    assert answer["code"] in ("invalid_input", "invalid_request")


async def test_searching_needs_a_log_in(filed: Filed) -> None:
    answer = await filed.city.client.get("/intake/cases")
    assert answer.status_code == 401
