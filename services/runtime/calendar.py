"""The city's working calendar in a running process: built at start from the city's file and the
official years loaded so far, kept up to date with the years loaded while it runs; the shift
lead's routes to read a year and to load one from the State Council's notice; and the city's
clock for every caller (its now, its time zone, its working periods), from which a client counts
what is left of a deadline in working time as the services count it.

A year is loaded by writing its file to the official years' folder (``Settings.official_years_path``),
which every process of the city shares: the process that took the request adopts the year at once,
the others when their watcher sees the file, within ``timer_interval_seconds``. Each service then
recomputes its provisional deadlines (``shared.service.deadlines``) and says so in events.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from shared.city.calendar import OfficialYear, OfficialYears, WorkingCalendar, YearSource, load_calendar
from shared.city.model import City
from shared.core.auth import Principal, Role
from shared.core.clock import Clock
from shared.core.errors import InvalidInput
from shared.core.settings import Settings
from shared.service.timer import run_timer
from shared.web.auth import current_principal, require

log = logging.getLogger(__name__)


def city_calendar(settings: Settings, city: City) -> WorkingCalendar:
    """The city's calendar file, with every official year loaded so far adopted (a loaded year
    replaces the file's for that year)."""
    calendar = load_calendar(city.calendar_file)
    for official in OfficialYears(settings.official_years_path).read():
        calendar.adopt(official)
    return calendar


async def follow_official_years(calendar: WorkingCalendar, years: OfficialYears, interval_seconds: float) -> None:
    """Adopt every year that another process of the city, or the command line, saves to
    ``years``: look at the folder every ``interval_seconds`` (a few system calls), and read its
    files again when they changed. A file that cannot be read is logged and tried again."""
    seen: tuple[tuple[str, int], ...] | None = None

    async def look() -> int:
        nonlocal seen
        version = years.version()
        if version != seen:
            for official in years.read():
                if calendar.adopt(official):
                    log.info("calendar: the official days of %d adopted", official.year)
            seen = version
        return 0

    await run_timer("official calendar years", look, interval_seconds)


class OfficialYearIn(BaseModel):
    """A year's days as the State Council's notice gives them."""

    model_config = ConfigDict(extra="forbid")

    holidays: list[date] = Field(max_length=366, description="days off besides Saturdays and Sundays")
    workdays: list[date] = Field(max_length=366, description="Saturdays or Sundays worked (调休)")


class CalendarYearOut(BaseModel):
    """A year as the calendar counts it, and where its days come from: ``provisional`` years are
    built from the statutory rules, and deadlines counted on them are recomputed when the year's
    official days are loaded."""

    year: int
    source: YearSource
    holidays: list[date] = Field(description="weekdays off (the city's own overrides included)")
    workdays: list[date] = Field(description="Saturdays or Sundays worked")


class WorkingPeriodOut(BaseModel):
    """A stretch of working time: one of a working day's working hours, as UTC instants."""

    start: datetime
    end: datetime


class CityClockOut(BaseModel):
    """The city's now and the working periods around it: a deadline's working time left is the
    sum of the periods between ``now`` and the deadline (how late, between the deadline and
    ``now``), for a deadline between ``start`` and ``end``; beyond them this answer does not say."""

    now: datetime = Field(description="the city's time: a simulated city's, not the wall clock's")
    timezone: str = Field(description="the IANA zone of the city's days and working hours, e.g. Asia/Shanghai")
    start: datetime = Field(description="where the periods start: local midnight, days_before days before today")
    end: datetime = Field(
        description="where the periods end: local midnight after the last day asked for, or the start of "
        "the first day of a year the calendar does not know (see missing_year)"
    )
    missing_year: int | None = Field(
        description="the year whose days the calendar does not know, where the periods stop short; "
        "its official days are loaded with PUT /calendar/years/{year}"
    )
    working_periods: list[WorkingPeriodOut] = Field(description="oldest first, none of them overlapping")


Year = Annotated[int, Path(ge=1, le=9999)]
# At module level: under ``from __future__ import annotations`` FastAPI resolves a route's
# annotations by name in the module, and a local name would leave the OpenAPI document unbuildable.
ShiftLead = Annotated[Principal, Depends(require(Role.SHIFT_LEAD))]
Caller = Annotated[Principal, Depends(current_principal)]
# A quarter either way at most: enough for any time limit and for a backlog's lateness, and the
# answer stays a few kilobytes (two periods a working day).
DaysAhead = Annotated[int, Query(ge=1, le=92, description="days from the start of today (city time)")]
DaysBefore = Annotated[int, Query(ge=0, le=92, description="days before today, to count how late a deadline is")]


def calendar_router(calendar: WorkingCalendar, years: OfficialYears, clock: Clock) -> APIRouter:
    """The calendar's routes: the city's clock for every caller; and the shift lead's, to read a
    year and to load a year's official days.

    Process-wide routes, like logging in, rather than one service's: a year is the city's, every
    service of every process counts on it, and each recomputes its own deadlines.
    """
    router = APIRouter(prefix="/calendar", tags=["calendar"])

    @router.get("/clock", summary="The city's now, its time zone, and its working periods around today")
    async def read_clock(_caller: Caller, days: DaysAhead = 45, days_before: DaysBefore = 45) -> CityClockOut:
        """What the console counts "what is left" of a deadline with, in working time as the services
        count the deadline (holidays, make-up working days, provisional years alike). A year the
        calendar does not know cuts the periods short at its first day (``missing_year``) instead of
        failing the answer: what is known before it stays right."""
        now = clock.now()
        zone = ZoneInfo(calendar.timezone)
        today = now.astimezone(zone).date()
        start, end = _midnight(today - timedelta(days=days_before), zone), _midnight(today + timedelta(days=days), zone)
        known = calendar.working_periods(start, end)
        return CityClockOut(
            now=now,
            timezone=calendar.timezone,
            start=start,
            end=known.until,
            missing_year=None if known.until == end else known.until.astimezone(zone).year,
            working_periods=[WorkingPeriodOut(start=s, end=e) for s, e in known.periods],
        )

    @router.get("/years/{year}", summary="A year's working days as the calendar counts them, and their source")
    async def read_year(year: Year, _lead: ShiftLead) -> CalendarYearOut:
        return _year_out(calendar, year)

    @router.put(
        "/years/{year}",
        summary="Load a year's official days from the State Council's notice; provisional deadlines are recomputed",
    )
    async def load_year(year: Year, body: OfficialYearIn, _lead: ShiftLead) -> CalendarYearOut:
        """Every process of the city adopts the year, and each service recomputes the deadlines it
        counted on the provisional year, telling each change as ``case.deadline_recomputed``."""
        try:
            official = OfficialYear(year, frozenset(body.holidays), frozenset(body.workdays))
        except ValueError as exc:
            raise InvalidInput(str(exc), {"year": year}) from None
        years.save(official)
        calendar.adopt(official)
        return _year_out(calendar, year)

    return router


def _midnight(day: date, zone: ZoneInfo) -> datetime:
    """The instant a local day starts, in UTC."""
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def _year_out(calendar: WorkingCalendar, year: int) -> CalendarYearOut:
    source = calendar.source_of(year)
    if source is YearSource.MISSING:
        return CalendarYearOut(year=year, source=source, holidays=[], workdays=[])
    first = date(year, 1, 1)
    days = [first + timedelta(days=n) for n in range((date(year, 12, 31) - first).days + 1)]
    return CalendarYearOut(
        year=year,
        source=source,
        holidays=[day for day in days if day.weekday() < 5 and not calendar.is_working_day(day)],
        workdays=[day for day in days if day.weekday() >= 5 and calendar.is_working_day(day)],
    )
