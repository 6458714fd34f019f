"""The city's clock over HTTP (``GET /calendar/clock``), for any caller who has logged in: the
injected clock's now, the city's time zone, and the working periods around today, from which the
console counts what is left of a deadline in working time as the services counted it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import pytest_asyncio

from services.runtime.app import create_app
from shared.city.calendar import TimeBasis, TimeLimit
from shared.core.settings import Mode, Settings

SHANGHAI = ZoneInfo("Asia/Shanghai")
# Friday 9 January 2026, 17:00 in the city: an hour of the week's working time is left.
FRIDAY_1700 = datetime(2026, 1, 9, 17, 0, tzinfo=SHANGHAI)
PASSWORDS = {"operator": "demo-operator", "dept-street": "demo-department", "inspector1": "demo-inspector"}


pytestmark = pytest.mark.asyncio(loop_scope="module")


class SettableClock:
    """The city's clock, set by each test wherever it needs it (a simulated clock only goes on)."""

    def __init__(self) -> None:
        self.instant = FRIDAY_1700

    def now(self) -> datetime:
        return self.instant


class Process:
    """A process of the demo city on a clock the tests set, and an HTTP client of it."""

    def __init__(self, client: httpx.AsyncClient, clock: SettableClock, app: Any) -> None:
        self.client = client
        self.clock = clock
        self.calendar = app.state.runtime.shared.calendar

    async def clock_answer(self, user: str = "operator", /, *, expect: int = 200, **params: int) -> Any:
        token = await self.client.post("/auth/token", data={"username": user, "password": PASSWORDS[user]})
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        answer = await self.client.get("/calendar/clock", params=params, headers=headers)
        assert answer.status_code == expect, answer.text
        return answer.json()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def running(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Process]:
    """One process for the module: building the app (the demo city, its grid) takes a second."""
    clock = SettableClock()
    app = create_app(["closure"], Settings(mode=Mode.EMBEDDED, data_dir=tmp_path_factory.mktemp("city")), clock)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://citycase") as client:
        yield Process(client, clock, app)


@pytest.fixture
def process(running: Process) -> Process:
    """The process, its clock back on Friday 17:00."""
    running.clock.instant = FRIDAY_1700
    return running


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text)


def working_time(answer: Any, start: datetime, end: datetime) -> timedelta:
    """What the console sums: the working periods between two instants."""
    periods = ((instant(p["start"]), instant(p["end"])) for p in answer["working_periods"])
    return sum((max(min(e, end) - max(s, start), timedelta(0)) for s, e in periods), timedelta(0))


async def test_any_caller_who_logged_in_reads_the_citys_clock(process: Process) -> None:
    assert (await process.client.get("/calendar/clock")).status_code == 401
    for user in PASSWORDS:
        answer = await process.clock_answer(user)
        assert instant(answer["now"]) == FRIDAY_1700
        assert answer["timezone"] == "Asia/Shanghai"


async def test_a_deadline_on_monday_morning_seen_on_friday_evening_has_an_hour_and_a_half_left(
    process: Process,
) -> None:
    answer = await process.clock_answer(days=4, days_before=0)
    assert instant(answer["start"]) == datetime(2026, 1, 9, tzinfo=SHANGHAI)
    assert instant(answer["end"]) == datetime(2026, 1, 13, tzinfo=SHANGHAI)
    assert answer["missing_year"] is None
    # Friday's two periods and Monday's; nothing on the weekend.
    assert [instant(p["start"]).astimezone(SHANGHAI).day for p in answer["working_periods"]] == [9, 9, 12, 12]
    monday_0900 = datetime(2026, 1, 12, 9, 0, tzinfo=SHANGHAI)
    assert working_time(answer, FRIDAY_1700, monday_0900) == timedelta(hours=1, minutes=30)
    # The deadline a 90-minute working limit gives from now, as a service counts it.
    assert process.calendar.add(FRIDAY_1700, TimeLimit(90, TimeBasis.WORKING)) == monday_0900


async def test_the_clock_is_the_injected_one_and_the_window_follows_it(process: Process) -> None:
    process.clock.instant = FRIDAY_1700 + timedelta(days=3)  # Monday 17:00
    answer = await process.clock_answer()
    assert instant(answer["now"]) == FRIDAY_1700 + timedelta(days=3)
    # By default 45 days either way of today: from 28 November 2025 through 25 February 2026.
    assert instant(answer["start"]) == datetime(2025, 11, 28, tzinfo=SHANGHAI)
    assert instant(answer["end"]) == datetime(2026, 2, 26, tzinfo=SHANGHAI)
    start, end = instant(answer["start"]), instant(answer["end"])
    assert working_time(answer, start, end) == process.calendar.elapsed(start, end, TimeBasis.WORKING)


async def test_the_days_asked_for_are_bounded(process: Process) -> None:
    await process.clock_answer(days=92, days_before=92)
    for wrong in ({"days": 0}, {"days": 93}, {"days_before": -1}, {"days_before": 93}):
        await process.clock_answer(expect=422, **wrong)


async def test_a_year_the_calendar_does_not_know_cuts_the_periods_short(process: Process) -> None:
    process.clock.instant = datetime(2100, 12, 30, 10, 0, tzinfo=SHANGHAI)
    answer = await process.clock_answer(days=10, days_before=1)
    assert answer["missing_year"] == 2101
    assert instant(answer["end"]) == datetime(2101, 1, 1, tzinfo=SHANGHAI)
    # Wednesday 29 to Friday 31 December 2100, all of them working days of the provisional 2100.
    assert len(answer["working_periods"]) == 6


async def test_the_route_is_in_the_api_documents(process: Process) -> None:
    document = (await process.client.get("/openapi.json")).json()
    operation = document["paths"]["/calendar/clock"]["get"]
    assert operation["summary"]
    assert operation["security"]
    assert {parameter["name"] for parameter in operation["parameters"]} == {"days", "days_before"}
