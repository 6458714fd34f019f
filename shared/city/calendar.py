"""The city's working-time calendar: when a case's time limit (时限) runs out.

Limits are counted in working time — the city's working hours on working days — or, for urgent
categories, in calendar time (24×7). Working days follow the national holiday calendar with its
make-up working days (调休) from the ``chinesecalendar`` package, plus the city's own overrides.
A day for which nobody knows whether it is a working day raises :class:`CalendarDataMissing`:
a guessed deadline would be wrong without anyone noticing.

The overrides file (:func:`load_calendar`) is YAML; every key is optional::

    timezone: Asia/Shanghai                      # an IANA zone; local days and hours live there
    working_hours: ["08:30-12:00", "14:30-18:00"]  # HH:MM-HH:MM periods of one day, not overlapping
    overrides:                                   # local days that differ from the national calendar
      2026-12-31: off                            # "off" (day off) or "work" (working day)
    covered_years:                               # whole years chinesecalendar does not have yet,
      2027:                                      # as published by the State Council
        holidays: [2027-01-01, 2027-02-08]       # days off besides Saturdays and Sundays
        workdays: [2027-02-06]                   # make-up working days on Saturdays or Sundays

In a covered year a day is a working day when it is a weekday not listed in ``holidays`` or a
weekend day listed in ``workdays``; a covered year replaces chinesecalendar's data for that year.
``overrides`` win over both. Both lists of a covered year must be present (``[]`` when empty).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from itertools import pairwise
from pathlib import Path
from types import MappingProxyType
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import chinese_calendar  # type: ignore[import-untyped]  # the package ships no type hints
import yaml

DEFAULT_WORKING_HOURS: tuple[tuple[time, time], ...] = ((time(8, 30), time(12, 0)), (time(14, 30), time(18, 0)))

# The years chinesecalendar has data for; read once because its own lookups rescan its tables.
_NATIONAL_YEARS = range(min(chinese_calendar.holidays).year, max(chinese_calendar.holidays).year + 1)
_NO_OVERRIDES: Mapping[date, bool] = MappingProxyType({})


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


class CalendarDataMissing(LookupError):
    """No calendar data says whether a day of ``year`` is a working day."""

    def __init__(self, year: int) -> None:
        self.year = year
        super().__init__(
            f"no working-day calendar for {year}: chinesecalendar knows {_NATIONAL_YEARS.start}-"
            f"{_NATIONAL_YEARS.stop - 1} only; add {year} under covered_years in the calendar overrides file "
            "(its holidays and make-up workdays as published by the State Council), or upgrade chinesecalendar"
        )


class _Day(NamedTuple):
    """One local day's working periods as UTC instants, and their total length."""

    periods: tuple[tuple[datetime, datetime], ...]
    length: timedelta


class WorkingCalendar:
    """Working days and hours of one city; adds time limits to instants and measures working time.

    Instances are immutable after construction (their caches only remember answers), so one
    calendar can serve every deadline a process computes.
    """

    def __init__(
        self,
        *,
        timezone: str = "Asia/Shanghai",
        working_hours: Sequence[tuple[time, time]] = DEFAULT_WORKING_HOURS,
        day_overrides: Mapping[date, bool] = _NO_OVERRIDES,
        covered_years: Iterable[int] = (),
    ) -> None:
        """Build a calendar.

        ``day_overrides`` maps a date to True (working day) or False (day off) and wins over
        everything else. ``covered_years`` are years whose days are given entirely by the overrides:
        weekdays work and weekends are off unless overridden — e.g. next year's schedule, published
        by the State Council before chinesecalendar has it.
        """
        self._zone = _zone(timezone)
        self._hours = _validated_hours(working_hours)
        for day, working in day_overrides.items():
            # A datetime key never equals the date it would be looked up by: the override would be lost.
            if not isinstance(day, date) or isinstance(day, datetime) or not isinstance(working, bool):
                raise ValueError(f"day overrides map dates to True or False, got {day!r}: {working!r}")
        self._overrides = dict(day_overrides)
        self._covered = frozenset(covered_years)
        for year in self._covered:
            if not isinstance(year, int) or isinstance(year, bool):
                raise ValueError(f"covered years are whole years such as 2027, got {year!r}")
        self._working_days: dict[date, bool] = {}
        self._days: dict[date, _Day] = {}

    @property
    def working_hours(self) -> tuple[tuple[time, time], ...]:
        """The working periods of a working day, local time."""
        return self._hours

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
        if day.year in self._covered:
            return day.weekday() < 5
        if day.year not in _NATIONAL_YEARS:
            raise CalendarDataMissing(day.year)
        return bool(chinese_calendar.is_workday(day))

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


_TOP_KEYS = frozenset({"timezone", "working_hours", "overrides", "covered_years"})
_YEAR_KEYS = frozenset({"holidays", "workdays"})
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
    overrides: dict[date, bool] = {}
    covered: list[int] = []
    for year, entry in _mapping(top.get("covered_years", {}), "covered_years").items():
        if not isinstance(year, int) or isinstance(year, bool) or not 1 <= year <= 9999:
            raise ValueError(f"covered_years: expected a year such as 2027, got {year!r}")
        where = f"covered_years: {year}"
        days = _mapping(entry, where)
        _no_unknown_keys(days, _YEAR_KEYS, where)
        missing = sorted(_YEAR_KEYS - days.keys())
        if missing:
            raise ValueError(f"{where}: missing {', '.join(missing)} (write [] when there are none)")
        holidays = _dates(days["holidays"], f"{where}: holidays", year)
        workdays = _dates(days["workdays"], f"{where}: workdays", year)
        both = sorted(holidays & workdays)
        if both:
            raise ValueError(f"{where}: {both[0]} is listed both as a holiday and as a workday")
        for day in workdays:
            # A weekday works anyway in a covered year: listing one is almost surely a typo.
            if day.weekday() < 5:
                raise ValueError(f"{where}: workdays: {day} is not a Saturday or Sunday")
        overrides.update(dict.fromkeys(holidays, False))
        overrides.update(dict.fromkeys(workdays, True))
        covered.append(year)
    # Local overrides last: they win over the national schedule of a covered year.
    for key, kind in _mapping(top.get("overrides", {}), "overrides").items():
        day = _date(key, "overrides")
        if kind not in _DAY_KINDS:
            raise ValueError(f"overrides: {day}: expected 'off' or 'work', got {kind!r}")
        overrides[day] = _DAY_KINDS[kind]
    return WorkingCalendar(
        timezone=timezone,
        working_hours=[_period(text, "working_hours") for text in hours],
        day_overrides=overrides,
        covered_years=covered,
    )


def _mapping(value: object, where: str) -> dict[Any, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"{where}: expected a mapping, got {value!r}")
    return value


def _no_unknown_keys(value: Mapping[Any, Any], allowed: frozenset[str], where: str) -> None:
    unknown = [key for key in value if key not in allowed]
    if unknown:
        raise ValueError(f"{where}: unknown keys {unknown!r} (allowed: {', '.join(sorted(allowed))})")


def _dates(value: object, where: str, year: int) -> set[date]:
    if not isinstance(value, list):
        raise ValueError(f"{where}: expected a list of dates, got {value!r}")
    days = {_date(item, where) for item in value}
    for day in days:
        if day.year != year:
            raise ValueError(f"{where}: {day} is not in {year}")
    return days


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
