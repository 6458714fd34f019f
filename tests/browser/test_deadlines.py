"""What is left of a deadline, in the console, in the working time the city counts it in: a case
whose handling deadline an approved extension set on Monday 09:00 shows, on Tuesday morning (the
simulated city's clock), the working hours between them as the city's calendar counts them — not
the five days and more of the wall clock.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from playwright.sync_api import Page, expect

from shared.city.calendar import TimeBasis, load_calendar
from shared.city.loader import load_city
from shared.core.settings import Settings
from tests.browser.conftest import City, log_in
from tests.browser.test_workbench import _street_office_case, _unique, _wait_for

SHANGHAI = ZoneInfo("Asia/Shanghai")
# The extension granted: the Monday after the simulated city's Tuesday morning.
MONDAY_0900 = datetime(2026, 1, 12, 9, 0, tzinfo=SHANGHAI)


def _deadline_on_monday(city: City) -> str:
    """A case of the street office (street vending: working time) whose handling deadline the
    shift lead moved to Monday 09:00 at the street office's request; its id."""
    case = _street_office_case(city, _unique("流动摊贩"))
    case_id: str = case["id"]
    city.call("dept-street", "POST", f"/handling/cases/{case_id}/accept")
    city.call(
        "dept-street",
        "POST",
        f"/handling/cases/{case_id}/extension",
        json={"requested_deadline": MONDAY_0900.isoformat(), "reason": "摊主周末不出摊，周一现场劝离"},
    )
    _wait_for(lambda: city.call("shiftlead", "GET", f"/dispatch/cases/{case_id}")["extension_deadline"])
    city.call("shiftlead", "POST", f"/dispatch/cases/{case_id}/extension/approve")

    def moved() -> bool:
        case = city.call("shiftlead", "GET", f"/intake/cases/{case_id}")
        return datetime.fromisoformat(case["handling_deadline"]) == MONDAY_0900

    _wait_for(moved)
    return case_id


def _hours_and_minutes(span: timedelta, hours: str, minutes: str) -> str:
    """Working time as the console writes it: hours (a working day is not 24 of them) and
    minutes, those that are not zero."""
    h, m = divmod(round(span / timedelta(minutes=1)), 60)
    return " ".join(f"{value}{unit}" for value, unit in ((h, hours), (m, minutes)) if value)


def test_a_deadline_shows_the_working_time_left_as_the_city_counts_it(page: Page, city: City) -> None:
    case_id = _deadline_on_monday(city)
    clock = city.call("shiftlead", "GET", "/calendar/clock")
    now = datetime.fromisoformat(clock["now"])
    calendar = load_calendar(load_city(Settings().city_dir).calendar_file)
    left = calendar.elapsed(now, MONDAY_0900, TimeBasis.WORKING)
    # From Tuesday 10:30: 10:30-12:00 and 14:30-18:00, Wednesday to Friday, Monday 08:30-09:00,
    # or a little less when the tests before moved the clock on; a quarter of the wall clock's.
    assert timedelta(hours=20) < left <= timedelta(hours=26, minutes=30) < (MONDAY_0900 - now) / 4
    # The console's sum: the periods the city sent, between now and the deadline.
    periods = [(datetime.fromisoformat(p["start"]), datetime.fromisoformat(p["end"])) for p in clock["working_periods"]]
    inside = [min(end, MONDAY_0900) - max(start, now) for start, end in periods if start < MONDAY_0900 and end > now]
    assert sum(inside, timedelta()) == left

    log_in(page, city, "shiftlead")
    page.goto(f"{city.url}/cases/{case_id}")
    handling = page.locator(".deadlines-panel [data-step=handling]")
    expect(handling.locator("time")).to_have_text("2026-01-12 09:00")
    expect(handling.locator(".left")).to_have_text(f"剩余 {_hours_and_minutes(left, '小时', '分钟')}（工作时间）")
    expect(handling).to_contain_text("时限 4小时（工作时间）")

    page.get_by_label("语言").select_option("en")
    expect(handling.locator(".left")).to_have_text(f"{_hours_and_minutes(left, ' h', ' min')} working time left")
