"""The city's working-time calendar: when a case's time limit (时限) runs out.

Limits are counted in working time — the city's working hours on working days — or, for urgent
categories, in calendar time (24×7). Whether a day is a working day is, first to last:

1. the city's own ``overrides``;
2. an official year the city has: its ``covered_years``, or a year's days loaded at run time from
   the State Council's notice (:class:`OfficialYears`: ``python -m services calendar load``, or
   the shift lead's ``PUT /calendar/years/{year}``), which replaces the file's for that year;
3. the national holiday calendar with its make-up working days (调休) from ``chinesecalendar``;
4. for a later year nobody has published yet (the notice comes out in October-December, the
   package weeks later), a **provisional** year built from the statutory rules
   (:func:`statutory_days_off`). A deadline counted on one is provisional
   (:meth:`WorkingCalendar.deadline`); the services recompute theirs when the official year
   comes, which the calendar's ``generation`` tells them.

A day of any other year (before chinesecalendar's first, after :data:`PROVISIONAL_LAST_YEAR`)
raises :class:`CalendarDataMissing`: a guessed deadline would be wrong without anyone noticing.

The overrides file (:func:`load_calendar`) is YAML; every key is optional::

    timezone: Asia/Shanghai                      # an IANA zone; local days and hours live there
    working_hours: ["08:30-12:00", "14:30-18:00"]  # HH:MM-HH:MM periods of one day, not overlapping
    overrides:                                   # local days that differ from the national calendar
      2026-12-31: off                            # "off" (day off) or "work" (working day)
    covered_years:                               # whole years chinesecalendar does not have yet,
      2027:                                      # as published by the State Council
        holidays: [2027-01-01, 2027-02-08]       # days off besides Saturdays and Sundays
        workdays: [2027-02-06]                   # make-up working days on Saturdays or Sundays

In an official year a day is a working day when it is a weekday not listed in ``holidays`` or a
weekend day listed in ``workdays``. Both lists must be present (``[]`` when empty). A year loaded
at run time is a file of its own holding one year's two lists (:func:`read_official_year`).
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from functools import cache
from itertools import pairwise
from pathlib import Path
from types import MappingProxyType
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import chinese_calendar  # type: ignore[import-untyped]  # the package ships no type hints
import yaml
from tyme4py.lunar import LunarDay  # type: ignore[import-untyped]  # no py.typed marker
from tyme4py.solar import SolarTerm  # type: ignore[import-untyped]

from shared.core.errors import DependencyMissing

DEFAULT_WORKING_HOURS: tuple[tuple[time, time], ...] = ((time(8, 30), time(12, 0)), (time(14, 30), time(18, 0)))

# The years chinesecalendar has data for; read once because its own lookups rescan its tables.
_NATIONAL_YEARS = range(min(chinese_calendar.holidays).year, max(chinese_calendar.holidays).year + 1)
_NO_OVERRIDES: Mapping[date, bool] = MappingProxyType({})

# The last year the provisional calendar serves. tyme4py computes the lunar calendar much further,
# but its festival and Qingming dates were checked against three other libraries for 1901-2100
# only (they agree with it wherever they agree with each other; lunardate is a day off in 1978,
# borax in 2089), and a deadline further out is a mistake, not a plan: beyond, CalendarDataMissing.
PROVISIONAL_LAST_YEAR = 2100

# The statutory holidays (全国年节及纪念日放假办法, as amended by the State Council in November 2024,
# in force since 2025): New Year's Day; Labour Day, two days; National Day, three days — by date.
_HOLIDAYS_BY_DATE = ((1, 1), (5, 1), (5, 2), (10, 1), (10, 2), (10, 3))
# And by the lunar calendar (month, day): the first three days of the Spring Festival (its eve,
# 除夕, is the day before the first), the Dragon Boat Festival, the Mid-Autumn Festival.
_LUNAR_HOLIDAYS = ((1, 1), (1, 2), (1, 3), (5, 5), (8, 15))
_ONE_DAY = timedelta(days=1)


@cache  # a year's dates take a millisecond or so to compute, and are asked for again and again
def statutory_days_off(year: int) -> frozenset[date]:
    """The days off of ``year`` besides Saturdays and Sundays, by the statutory rules alone.

    New Year's Day (1 Jan), the Spring Festival's eve and first three days, Qingming (the day of
    its solar term), Labour Day (1-2 May), the Dragon Boat Festival (5th of the 5th lunar month),
    the Mid-Autumn Festival (15th of the 8th) and National Day (1-3 Oct); a holiday falling on a
    Saturday or Sunday, or on another holiday, is made up on the next weekday that is none
    (补假, article 6). No make-up working days (调休): which weekends a notice swaps for bridge
    days is the State Council's choice each year, and only its notice can say.
    """
    spring_festival = _solar(LunarDay.from_ymd(year, 1, 1).get_solar_day())
    holidays = [date(year, month, day) for month, day in _HOLIDAYS_BY_DATE]
    holidays += [_solar(LunarDay.from_ymd(year, month, day).get_solar_day()) for month, day in _LUNAR_HOLIDAYS]
    holidays += [spring_festival - _ONE_DAY, _solar(SolarTerm.from_name(year, "清明").get_solar_day())]
    return _with_substitutes(holidays)


def _with_substitutes(holidays: Sequence[date]) -> frozenset[date]:
    """The holidays on weekdays, and for each one lost to a weekend or to another holiday on the
    same day, the next weekday that is not a holiday: as the notices have applied article 6 (the
    Mid-Autumn Festival on Saturday 10 September 2022 gave Monday 12th off; in 2020 it fell on
    National Day, which gained an eighth day)."""
    entitled = frozenset(holidays)
    off: set[date] = set()
    for day in sorted(holidays):
        if day.weekday() < 5 and day not in off:
            off.add(day)
            continue
        substitute = day + _ONE_DAY
        while substitute.weekday() >= 5 or substitute in entitled or substitute in off:
            substitute += _ONE_DAY
        off.add(substitute)
    return frozenset(off)


def _solar(day: Any) -> date:
    """A tyme4py ``SolarDay`` as a date."""
    return date(day.get_year(), day.get_month(), day.get_day())


class TimeBasis(StrEnum):
    """How a time limit is counted: in the city's working time or around the clock."""

    WORKING = "working"
    CALENDAR = "calendar"


@dataclass(frozen=True)
class TimeLimit:
    """A time limit (时限) of a lifecycle step, e.g. 30 working minutes to file a report."""

    minutes: int
    basis: TimeBasis

    def __post_init__(self) -> None:
        # bool is an int to Python; a catalogue saying `minutes: true` is a mistake, not one minute.
        if not isinstance(self.minutes, int) or isinstance(self.minutes, bool) or self.minutes <= 0:
            raise ValueError(f"a time limit must be a positive whole number of minutes, got {self.minutes!r}")
        if not isinstance(self.basis, TimeBasis):
            raise ValueError(f"a time limit's basis must be a TimeBasis, got {self.basis!r}")


def ends_later(requested: datetime, current: datetime | None) -> bool:
    """Whether a deadline asked for ends after the one in force: an extension (延期) must move it
    later. A case without a deadline yet has nothing to extend, so any date ends later.
    """
    return current is None or requested > current


class CalendarDataMissing(DependencyMissing):
    """No calendar data says whether a day of ``year`` is a working day (a 503 at the edge)."""

    def __init__(self, year: int) -> None:
        self.year = year
        super().__init__(
            f"no working-day calendar for {year}: chinesecalendar knows {_NATIONAL_YEARS.start}-"
            f"{_NATIONAL_YEARS.stop - 1}, the provisional calendar from the statutory rules serves up to "
            f"{PROVISIONAL_LAST_YEAR}; load {year}'s official days (python -m services calendar load {year} FILE), "
            "or add them under covered_years in the city's calendar file",
            {"calendar": "missing year", "year": year},
        )


class YearSource(StrEnum):
    """Where the calendar takes a year's working days from."""

    OFFICIAL = "official"  # the State Council's notice, as the city loaded it
    NATIONAL = "national"  # chinesecalendar's data (the notices, as the package has them)
    PROVISIONAL = "provisional"  # the statutory rules: deadlines counted on it are recomputed later
    MISSING = "missing"  # none: a deadline that needs the year is an error


class Deadline(NamedTuple):
    """When a time limit runs out, and whether a provisional year counted in it (then the
    deadline is recomputed when that year's official days are loaded)."""

    at: datetime
    provisional: bool


@dataclass(frozen=True)
class OfficialYear:
    """One year's working days as the State Council's notice gives them: days off besides
    Saturdays and Sundays (``holidays``), and Saturdays or Sundays worked (``workdays``, 调休)."""

    year: int
    holidays: frozenset[date]
    workdays: frozenset[date]

    def __post_init__(self) -> None:
        if not isinstance(self.year, int) or isinstance(self.year, bool) or not 1 <= self.year <= 9999:
            raise ValueError(f"expected a year such as 2027, got {self.year!r}")
        for kind, days in (("holidays", self.holidays), ("workdays", self.workdays)):
            for day in sorted(days):
                if day.year != self.year:
                    raise ValueError(f"{kind}: {day} is not in {self.year}")
        both = sorted(self.holidays & self.workdays)
        if both:
            raise ValueError(f"{both[0]} is listed both as a holiday and as a workday")
        for day in sorted(self.workdays):
            # A weekday works anyway in an official year: listing one is almost surely a typo.
            if day.weekday() < 5:
                raise ValueError(f"workdays: {day} is not a Saturday or Sunday")

    def is_working_day(self, day: date) -> bool:
        """Whether ``day``, a day of this year, is a working day."""
        return day in self.workdays or (day.weekday() < 5 and day not in self.holidays)

    def to_document(self) -> dict[str, list[date]]:
        """The year's two lists, as a file of :func:`read_official_year` holds them."""
        return {"holidays": sorted(self.holidays), "workdays": sorted(self.workdays)}


class WorkingPeriods(NamedTuple):
    """The working periods between two instants, oldest first, as far as the calendar knows the
    days: ``until`` is the end asked for, or the start (local midnight) of the first day of a year
    it does not know, where the periods stop."""

    periods: tuple[tuple[datetime, datetime], ...]
    until: datetime


class _Day(NamedTuple):
    """One local day's working periods as UTC instants, and their total length."""

    periods: tuple[tuple[datetime, datetime], ...]
    length: timedelta


class WorkingCalendar:
    """Working days and hours of one city; adds time limits to instants and measures working time.

    Nothing changes after construction but the official years, which the city may load while it
    runs (:meth:`adopt`); one calendar serves every deadline a process computes, and its caches
    only remember answers.
    """

    def __init__(
        self,
        *,
        timezone: str = "Asia/Shanghai",
        working_hours: Sequence[tuple[time, time]] = DEFAULT_WORKING_HOURS,
        day_overrides: Mapping[date, bool] = _NO_OVERRIDES,
        official_years: Iterable[OfficialYear] = (),
    ) -> None:
        """Build a calendar.

        ``day_overrides`` maps a date to True (working day) or False (day off) and wins over
        everything else. ``official_years`` give whole years as the State Council published them,
        e.g. next year's schedule before chinesecalendar has it; they replace its data.
        """
        self._zone = _zone(timezone)
        self._hours = _validated_hours(working_hours)
        for day, working in day_overrides.items():
            # A datetime key never equals the date it would be looked up by: the override would be lost.
            if not isinstance(day, date) or isinstance(day, datetime) or not isinstance(working, bool):
                raise ValueError(f"day overrides map dates to True or False, got {day!r}: {working!r}")
        self._overrides = dict(day_overrides)
        self._official: dict[int, OfficialYear] = {}
        for official in official_years:
            if official.year in self._official:
                raise ValueError(f"two official calendars for {official.year}")
            self._official[official.year] = official
        self._generation = 0
        self._provisional_from = self._first_provisional_instant()
        self._working_days: dict[date, bool] = {}
        self._days: dict[date, _Day] = {}

    @property
    def working_hours(self) -> tuple[tuple[time, time], ...]:
        """The working periods of a working day, local time."""
        return self._hours

    @property
    def timezone(self) -> str:
        """The city's IANA time zone, where its days and working hours are local."""
        return self._zone.key

    @property
    def generation(self) -> int:
        """How many times the calendar has learnt an official year since it was built: whoever
        keeps deadlines counted on it recomputes them when this changes."""
        return self._generation

    @property
    def official_years(self) -> tuple[OfficialYear, ...]:
        """The official years the city gave it, oldest first."""
        return tuple(self._official[year] for year in sorted(self._official))

    def adopt(self, official: OfficialYear) -> bool:
        """Take ``official`` as its year's working days from now on (the notice is out, or was
        corrected); False when the calendar had exactly these days already. Deadlines counted
        before are left as they are: their keepers recompute them (see ``generation``).
        """
        if self._official.get(official.year) == official:
            return False
        self._official[official.year] = official
        self._provisional_from = self._first_provisional_instant()
        self._working_days.clear()
        self._generation += 1
        return True

    def source_of(self, year: int) -> YearSource:
        """Where the calendar takes the working days of ``year`` from."""
        if year in self._official:
            return YearSource.OFFICIAL
        if year in _NATIONAL_YEARS:
            return YearSource.NATIONAL
        if _NATIONAL_YEARS.stop <= year <= PROVISIONAL_LAST_YEAR:
            return YearSource.PROVISIONAL
        return YearSource.MISSING

    def is_working_day(self, day: date) -> bool:
        """Whether ``day`` (a local date) is a working day; raises CalendarDataMissing when unknown."""
        known = self._working_days.get(day)
        if known is None:
            known = self._look_up(day)
            self._working_days[day] = known
        return known

    def add(self, start: datetime, limit: TimeLimit) -> datetime:
        """The deadline: ``start`` plus ``limit`` in working or calendar time, as an aware UTC instant.

        Working time starting outside working hours starts counting at the next working period;
        a limit that runs out exactly at the end of a period ends there, not at the next period's start.
        """
        return self._advance(_utc(start), timedelta(minutes=limit.minutes), limit.basis)

    def deadline(self, start: datetime, limit: TimeLimit) -> Deadline:
        """``add``, and whether a provisional year counted in the deadline: what a service keeps
        (``add`` serves those who need the instant only, the simulator and the benchmark)."""
        at = self.add(start, limit)
        return Deadline(at, self._counts_provisional(start, at, limit.basis))

    def elapsed(self, start: datetime, end: datetime, basis: TimeBasis) -> timedelta:
        """The working (or calendar) time between two instants; zero when ``end`` is not after ``start``."""
        start, end = _utc(start), _utc(end)
        if end <= start:
            return timedelta(0)
        if basis == TimeBasis.CALENDAR:
            return end - start
        total = timedelta(0)
        day, last = self._local_date(start), self._local_date(end)
        while day <= last:
            periods = self._day(day).periods
            overlap = sum((max(min(e, end) - max(s, start), timedelta(0)) for s, e in periods), timedelta(0))
            # Ask about the day only when it matters, so an instant just past midnight of an unknown
            # year does not fail a measurement that never reaches its working hours.
            if overlap and self.is_working_day(day):
                total += overlap
            day += timedelta(days=1)
        return total

    def working_periods(self, start: datetime, end: datetime) -> WorkingPeriods:
        """The working periods between ``start`` and ``end`` as UTC instants, cut to them: what
        a client sums to count working time itself (the console's "what is left" of a deadline),
        the same periods ``add`` and ``elapsed`` count in.

        A day of a year the calendar does not know stops the answer there instead of failing it:
        the periods before that day are right, and ``until`` says where they stop, so a client
        counts what it can and says the rest is unknown. (``add`` raises: a deadline is never
        guessed, and no deadline is counted here.)
        """
        start, end = _utc(start), _utc(end)
        if end < start:
            raise ValueError("working periods need an end after their start")
        periods: list[tuple[datetime, datetime]] = []
        day, last = self._local_date(start), self._local_date(end)
        while day <= last:
            cut = ((max(s, start), min(e, end)) for s, e in self._day(day).periods)
            inside = [(s, e) for s, e in cut if s < e]
            # As in ``elapsed``: a day is asked about only when its working hours are in the range.
            if inside:
                try:
                    working = self.is_working_day(day)
                except CalendarDataMissing:
                    return WorkingPeriods(tuple(periods), max(start, _combine(day, time(0), self._zone)))
                if working:
                    periods += inside
            day += _ONE_DAY
        return WorkingPeriods(tuple(periods), end)

    def shift(self, deadline: datetime, paused_from: datetime, paused_to: datetime, basis: TimeBasis) -> datetime:
        """The deadline after a suspension (挂账/缓办): moved by the time elapsed while paused.

        The clock stops while a case is suspended, so only the working (or calendar) time of the
        pause counts: a suspension over a weekend moves a working-time deadline by the working
        hours of Friday evening and Monday morning only. Returns an aware UTC instant.
        """
        if _utc(paused_to) < _utc(paused_from):
            raise ValueError("a suspension cannot end before it starts")
        paused = self.elapsed(paused_from, paused_to, basis)
        if not paused:
            return _utc(deadline)
        return self._advance(_utc(deadline), paused, basis)

    def shifted(self, deadline: Deadline, paused_from: datetime, paused_to: datetime, basis: TimeBasis) -> Deadline:
        """``shift``: provisional when ``deadline`` was, or when a provisional year counted in the
        pause or in the move."""
        at = self.shift(deadline.at, paused_from, paused_to, basis)
        provisional = (
            deadline.provisional
            or self._counts_provisional(paused_from, paused_to, basis)
            or (at != deadline.at and self._counts_provisional(deadline.at, at, basis))
        )
        return Deadline(at, provisional)

    def _counts_provisional(self, start: datetime, end: datetime, basis: TimeBasis) -> bool:
        """Whether working time counted from ``start`` to ``end`` may have asked about a day of a
        provisional year: any local day between them is in one (a little cautious: a day asked
        about only outside its working hours counts too). Calendar time asks about no day."""
        # Most deadlines end before the first provisional year: one comparison. Measured per
        # filing deadline: ``add`` 3.7 µs, ``deadline`` 4.4 µs; 8 µs when it looked at the years.
        if basis is TimeBasis.CALENDAR or self._provisional_from is None or end < self._provisional_from:
            return False
        first, last = self._local_date(_utc(start)).year, self._local_date(_utc(end)).year
        return any(self.source_of(year) is YearSource.PROVISIONAL for year in range(first, last + 1))

    def _first_provisional_instant(self) -> datetime | None:
        """The first instant of the first provisional year (local midnight of its 1 January), or
        None when no year is provisional."""
        years = range(_NATIONAL_YEARS.stop, PROVISIONAL_LAST_YEAR + 1)
        first = next((year for year in years if year not in self._official), None)
        return None if first is None else _combine(date(first, 1, 1), time(0), self._zone)

    def _advance(self, start: datetime, duration: timedelta, basis: TimeBasis) -> datetime:
        if basis == TimeBasis.CALENDAR:
            return start + duration
        remaining = duration
        day = self._local_date(start)
        while True:
            periods, length = self._day(day)
            if periods and start < periods[-1][1] and self.is_working_day(day):
                # Whole days at once: a five-day limit costs a handful of steps, not thousands.
                if start <= periods[0][0] and remaining > length:
                    remaining -= length
                else:
                    for period_start, period_end in periods:
                        begin = max(period_start, start)
                        if begin >= period_end:
                            continue
                        if remaining <= period_end - begin:
                            return begin + remaining
                        remaining -= period_end - begin
            day += timedelta(days=1)

    def _day(self, day: date) -> _Day:
        known = self._days.get(day)
        if known is None:
            bounds = ((_combine(day, start, self._zone), _combine(day, end, self._zone)) for start, end in self._hours)
            # A period swallowed by a daylight-saving jump has no length; none in Asia/Shanghai.
            periods = tuple((s, e) for s, e in bounds if e > s)
            known = _Day(periods, sum((e - s for s, e in periods), timedelta(0)))
            self._days[day] = known
        return known

    def _look_up(self, day: date) -> bool:
        if day in self._overrides:
            return self._overrides[day]
        source = self.source_of(day.year)
        if source is YearSource.OFFICIAL:
            return self._official[day.year].is_working_day(day)
        if source is YearSource.NATIONAL:
            return bool(chinese_calendar.is_workday(day))
        if source is YearSource.PROVISIONAL:
            return day.weekday() < 5 and day not in statutory_days_off(day.year)
        raise CalendarDataMissing(day.year)

    def _local_date(self, instant: datetime) -> date:
        return instant.astimezone(self._zone).date()


def load_calendar(path: Path) -> WorkingCalendar:
    """Build the calendar described by the YAML file at ``path`` (format in the module docstring).

    Raises ValueError naming the file and the offending entry when the file is not valid.
    """
    document = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)
    try:
        return _from_document(document)
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None


def read_official_year(year: int, path: Path) -> OfficialYear:
    """The official days of ``year`` in the YAML file at ``path``: its two lists, as under a year
    of ``covered_years``::

        holidays: [2027-01-01, 2027-02-05, 2027-02-08]   # days off besides Saturdays and Sundays
        workdays: [2027-02-20]                           # Saturdays or Sundays worked (调休)

    Raises ValueError naming the file and the offending entry when the file is not valid.
    """
    document = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)
    try:
        return _official_year(year, document, str(year))
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None


class OfficialYears:
    """The official years a city loaded while running, one file per year (``2027.yaml``, as
    :func:`read_official_year` reads it) in a folder that every process of the city reads — on
    the data volume they share, as they share photos — so each learns a year that any of them,
    or the command line, loaded."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def save(self, official: OfficialYear) -> Path:
        """Write ``official`` as its year's file, whole or not at all: a process reading the
        folder meanwhile finds the old file or the new one, never half of one."""
        self.folder.mkdir(parents=True, exist_ok=True)
        text = yaml.safe_dump(official.to_document(), default_flow_style=None, sort_keys=True)
        with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=self.folder, suffix=".tmp", delete=False) as file:
            file.write(text)
        path = self.folder / f"{official.year}.yaml"
        os.replace(file.name, path)
        return path

    def version(self) -> tuple[tuple[str, int], ...]:
        """What the folder holds, in a few system calls (each year file's name and modification
        time): a watcher reads the files again only when this changes."""
        if not self.folder.is_dir():
            return ()
        return tuple(sorted((path.name, path.stat().st_mtime_ns) for path in self._files()))

    def read(self) -> list[OfficialYear]:
        """Every year in the folder, oldest first; ValueError naming the file when one is not valid."""
        if not self.folder.is_dir():
            return []
        return [read_official_year(int(path.stem), path) for path in sorted(self._files())]

    def _files(self) -> list[Path]:
        return [path for path in self.folder.iterdir() if _YEAR_FILE.fullmatch(path.name)]


_TOP_KEYS = frozenset({"timezone", "working_hours", "overrides", "covered_years"})
_YEAR_KEYS = frozenset({"holidays", "workdays"})
_YEAR_FILE = re.compile(r"[0-9]{4}\.yaml")
_PERIOD = re.compile(r"(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})")
_DAY_KINDS = {"work": True, "off": False}


def _from_document(document: object) -> WorkingCalendar:
    top = _mapping(document, "the file")
    _no_unknown_keys(top, _TOP_KEYS, "the file")
    timezone = top.get("timezone", "Asia/Shanghai")
    if not isinstance(timezone, str):
        raise ValueError(f"timezone: expected a zone name such as Asia/Shanghai, got {timezone!r}")
    hours = top.get("working_hours", [f"{start:%H:%M}-{end:%H:%M}" for start, end in DEFAULT_WORKING_HOURS])
    if not isinstance(hours, list):
        raise ValueError(f"working_hours: expected a list such as ['08:30-12:00', '14:30-18:00'], got {hours!r}")
    covered = _mapping(top.get("covered_years", {}), "covered_years")
    overrides: dict[date, bool] = {}
    for key, kind in _mapping(top.get("overrides", {}), "overrides").items():
        day = _date(key, "overrides")
        if kind not in _DAY_KINDS:
            raise ValueError(f"overrides: {day}: expected 'off' or 'work', got {kind!r}")
        overrides[day] = _DAY_KINDS[kind]
    return WorkingCalendar(
        timezone=timezone,
        working_hours=[_period(text, "working_hours") for text in hours],
        day_overrides=overrides,
        official_years=[_official_year(year, entry, f"covered_years: {year}") for year, entry in covered.items()],
    )


def _official_year(year: object, entry: object, where: str) -> OfficialYear:
    if not isinstance(year, int) or isinstance(year, bool) or not 1 <= year <= 9999:
        raise ValueError(f"{where}: expected a year such as 2027, got {year!r}")
    days = _mapping(entry, where)
    _no_unknown_keys(days, _YEAR_KEYS, where)
    missing = sorted(_YEAR_KEYS - days.keys())
    if missing:
        raise ValueError(f"{where}: missing {', '.join(missing)} (write [] when there are none)")
    holidays = _dates(days["holidays"], f"{where}: holidays")
    workdays = _dates(days["workdays"], f"{where}: workdays")
    try:
        return OfficialYear(year, holidays, workdays)
    except ValueError as error:
        raise ValueError(f"{where}: {error}") from None


def _mapping(value: object, where: str) -> dict[Any, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"{where}: expected a mapping, got {value!r}")
    return value


def _no_unknown_keys(value: Mapping[Any, Any], allowed: frozenset[str], where: str) -> None:
    unknown = [key for key in value if key not in allowed]
    if unknown:
        raise ValueError(f"{where}: unknown keys {unknown!r} (allowed: {', '.join(sorted(allowed))})")


def _dates(value: object, where: str) -> frozenset[date]:
    if not isinstance(value, list):
        raise ValueError(f"{where}: expected a list of dates, got {value!r}")
    return frozenset(_date(item, where) for item in value)


def _date(value: object, where: str) -> date:
    # YAML reads an unquoted 2026-12-31 as a date; a quoted one arrives as text.
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    elif isinstance(value, date) and not isinstance(value, datetime):
        return value
    raise ValueError(f"{where}: expected a date such as 2026-12-31, got {value!r}")


def _period(text: object, where: str) -> tuple[time, time]:
    match = _PERIOD.fullmatch(text.replace(" ", "")) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"{where}: expected a period such as '08:30-12:00', got {text!r}")
    hour_from, minute_from, hour_to, minute_to = (int(part) for part in match.groups())
    try:
        return time(hour_from, minute_from), time(hour_to, minute_to)
    except ValueError:
        raise ValueError(f"{where}: {text!r} is not a time of day range") from None


def _validated_hours(hours: Sequence[tuple[time, time]]) -> tuple[tuple[time, time], ...]:
    if not hours:
        raise ValueError("working_hours: at least one working period is needed")
    if any(start.tzinfo is not None or end.tzinfo is not None for start, end in hours):
        raise ValueError("working_hours: give local times of day without a timezone")
    periods = sorted(hours)
    for start, end in periods:
        if end <= start:
            raise ValueError(f"working_hours: {start:%H:%M}-{end:%H:%M} must end after it starts, on the same day")
    for (start, end), (next_start, next_end) in pairwise(periods):
        if next_start < end:
            raise ValueError(
                f"working_hours: {start:%H:%M}-{end:%H:%M} and {next_start:%H:%M}-{next_end:%H:%M} overlap"
            )
    return tuple(periods)


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"timezone: unknown zone {name!r}; use an IANA name such as Asia/Shanghai") from None


def _combine(day: date, moment: time, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, moment, tzinfo=zone).astimezone(UTC)


def _utc(instant: datetime) -> datetime:
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError("naive datetimes are ambiguous: give a timezone")
    return instant.astimezone(UTC)


class _Loader(yaml.SafeLoader):
    """A safe loader that keeps ``off`` a word: YAML 1.1 would read it (and on/yes/no) as a boolean."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, pattern) for tag, pattern in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
