"""The city's working calendar in a running process: built at start from the city's file and the
official years loaded so far, kept up to date with the years loaded while it runs, and the shift
lead's routes to read a year and to load one from the State Council's notice.

A year is loaded by writing its file to the official years' folder (``Settings.official_years_path``),
which every process of the city shares: the process that took the request adopts the year at once,
the others when their watcher sees the file, within ``timer_interval_seconds``. Each service then
recomputes its provisional deadlines (``shared.service.deadlines``) and says so in events.
"""

from __future__ import annotations

import logging
from datetime import date, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, ConfigDict, Field

from shared.city.calendar import OfficialYear, OfficialYears, WorkingCalendar, YearSource, load_calendar
from shared.city.model import City
from shared.core.auth import Principal, Role
from shared.core.errors import InvalidInput
from shared.core.settings import Settings
from shared.service.timer import run_timer
from shared.web.auth import require

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


Year = Annotated[int, Path(ge=1, le=9999)]
# At module level: under ``from __future__ import annotations`` FastAPI resolves a route's
# annotations by name in the module, and a local name would leave the OpenAPI document unbuildable.
ShiftLead = Annotated[Principal, Depends(require(Role.SHIFT_LEAD))]


def calendar_router(calendar: WorkingCalendar, years: OfficialYears) -> APIRouter:
    """The shift lead's calendar routes: read a year, load a year's official days.

    Process-wide routes, like logging in, rather than one service's: a year is the city's, every
    service of every process counts on it, and each recomputes its own deadlines.
    """
    router = APIRouter(prefix="/calendar", tags=["calendar"])

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
