"""The year-end case, through the HTTP APIs on both backends: filed on 28 December 2026 with a
five-working-day limit, dispatched on a deadline in 2027 — a year the State Council has not
published — which every service shows as provisional; the shift lead loads 2027's official days,
and every service shows the recomputed deadline, the timeline says so, and the stream agrees.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
import pytest_asyncio

from tests.e2e.harness import Harness, running_city

pytestmark = pytest.mark.asyncio(loop_scope="module")

YEAR_END = datetime(2026, 12, 28, 1, 0, tzinfo=UTC)  # Monday 28 December 2026, 09:00 in the city
PAVEMENT = "01-02-05"  # five working days to handle; the housing bureau's, by a city-wide rule
HOUSING = "dept-housing"
# 29, 30, 31 December, New Year's Day off by the statutory rules, the weekend, Monday 4 January:
# the fifth working day ends on Tuesday 5 January at 09:00.
PROVISIONAL_DUE = "2027-01-05T01:00:00Z"
# The notice (say) gives Monday 4 January off too, and has Saturday 9 January worked.
NOTICE = {"holidays": ["2027-01-01", "2027-01-04"], "workdays": ["2027-01-09"]}
OFFICIAL_DUE = "2027-01-06T01:00:00Z"


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=["embedded", "postgres-kafka"])
async def city(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Harness]:
    folder = tmp_path_factory.mktemp(request.param)
    async with running_city(request.param, folder, calendar_dir=folder / "calendar") as harness:
        harness.advance(YEAR_END - harness.clock.now())
        yield harness


def instant(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def due(expected: str, provisional: bool) -> Any:
    """A predicate on a case view: its handling deadline is ``expected``, provisional or not."""
    return lambda body: (
        body.get("handling_deadline") is not None
        and instant(body["handling_deadline"]) == instant(expected)
        and body["handling_deadline_provisional"] is provisional
    )


async def test_the_year_end_case_runs_on_a_provisional_deadline_until_the_official_year_comes(city: Harness) -> None:
    report = await city.report(PAVEMENT)
    assert report["status"] == "filed"
    case_id = report["id"]
    views = {
        "shiftlead": [f"/intake/cases/{case_id}", f"/dispatch/cases/{case_id}", f"/closure/cases/{case_id}"],
        HOUSING: [f"/handling/cases/{case_id}"],
    }
    for user, paths in views.items():
        for path in paths:
            await city.eventually(user, path, due(PROVISIONAL_DUE, True))

    year = await city.get("shiftlead", "/calendar/years/2027")
    assert year["source"] == "provisional"
    assert year["workdays"] == []  # no make-up days without the notice
    assert "2027-01-01" in year["holidays"]
    assert "2027-01-04" not in year["holidays"]

    await city.call(HOUSING, "PUT", "/calendar/years/2027", expect=403, json=NOTICE)
    refused = await city.call(
        "shiftlead", "PUT", "/calendar/years/2027", expect=422, json={"holidays": [], "workdays": ["2027-01-04"]}
    )
    assert "not a Saturday or Sunday" in refused["message"]
    loaded = await city.call("shiftlead", "PUT", "/calendar/years/2027", json=NOTICE)
    assert (loaded["source"], loaded["workdays"]) == ("official", ["2027-01-09"])
    assert "2027-01-04" in loaded["holidays"]

    for user, paths in views.items():
        for path in paths:
            await city.eventually(user, path, due(OFFICIAL_DUE, False))
    timeline = await city.timeline(case_id, until_type="case.deadline_recomputed")
    recomputed = next(entry for entry in timeline if entry["event_type"] == "case.deadline_recomputed")
    assert recomputed["service"] == "dispatch"
    assert recomputed["details"]["kind"] == "handling"
    assert instant(recomputed["details"]["previous"]) == instant(PROVISIONAL_DUE)
    assert instant(recomputed["details"]["deadline"]) == instant(OFFICIAL_DUE)
    assert "0 differences" in await city.reconcile()
