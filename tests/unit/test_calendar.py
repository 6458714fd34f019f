"""The working-time calendar: deadlines over lunch breaks, weekends, holidays and make-up days,
and the provisional years built from the statutory rules before the State Council publishes them.

Holiday facts are 2026's as chinesecalendar 1.11.0 has them (the State Council's schedule):
days off 1-3 Jan, 15-23 Feb (Spring Festival), 4-6 Apr, 1-5 May, 19-21 Jun, 25-27 Sep, 1-7 Oct;
make-up working days Sun 4 Jan, Sat 14 Feb, Sat 28 Feb, Sat 9 May, Sun 20 Sep, Sat 10 Oct.
chinesecalendar 1.11.0 knows 2004-2026: 2027 and later are provisional.
"""

from __future__ import annotations

import textwrap
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import chinese_calendar  # type: ignore[import-untyped]  # the package ships no type hints
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from shared.city.calendar import (
    CalendarDataMissing,
    Deadline,
    OfficialYear,
    OfficialYears,
    TimeBasis,
    TimeLimit,
    WorkingCalendar,
    YearSource,
    load_calendar,
    read_official_year,
    statutory_days_off,
)
from shared.core.errors import DependencyMissing

SHANGHAI = ZoneInfo("Asia/Shanghai")
CITY = WorkingCalendar()


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """A local instant in the city."""
    return datetime(year, month, day, hour, minute, tzinfo=SHANGHAI)


def working(minutes: int) -> TimeLimit:
    return TimeLimit(minutes, TimeBasis.WORKING)


def calendar_time(minutes: int) -> TimeLimit:
    return TimeLimit(minutes, TimeBasis.CALENDAR)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "calendar.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


# 2026-03-09..13 is an ordinary Monday-to-Friday week.


def test_a_limit_inside_one_morning_ends_the_same_morning_in_utc() -> None:
    deadline = CITY.add(at(2026, 3, 10, 9, 0), working(30))
    assert deadline == datetime(2026, 3, 10, 1, 30, tzinfo=UTC)
    assert deadline.tzinfo is UTC


def test_the_lunch_break_does_not_count() -> None:
    assert CITY.add(at(2026, 3, 10, 11, 30), working(60)) == at(2026, 3, 10, 15, 0)


def test_a_limit_starting_during_lunch_starts_counting_at_14_30() -> None:
    assert CITY.add(at(2026, 3, 10, 12, 30), working(30)) == at(2026, 3, 10, 15, 0)


def test_a_limit_starting_before_8_30_starts_counting_at_8_30() -> None:
    assert CITY.add(at(2026, 3, 10, 7, 0), working(30)) == at(2026, 3, 10, 9, 0)


def test_a_limit_starting_after_18_00_starts_counting_next_morning() -> None:
    assert CITY.add(at(2026, 3, 10, 19, 0), working(30)) == at(2026, 3, 11, 9, 0)


def test_a_limit_ending_with_a_period_ends_there_not_at_the_next_period() -> None:
    assert CITY.add(at(2026, 3, 10, 17, 30), working(30)) == at(2026, 3, 10, 18, 0)
    assert CITY.add(at(2026, 3, 10, 11, 30), working(30)) == at(2026, 3, 10, 12, 0)
    assert CITY.add(at(2026, 3, 10, 8, 30), working(420)) == at(2026, 3, 10, 18, 0)


def test_instants_in_any_timezone_are_read_as_the_same_moment() -> None:
    # 01:00 UTC is 09:00 in the city.
    assert CITY.add(datetime(2026, 3, 10, 1, 0, tzinfo=UTC), working(30)) == at(2026, 3, 10, 9, 30)


def test_a_weekend_does_not_count() -> None:
    # Friday 17:00 + 2 h: one hour on Friday, one on Monday.
    assert CITY.add(at(2026, 3, 13, 17, 0), working(120)) == at(2026, 3, 16, 9, 30)


def test_chinesecalendar_2026_national_day_and_its_make_up_days() -> None:
    assert [CITY.is_working_day(date(2026, 10, day)) for day in range(1, 12)] == [
        False,  # 1-7 Oct: National Day (with Mid-Autumn 25-27 Sep just before)
        False,
        False,
        False,
        False,
        False,
        False,
        True,  # Thu 8 Oct
        True,  # Fri 9 Oct
        True,  # Sat 10 Oct: make-up working day
        False,  # Sun 11 Oct
    ]
    assert CITY.is_working_day(date(2026, 9, 20))  # a Sunday, made up for National Day
    assert not CITY.is_working_day(date(2026, 9, 25))  # Friday, Mid-Autumn Festival


def test_the_eve_of_national_day_waits_for_8_october() -> None:
    assert CITY.add(at(2026, 9, 30, 17, 0), working(120)) == at(2026, 10, 8, 9, 30)


def test_a_make_up_saturday_is_a_working_day() -> None:
    # Fri 9 Oct 17:00 + 2 h ends on Saturday 10 Oct, a make-up working day.
    assert CITY.add(at(2026, 10, 9, 17, 0), working(120)) == at(2026, 10, 10, 9, 30)
    # Fri 13 Feb 17:00 + 2 h ends on Saturday 14 Feb, made up for the Spring Festival.
    assert CITY.add(at(2026, 2, 13, 17, 0), working(120)) == at(2026, 2, 14, 9, 30)


def test_the_spring_festival_2026_is_nine_days_off() -> None:
    assert not any(CITY.is_working_day(date(2026, 2, day)) for day in range(15, 24))
    # Saturday 14 Feb is the last working day before it, Tuesday 24 Feb the first after.
    assert CITY.add(at(2026, 2, 14, 17, 0), working(120)) == at(2026, 2, 24, 9, 30)


def test_five_working_days_end_at_the_same_time_five_working_days_later() -> None:
    assert CITY.add(at(2026, 3, 9, 10, 0), working(5 * 420)) == at(2026, 3, 16, 10, 0)
    # Across National Day: 30 Sep, 8, 9, 10 (Saturday) and 12 Oct are the five days.
    assert CITY.add(at(2026, 9, 30, 10, 0), working(5 * 420)) == at(2026, 10, 13, 10, 0)


def test_urgent_limits_run_around_the_clock_through_holidays() -> None:
    assert CITY.add(at(2026, 10, 1, 23, 0), calendar_time(120)) == at(2026, 10, 2, 1, 0)
    assert CITY.add(at(2026, 9, 30, 17, 0), calendar_time(72 * 60)) == at(2026, 10, 3, 17, 0)


def test_elapsed_counts_working_time_only() -> None:
    assert CITY.elapsed(at(2026, 3, 10, 11, 0), at(2026, 3, 10, 15, 0), TimeBasis.WORKING) == timedelta(minutes=90)
    assert CITY.elapsed(at(2026, 9, 30, 17, 0), at(2026, 10, 8, 9, 0), TimeBasis.WORKING) == timedelta(minutes=90)
    assert CITY.elapsed(at(2026, 9, 30, 17, 0), at(2026, 10, 8, 9, 0), TimeBasis.CALENDAR) == timedelta(
        days=7, hours=16
    )
    assert CITY.elapsed(at(2026, 3, 10, 15, 0), at(2026, 3, 10, 11, 0), TimeBasis.WORKING) == timedelta(0)


def test_working_periods_skip_a_holiday_and_keep_a_make_up_saturday() -> None:
    # Friday 13 February 2026, the make-up Saturday 14th, then the Spring Festival (15-23 off),
    # and the make-up Saturday 28th; cut to the instants asked for.
    known = CITY.working_periods(at(2026, 2, 13, 10, 0), at(2026, 2, 28, 9, 0))
    assert known.periods == (
        (at(2026, 2, 13, 10, 0), at(2026, 2, 13, 12, 0)),
        (at(2026, 2, 13, 14, 30), at(2026, 2, 13, 18, 0)),
        (at(2026, 2, 14, 8, 30), at(2026, 2, 14, 12, 0)),
        (at(2026, 2, 14, 14, 30), at(2026, 2, 14, 18, 0)),
        *(
            (at(2026, 2, day, start_hour, start_minute), at(2026, 2, day, end_hour))
            for day in (24, 25, 26, 27)
            for start_hour, start_minute, end_hour in ((8, 30, 12), (14, 30, 18))
        ),
        (at(2026, 2, 28, 8, 30), at(2026, 2, 28, 9, 0)),
    )
    assert all(start.tzinfo is UTC and end.tzinfo is UTC for start, end in known.periods)
    assert known.until == at(2026, 2, 28, 9, 0)
    assert CITY.working_periods(at(2026, 10, 1), at(2026, 10, 8)).periods == ()
    assert CITY.working_periods(at(2026, 3, 10, 9), at(2026, 3, 10, 9)).periods == ()
    with pytest.raises(ValueError, match="end after their start"):
        CITY.working_periods(at(2026, 3, 10, 9), at(2026, 3, 10, 8))


def test_working_periods_stop_where_the_calendar_stops_knowing_the_days() -> None:
    # 2100 is the last provisional year: Thursday 30 and Friday 31 December work, 2101 is unknown.
    known = CITY.working_periods(at(2100, 12, 30, 12, 0), at(2101, 1, 10))
    assert known.periods == (
        (at(2100, 12, 30, 14, 30), at(2100, 12, 30, 18, 0)),
        (at(2100, 12, 31, 8, 30), at(2100, 12, 31, 12, 0)),
        (at(2100, 12, 31, 14, 30), at(2100, 12, 31, 18, 0)),
    )
    assert known.until == at(2101, 1, 1)
    # Up to the first hour of 2101 nothing of it is needed; from inside it, nothing is known.
    assert CITY.working_periods(at(2100, 12, 31, 17), at(2101, 1, 1, 1)).until == at(2101, 1, 1, 1)
    assert CITY.working_periods(at(2101, 1, 1, 10), at(2101, 1, 5)) == ((), at(2101, 1, 1, 10))
    # Loaded, the year is known like any other (say Saturday 1 January worked, Monday 3rd off).
    notice = OfficialYear(2101, frozenset({date(2101, 1, 3)}), frozenset({date(2101, 1, 1)}))
    calendar = WorkingCalendar(official_years=[notice])
    assert calendar.working_periods(at(2101, 1, 1), at(2101, 1, 4)) == (
        ((at(2101, 1, 1, 8, 30), at(2101, 1, 1, 12, 0)), (at(2101, 1, 1, 14, 30), at(2101, 1, 1, 18, 0))),
        at(2101, 1, 4),
    )


def test_the_calendar_names_its_time_zone(tmp_path: Path) -> None:
    assert CITY.timezone == "Asia/Shanghai"
    assert load_calendar(write(tmp_path, "timezone: Asia/Urumqi\n")).timezone == "Asia/Urumqi"


def test_a_suspension_over_a_weekend_moves_the_deadline_by_working_time_only() -> None:
    deadline = at(2026, 3, 16, 10, 0)
    paused_from, paused_to = at(2026, 3, 13, 17, 0), at(2026, 3, 16, 9, 0)
    # Friday 17:00-18:00 and Monday 08:30-09:00 are the working time lost: 90 minutes.
    assert CITY.shift(deadline, paused_from, paused_to, TimeBasis.WORKING) == at(2026, 3, 16, 11, 30)
    assert CITY.shift(deadline, paused_from, paused_to, TimeBasis.CALENDAR) == at(2026, 3, 19, 2, 0)
    # A pause wholly outside working hours costs nothing.
    assert CITY.shift(deadline, at(2026, 3, 14, 9, 0), at(2026, 3, 15, 9, 0), TimeBasis.WORKING) == deadline
    with pytest.raises(ValueError, match="cannot end before it starts"):
        CITY.shift(deadline, paused_to, paused_from, TimeBasis.WORKING)


def test_a_deadline_in_a_year_the_calendar_cannot_serve_is_an_error_naming_the_year_and_the_fix() -> None:
    with pytest.raises(CalendarDataMissing, match=r"2101.*calendar load 2101") as raised:
        CITY.add(at(2100, 12, 31, 17, 0), working(120))
    assert raised.value.year == 2101
    # A 503 at the edge, and a business rule's refusal to a consumer: never retried into the dead letters.
    assert isinstance(raised.value, DependencyMissing)
    assert raised.value.status == 503
    with pytest.raises(CalendarDataMissing, match="2003"):
        CITY.is_working_day(date(2003, 12, 31))
    # A deadline that never needs 2101 is fine, even when ending on the last instant of 2100.
    assert CITY.add(at(2100, 12, 31, 17, 0), working(60)) == at(2100, 12, 31, 18, 0)


def test_a_local_override_wins_over_every_year() -> None:
    calendar = WorkingCalendar(day_overrides={date(2027, 1, 1): True, date(2101, 1, 1): True})
    assert calendar.add(at(2026, 12, 31, 17, 0), working(120)) == at(2027, 1, 1, 9, 30)
    assert calendar.is_working_day(date(2101, 1, 1))
    with pytest.raises(CalendarDataMissing):
        calendar.is_working_day(date(2101, 1, 2))


def test_a_year_covered_by_the_overrides_file_gives_deadlines(tmp_path: Path) -> None:
    calendar = load_calendar(
        write(
            tmp_path,
            """
            covered_years:
              2027:
                holidays: [2027-01-01]
                workdays: []
            """,
        )
    )
    # Friday 1 Jan 2027 is New Year's Day and the weekend follows: Monday 4 Jan.
    assert calendar.add(at(2026, 12, 31, 17, 0), working(120)) == at(2027, 1, 4, 9, 30)


def test_a_local_override_makes_a_day_off(tmp_path: Path) -> None:
    calendar = load_calendar(write(tmp_path, "overrides:\n  2026-03-16: off\n"))
    assert not calendar.is_working_day(date(2026, 3, 16))
    assert calendar.add(at(2026, 3, 13, 17, 0), working(120)) == at(2026, 3, 17, 9, 30)
    # It wins over the national calendar in the other direction too.
    assert WorkingCalendar(day_overrides={date(2026, 10, 8): False}).add(at(2026, 9, 30, 17, 0), working(120)) == at(
        2026, 10, 9, 9, 30
    )


def test_the_full_file_format_loads(tmp_path: Path) -> None:
    calendar = load_calendar(
        write(
            tmp_path,
            """
            timezone: Asia/Urumqi
            working_hours: ["10:00-13:30", "16:00-19:30"]
            overrides:
              2027-02-08: work
            covered_years:
              2027:
                holidays: [2027-02-08, 2027-02-09]
                workdays: [2027-02-06]
            """,
        )
    )
    assert calendar.is_working_day(date(2027, 2, 6))  # a Saturday made up
    assert calendar.is_working_day(date(2027, 2, 8))  # the local override wins over the covered year
    assert not calendar.is_working_day(date(2027, 2, 9))
    assert not calendar.is_working_day(date(2027, 2, 7))  # an ordinary Sunday
    urumqi = ZoneInfo("Asia/Urumqi")  # UTC+6
    assert calendar.add(datetime(2026, 3, 10, 13, 0, tzinfo=urumqi), working(60)) == datetime(
        2026, 3, 10, 16, 30, tzinfo=urumqi
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- 2026-12-31", "expected a mapping"),
        ("holidays: []", "unknown keys"),
        ("timezone: Mars/Olympus_Mons", "unknown zone"),
        ("working_hours: '08:30-12:00'", "expected a list"),
        ("working_hours: []", "at least one working period"),
        ("working_hours: ['8.30-12']", "expected a period"),
        ("working_hours: ['08:30-24:00']", "not a time of day range"),
        ("working_hours: ['12:00-08:30']", "must end after it starts"),
        ("working_hours: ['08:30-12:00', '11:30-14:00']", "overlap"),
        ("overrides: {2026-12-31: holiday}", "expected 'off' or 'work'"),
        ("overrides: {2026-12-31: false}", "expected 'off' or 'work'"),
        ("overrides: {tomorrow: off}", "expected a date"),
        ("covered_years: {next: {holidays: [], workdays: []}}", "expected a year"),
        ("covered_years: {2027: [2027-01-01]}", "expected a mapping"),
        ("covered_years: {2027: {holidays: [2027-01-01]}}", "missing workdays"),
        ("covered_years: {2027: {holidays: [], workdays: [], extra: []}}", "unknown keys"),
        ("covered_years: {2027: {holidays: [2028-01-01], workdays: []}}", "not in 2027"),
        ("covered_years: {2027: {holidays: [], workdays: [2027-02-08]}}", "not a Saturday or Sunday"),
        ("covered_years: {2027: {holidays: [2027-02-06], workdays: [2027-02-06]}}", "both"),
    ],
)
def test_invalid_files_are_refused_with_the_file_and_the_reason(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ValueError, match=message) as raised:
        load_calendar(path)
    assert str(path) in str(raised.value)


def test_invalid_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="overlap"):
        WorkingCalendar(working_hours=[(time(8), time(12)), (time(11), time(13))])
    with pytest.raises(ValueError, match="dates to True or False"):
        WorkingCalendar(day_overrides={datetime(2026, 3, 16): False})
    for minutes in (0, -30, True):
        with pytest.raises(ValueError, match="positive whole number"):
            TimeLimit(minutes, TimeBasis.WORKING)
    with pytest.raises(ValueError, match="naive"):
        CITY.add(datetime(2026, 3, 10, 9), working(30))
    with pytest.raises(ValueError, match="naive"):
        CITY.elapsed(at(2026, 3, 10, 9), datetime(2026, 3, 10, 10), TimeBasis.WORKING)


# --- provisional years: the statutory rules before the notice ----------------------------------


def day(month: int, day: int, year: int = 2027) -> date:
    return date(year, month, day)


def test_2027_by_the_statutory_rules_and_the_lunar_calendar() -> None:
    # The Spring Festival is Saturday 6 February 2027 (its eve Friday 5th, the third day Monday
    # 8th), Qingming Monday 5 April, the Dragon Boat Festival Wednesday 9 June, the Mid-Autumn
    # Festival Wednesday 15 September. Holidays on a Saturday or Sunday are made up on the next
    # free weekday: the 1st and 2nd days of the Spring Festival on Tuesday 9 and Wednesday 10
    # February, Labour Day (Saturday 1, Sunday 2 May) on Monday 3 and Tuesday 4 May, National Day's
    # 2nd and 3rd on Monday 4 and Tuesday 5 October.
    assert statutory_days_off(2027) == {
        day(1, 1),
        *(day(2, d) for d in (5, 8, 9, 10)),
        day(4, 5),
        day(5, 3),
        day(5, 4),
        day(6, 9),
        day(9, 15),
        *(day(10, d) for d in (1, 4, 5)),
    }


def test_2028_when_mid_autumn_falls_on_national_day() -> None:
    # New Year's Day is a Saturday (Monday 3 January off); the Spring Festival is Wednesday 26
    # January (eve Tuesday 25th); Qingming Tuesday 4 April; the Dragon Boat Festival Sunday 28
    # May (Monday 29th off); the Mid-Autumn Festival Tuesday 3 October, National Day's third day:
    # the lost day and Sunday 1 October are made up on Wednesday 4 and Thursday 5.
    assert statutory_days_off(2028) == {
        day(1, 3, 2028),
        *(day(1, d, 2028) for d in (25, 26, 27, 28)),
        day(4, 4, 2028),
        day(5, 1, 2028),
        day(5, 2, 2028),
        day(5, 29, 2028),
        *(day(10, d, 2028) for d in (2, 3, 4, 5)),
    }


def test_a_provisional_year_has_every_weekend_off_and_no_make_up_days() -> None:
    assert CITY.source_of(2027) is YearSource.PROVISIONAL
    first = date(2027, 1, 1)
    days = [first + timedelta(days=n) for n in range(365)]
    assert not any(CITY.is_working_day(d) for d in days if d.weekday() >= 5)
    assert {d for d in days if d.weekday() < 5 and not CITY.is_working_day(d)} == statutory_days_off(2027)


@pytest.mark.parametrize("year", [2025, 2026])
def test_the_rules_in_force_since_2025_give_a_day_off_the_notices_gave_too(year: int) -> None:
    # The notices add bridge days and make-up Saturdays around the statutory ones, never remove
    # one: every day the rules give off was off in the published years.
    assert all(not chinese_calendar.is_workday(d) for d in statutory_days_off(year))


def test_a_deadline_counted_on_a_provisional_year_says_so() -> None:
    five_days = working(5 * 420)
    # Monday 28 December 2026, five working days: 29, 30, 31 December, then New Year's Day and
    # the weekend off, Monday 4 and Tuesday 5 January 2027 at 09:00.
    deadline = CITY.deadline(at(2026, 12, 28, 9, 0), five_days)
    assert deadline == Deadline(at(2027, 1, 5, 9, 0), provisional=True)
    assert deadline.at == CITY.add(at(2026, 12, 28, 9, 0), five_days)
    assert CITY.deadline(at(2026, 12, 21, 9, 0), five_days) == (at(2026, 12, 28, 9, 0), False)
    # Around the clock, no day is asked about: never provisional.
    assert not CITY.deadline(at(2026, 12, 31, 20, 0), calendar_time(24 * 60)).provisional


def test_a_suspension_is_provisional_when_its_pause_or_its_move_is() -> None:
    official = Deadline(at(2026, 12, 30, 10, 0), provisional=False)
    # Paused on Tuesday 29 December for an hour: moved within 2026.
    within = CITY.shifted(official, at(2026, 12, 29, 9, 0), at(2026, 12, 29, 10, 0), TimeBasis.WORKING)
    assert within == (at(2026, 12, 30, 11, 0), False)
    # Paused two working days: the move reaches 2027.
    into = CITY.shifted(official, at(2026, 12, 28, 9, 0), at(2026, 12, 30, 9, 0), TimeBasis.WORKING)
    assert into == (at(2027, 1, 4, 10, 0), True)
    # A deadline that was provisional stays so.
    assert CITY.shifted(
        official._replace(provisional=True), at(2026, 12, 29, 9, 0), at(2026, 12, 29, 9, 0), TimeBasis.WORKING
    ).provisional


NOTICE_2027 = OfficialYear(2027, frozenset({day(1, 1), day(1, 4)}), frozenset({day(1, 9)}))


def test_adopting_the_official_year_replaces_the_provisional_one() -> None:
    calendar = WorkingCalendar()
    start, five_days = at(2026, 12, 28, 9, 0), working(5 * 420)
    assert calendar.deadline(start, five_days) == (at(2027, 1, 5, 9, 0), True)
    assert calendar.adopt(NOTICE_2027)
    assert calendar.generation == 1
    assert calendar.source_of(2027) is YearSource.OFFICIAL
    assert calendar.official_years == (NOTICE_2027,)
    # Monday 4 January is off as well: Wednesday 6th. Saturday 9th is worked.
    assert calendar.deadline(start, five_days) == (at(2027, 1, 6, 9, 0), False)
    assert calendar.is_working_day(day(1, 9))
    # The same notice again changes nothing; a corrected one does.
    assert not calendar.adopt(NOTICE_2027)
    assert calendar.generation == 1
    assert calendar.adopt(OfficialYear(2027, frozenset({day(1, 1)}), frozenset()))
    assert calendar.generation == 2
    assert calendar.deadline(start, five_days) == (at(2027, 1, 5, 9, 0), False)


def test_a_loaded_year_replaces_the_files_and_local_overrides_still_win(tmp_path: Path) -> None:
    calendar = load_calendar(
        write(
            tmp_path,
            """
            overrides: {2027-01-04: work}
            covered_years: {2027: {holidays: [2027-01-01, 2027-01-05], workdays: []}}
            """,
        )
    )
    assert not calendar.is_working_day(day(1, 5))
    calendar.adopt(NOTICE_2027)
    assert calendar.is_working_day(day(1, 5))
    assert calendar.is_working_day(day(1, 4))  # the city's own override


def test_official_years_are_kept_a_file_each_and_read_back(tmp_path: Path) -> None:
    years = OfficialYears(tmp_path / "calendar")
    assert (years.read(), years.version()) == ([], ())
    path = years.save(NOTICE_2027)
    assert path == tmp_path / "calendar" / "2027.yaml"
    assert read_official_year(2027, path) == NOTICE_2027
    notice_2028 = OfficialYear(2028, frozenset({date(2028, 1, 3)}), frozenset())
    years.save(notice_2028)
    assert years.read() == [NOTICE_2027, notice_2028]
    seen = years.version()
    years.save(OfficialYear(2028, frozenset(), frozenset()))
    assert years.version() != seen
    assert sorted(p.name for p in (tmp_path / "calendar").iterdir()) == ["2027.yaml", "2028.yaml"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("holidays: [2027-01-01]", "missing workdays"),
        ("holidays: [2028-01-01]\nworkdays: []", "not in 2027"),
        ("holidays: []\nworkdays: [2027-01-04]", "not a Saturday or Sunday"),
        ("holidays: [2027-01-09]\nworkdays: [2027-01-09]", "both"),
        ("- 2027-01-01", "expected a mapping"),
    ],
)
def test_an_invalid_year_file_is_refused_with_the_file_and_the_reason(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "2027.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=message) as raised:
        read_official_year(2027, path)
    assert str(path) in str(raised.value)


# Limits up to five working days from instants 2004-2026, far enough from 2027 that no deadline or
# moved deadline needs a year chinesecalendar does not have.
limits = st.builds(TimeLimit, st.integers(1, 5 * 420), st.sampled_from(TimeBasis))
instants = st.datetimes(datetime(2004, 1, 1), datetime(2026, 11, 15), timezones=st.just(SHANGHAI))


@st.composite
def working_instants(draw: st.DrawFn) -> datetime:
    """An instant inside the city's working hours on a working day."""
    day = draw(st.dates(date(2004, 1, 1), date(2026, 11, 15)))
    assume(CITY.is_working_day(day))
    start, end = draw(st.sampled_from([(time(8, 30), time(12)), (time(14, 30), time(18))]))
    offset = draw(st.integers(0, (end.hour * 60 + end.minute - start.hour * 60 - start.minute) * 60_000_000 - 1))
    return datetime.combine(day, start, tzinfo=SHANGHAI) + timedelta(microseconds=offset)


@given(working_instants(), limits)
def test_elapsed_up_to_the_deadline_is_the_limit(start: datetime, limit: TimeLimit) -> None:
    assert CITY.elapsed(start, CITY.add(start, limit), limit.basis) == timedelta(minutes=limit.minutes)


@given(instants, limits)
def test_elapsed_up_to_the_deadline_is_the_limit_from_any_instant(start: datetime, limit: TimeLimit) -> None:
    assert CITY.elapsed(start, CITY.add(start, limit), limit.basis) == timedelta(minutes=limit.minutes)


@given(instants, st.timedeltas(timedelta(0), timedelta(days=20)))
def test_the_working_periods_add_up_to_the_working_time_elapsed(start: datetime, span: timedelta) -> None:
    known = CITY.working_periods(start, start + span)
    assert known.until == start + span
    assert sum((end - begin for begin, end in known.periods), timedelta(0)) == CITY.elapsed(
        start, start + span, TimeBasis.WORKING
    )


@given(instants, limits, st.floats(0, 1), st.timedeltas(timedelta(0), timedelta(days=10)))
def test_a_suspension_keeps_the_time_that_was_left(
    start: datetime, limit: TimeLimit, fraction: float, pause: timedelta
) -> None:
    deadline = CITY.add(start, limit)
    paused_from = start + (deadline - start) * fraction
    paused_to = paused_from + pause
    moved = CITY.shift(deadline, paused_from, paused_to, limit.basis)
    assert CITY.elapsed(paused_to, moved, limit.basis) == CITY.elapsed(paused_from, deadline, limit.basis)
