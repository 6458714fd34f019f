"""The simulator's plan: the same seed gives the same city, and the rates come out as asked."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from shapely.geometry import Point

from services.tools.simulator.plan import (
    LONGEST_STEP,
    Arrival,
    Course,
    Fate,
    Merging,
    Planner,
    alternative_owner,
    default_start,
    detectable_by_video,
    draw_fate,
    self_handleable,
)
from services.tools.simulator.profile import Profile, ProfileError, load_profile
from services.tools.simulator.scheduler import Scheduler, Script
from shared.city.calendar import WorkingCalendar, load_calendar
from shared.city.geo import distance_m
from shared.city.loader import load_city
from shared.city.model import City
from shared.core.clock import SimulatedClock
from shared.core.settings import Settings
from shared.events.catalogue import ReportSource
from tests.conftest import REPO

ZONE = ZoneInfo("Asia/Shanghai")
# Two weeks of March 2026 without a holiday: ten working days.
FORTNIGHT = [date(2026, 3, 2) + timedelta(days=n) for n in range(14)]


# Intake's rule for one problem at its default settings (50 m, 72 hours).
MERGING = Merging.of(Settings())


@pytest.fixture(scope="module")
def city() -> City:
    return load_city(REPO / "deploy/cities/demo")


@pytest.fixture(scope="module")
def calendar(city: City) -> WorkingCalendar:
    return load_calendar(city.calendar_file)


@pytest.fixture(scope="module")
def fortnight(city: City, calendar: WorkingCalendar) -> list[Arrival]:
    planner = Planner(city, calendar, Profile(), seed=7, scale=1.0, merging=MERGING)
    return [arrival for day in FORTNIGHT for arrival in planner.day(day)]


def test_the_same_seed_plans_the_same_city(city: City, calendar: WorkingCalendar) -> None:
    def plan(seed: int) -> list[Arrival]:
        planner = Planner(city, calendar, Profile(), seed=seed, scale=0.2, merging=MERGING)
        return [arrival for day in FORTNIGHT[:3] for arrival in planner.day(day)]

    first, again, other = plan(11), plan(11), plan(12)
    assert first == again
    assert first != other
    assert [a.number for a in first] == list(range(1, len(first) + 1))
    assert [a.at for a in first] == sorted(a.at for a in first)


def test_volume_and_sources_follow_the_profile(fortnight: list[Arrival]) -> None:
    # Zhoushan's scale: about 820 reports a day.
    assert len(fortnight) / 14 == pytest.approx(820, rel=0.03)
    shares = Counter(a.source for a in fortnight)
    assert shares[ReportSource.VIDEO] / len(fortnight) == pytest.approx(0.45, abs=0.02)
    assert shares[ReportSource.INSPECTOR] / len(fortnight) == pytest.approx(0.40, abs=0.02)
    assert shares[ReportSource.HOTLINE] / len(fortnight) == pytest.approx(0.10, abs=0.015)
    assert shares[ReportSource.PUBLIC] / len(fortnight) == pytest.approx(0.05, abs=0.01)


def test_inspectors_patrol_their_own_cells_in_working_hours(
    fortnight: list[Arrival], city: City, calendar: WorkingCalendar
) -> None:
    hours: Counter[int] = Counter()
    for arrival in fortnight:
        local = arrival.at.astimezone(ZONE)
        assert city.grid.polygon(arrival.cell_id).contains(Point(arrival.lon, arrival.lat))
        if arrival.source is ReportSource.INSPECTOR:
            assert arrival.inspector_id == city.inspector_for(arrival.cell_id).id
            assert calendar.is_working_day(local.date())
            assert any(start <= local.time() <= end for start, end in calendar.working_hours)
        else:
            hours[local.hour] += 1
            assert arrival.inspector_id is None
        if arrival.source is ReportSource.VIDEO:
            assert detectable_by_video(city.category(arrival.category_code))
    # The hotline, the public and the cameras never sleep, but the night is quieter than the day.
    assert set(hours) == set(range(24))
    assert hours[3] * 4 < hours[10]


def test_street_order_and_city_appearance_are_the_most_frequent(fortnight: list[Arrival]) -> None:
    majors = Counter(a.category_code[:5] for a in fortnight).most_common(2)
    assert {major for major, _ in majors} == {"02-05", "02-01"}


def test_a_third_of_inspector_reports_are_handled_on_the_spot(fortnight: list[Arrival], city: City) -> None:
    by_inspectors = [a for a in fortnight if a.source is ReportSource.INSPECTOR]
    on_the_spot = [a for a in by_inspectors if a.fate.self_handled]
    assert len(on_the_spot) / len(by_inspectors) == pytest.approx(0.33, abs=0.02)
    assert all(self_handleable(city.category(a.category_code)) for a in on_the_spot)
    assert not any(a.fate.self_handled for a in fortnight if a.source is not ReportSource.INSPECTOR)


def test_some_reports_repeat_a_problem_reported_nearby(fortnight: list[Arrival]) -> None:
    earlier: dict[str, list[Arrival]] = {}
    repeats = 0
    for arrival in fortnight:
        same = earlier.setdefault(arrival.category_code, [])
        if any(abs(a.lon - arrival.lon) < 0.0003 and abs(a.lat - arrival.lat) < 0.0003 for a in same[-300:]):
            repeats += 1
        same.append(arrival)
    non_inspector = sum(1 for a in fortnight if a.source is not ReportSource.INSPECTOR)
    # The profile's 6% repeats, plus the odd coincidence; not so many that everything merges.
    assert 0.04 < repeats / non_inspector < 0.08


def test_a_report_knows_the_earlier_ones_intake_may_take_for_its_problem(fortnight: list[Arrival]) -> None:
    def metres(a: Arrival, b: Arrival) -> float:
        return distance_m(a.lon, a.lat, b.lon, b.lat)

    by_number = {arrival.number: arrival for arrival in fortnight}
    by_category: dict[str, list[Arrival]] = {}
    for arrival in fortnight:
        by_category.setdefault(arrival.category_code, []).append(arrival)
    for arrival in fortnight[::7]:
        expected = {
            other.number
            for other in by_category[arrival.category_code]
            if other.number < arrival.number
            and arrival.at - other.at <= MERGING.window + LONGEST_STEP
            and metres(other, arrival) <= 2 * MERGING.radius_m
        }
        assert set(arrival.neighbours) == expected, arrival.number
    # Every repeat (5 to 20 m from what it repeats) knows what it repeats; the rest are rare.
    repeats = [a for a in fortnight if any(metres(by_number[n], a) <= 20 for n in a.neighbours)]
    assert len(repeats) > 200
    assert sum(1 for a in fortnight if a.neighbours) < len(fortnight) / 10


def test_the_actors_rates_hold_over_many_cases() -> None:
    profile = Profile()
    rng = random.Random(3)
    fates = [draw_fate(random.Random(rng.getrandbits(64)), profile, ReportSource.VIDEO, 0.0) for _ in range(40_000)]

    def share(predicate: Callable[[Fate], bool]) -> float:
        return sum(1 for f in fates if predicate(f)) / len(fates)

    assert share(lambda f: f.decided) == pytest.approx(0.97, abs=0.005)
    assert share(lambda f: f.returned) == pytest.approx(0.06, abs=0.005)
    assert share(lambda f: f.rework) == pytest.approx(0.06, abs=0.005)
    assert share(lambda f: f.course is Course.LATE) == pytest.approx(0.02, abs=0.003)
    assert share(lambda f: f.course is Course.EXTENSION) == pytest.approx(0.03, abs=0.003)
    assert share(lambda f: f.course is Course.SUSPENDED) == pytest.approx(0.005, abs=0.002)
    assert share(lambda f: f.course is Course.CANCELLED) == pytest.approx(0.005, abs=0.002)
    extensions = [f for f in fates if f.course is Course.EXTENSION]
    assert sum(f.extension_approved for f in extensions) / len(extensions) == pytest.approx(0.85, abs=0.03)
    assert not any(f.self_handled for f in fates)  # only inspectors fix problems on the spot
    # A reworked case is handled early, so that there is time to do it again.
    assert max(f.handle_at for f in fates if f.rework) <= 0.3 <= min(f.handle_at for f in fates if not f.rework)


def test_a_profile_changes_the_rates(tmp_path: Path) -> None:
    file = tmp_path / "city.yaml"
    file.write_text("returned: 0.2\nsources: {inspector: 1, video: 1}\n")
    profile = load_profile(file, ["late=0.1", "sources.hotline=2", "category_weights.02-05=0"])
    assert profile.returned == 0.2
    assert profile.late == 0.1
    assert profile.source_share(ReportSource.HOTLINE) == 0.5
    assert profile.source_share(ReportSource.PUBLIC) == 0
    assert profile.category_weights["02-05"] == 0
    with pytest.raises(ProfileError, match="less than or equal to 1"):
        load_profile(None, ["late=2"])
    with pytest.raises(ProfileError, match="name=value"):
        load_profile(None, ["late"])
    with pytest.raises(ProfileError, match="extra"):
        load_profile(None, ["lateness=0.1"])


def test_the_default_start_is_a_monday_the_calendar_covers(calendar: WorkingCalendar) -> None:
    today = date(2026, 11, 21)
    assert default_start(calendar, ZONE, 30, today) == datetime(2026, 1, 5, tzinfo=ZONE)
    # A city-year runs into 2027, which chinesecalendar does not know yet: the provisional
    # calendar serves it. One that would run past what the calendar can serve at all starts earlier.
    assert default_start(calendar, ZONE, 365, today) == datetime(2026, 1, 5, tzinfo=ZONE)
    assert default_start(calendar, ZONE, 365, date(2100, 11, 21)) == datetime(2099, 1, 5, tzinfo=ZONE)


def test_a_returned_case_goes_to_the_local_authority(city: City) -> None:
    place = city.cells[0].place
    street_office = alternative_owner(city, place, exclude=None)
    assert street_office == f"office-{place.street_id}"
    assert alternative_owner(city, place, exclude=street_office) == f"gov-{place.district_id}"


def on_simulated_time(step_minutes: int) -> tuple[datetime, SimulatedClock, Scheduler]:
    """A scheduler in steps of ``step_minutes`` on a simulated clock, and the instant it starts at."""
    start = datetime(2026, 1, 5, tzinfo=UTC)
    clock = SimulatedClock(start)
    return start, clock, Scheduler(clock, timedelta(minutes=step_minutes))


async def test_time_waits_for_busy_scripts_and_moves_in_steps() -> None:
    start, clock, scheduler = on_simulated_time(step_minutes=5)
    seen: list[tuple[str, datetime]] = []

    async def slow() -> None:
        seen.append(("slow begins", clock.now()))
        await asyncio.sleep(0.05)  # a call to the city: time stands still meanwhile
        seen.append(("slow ends", clock.now()))
        await scheduler.until(start + timedelta(minutes=12))
        seen.append(("slow again", clock.now()))

    async def quick() -> None:
        seen.append(("quick", clock.now()))
        await scheduler.until(clock.now())  # already due: no wait
        seen.append(("quick still", clock.now()))

    scheduler.start(start + timedelta(minutes=1), slow)
    scheduler.start(start + timedelta(minutes=3), quick)
    await scheduler.run()

    def at(minutes: int) -> datetime:
        return start + timedelta(minutes=minutes)

    assert seen == [
        ("slow begins", at(5)),
        ("quick", at(5)),
        ("quick still", at(5)),
        ("slow ends", at(5)),
        ("slow again", at(15)),
    ]
    assert scheduler.pending == 0


async def test_what_waits_for_its_turn_comes_after_the_others_work_at_the_same_instant() -> None:
    start, clock, scheduler = on_simulated_time(step_minutes=5)
    seen: list[tuple[str, datetime]] = []

    async def repeat() -> None:  # started first, and its own work is quicker
        await scheduler.in_turn(1)
        seen.append(("repeat", clock.now()))

    async def end() -> None:
        await asyncio.sleep(0.05)  # a call to the city, slower than the other script's
        seen.append(("end", clock.now()))
        await scheduler.until(start + timedelta(minutes=20))
        seen.append(("later", clock.now()))

    scheduler.start(start + timedelta(minutes=10), repeat)
    scheduler.start(start + timedelta(minutes=10), end)
    await scheduler.run()
    at_ten = start + timedelta(minutes=10)
    assert seen == [("end", at_ten), ("repeat", at_ten), ("later", start + timedelta(minutes=20))]


async def test_scripts_take_their_turns_at_one_instant_by_rank_one_at_a_time() -> None:
    start, clock, scheduler = on_simulated_time(step_minutes=5)
    seen: list[str] = []

    def script(rank: int, busy_s: float) -> Script:
        async def run() -> None:
            await asyncio.sleep(busy_s)  # calls to the city before its turn: the higher ranks are quicker
            await scheduler.in_turn(rank)
            seen.append(f"{rank} begins")
            await asyncio.sleep(0.01)  # its turn's call: nobody else's turn meanwhile
            seen.append(f"{rank} ends")

        return run

    for rank in (2, 3, 1):
        scheduler.start(start + timedelta(minutes=10), script(rank, busy_s=0.06 - 0.02 * rank))
    await scheduler.run()
    assert seen == ["1 begins", "1 ends", "2 begins", "2 ends", "3 begins", "3 ends"]
    assert clock.now() == start + timedelta(minutes=10)
    assert scheduler.pending == 0


async def test_time_waits_for_what_runs_meanwhile() -> None:
    start, clock, scheduler = on_simulated_time(step_minutes=5)
    seen: list[tuple[str, datetime]] = []

    async def confirm() -> None:
        await asyncio.sleep(0.05)  # another service's reaction, on its way
        seen.append(("confirmed", clock.now()))

    async def act() -> None:
        scheduler.meanwhile(confirm)
        await scheduler.until(clock.now() + timedelta(minutes=5))
        seen.append(("next step", clock.now()))

    scheduler.start(start, act)
    await scheduler.run()
    assert seen == [("confirmed", start), ("next step", start + timedelta(minutes=5))]


async def test_a_run_with_an_end_checks_the_holds_short_of_it_before_it_returns() -> None:
    start, clock, scheduler = on_simulated_time(step_minutes=5)
    checked: list[datetime] = []

    async def check() -> None:
        checked.append(clock.now())

    async def act() -> None:
        scheduler.hold(start + timedelta(hours=2), check)  # a deadline before the run's end

    scheduler.start(start, act)
    scheduler.start(start + timedelta(days=1), act)  # due after the end: the run stops before it
    await scheduler.run(end=start + timedelta(hours=6))
    assert checked == [start]


async def test_a_run_stops_at_its_end_and_errors_surface() -> None:
    start, clock, scheduler = on_simulated_time(step_minutes=1)
    reached: list[datetime] = []

    async def patient() -> None:
        await scheduler.until(start + timedelta(days=2))
        reached.append(clock.now())

    scheduler.start(start, patient)
    await scheduler.run(end=start + timedelta(days=1))
    assert clock.now() == start
    assert scheduler.pending == 1
    await scheduler.cancel()
    assert reached == []

    async def broken() -> None:
        raise RuntimeError("a bug in a script")

    failing = Scheduler(clock, timedelta(minutes=1))
    failing.start(start + timedelta(hours=1), broken)
    with pytest.raises(RuntimeError, match="a bug"):
        await failing.run()


async def test_a_hold_checks_before_time_passes_its_horizon_and_adds_no_step() -> None:
    start, clock, scheduler = on_simulated_time(step_minutes=5)
    checked: list[datetime] = []
    ticks: list[datetime] = []

    async def check() -> None:
        checked.append(clock.now())

    async def act() -> None:
        scheduler.hold(clock.now() + timedelta(hours=1), check)
        await scheduler.until(clock.now() + timedelta(hours=3))

    scheduler.start(start + timedelta(minutes=10), act)
    await scheduler.run(on_advance=ticks.append)
    # Time jumped from 00:10 to 03:10 in one step, and the check ran before the jump.
    assert ticks == [start + timedelta(minutes=10), start + timedelta(hours=3, minutes=10)]
    assert checked == [start + timedelta(minutes=10)]

    scheduler.start(clock.now(), act)
    await scheduler.run(end=clock.now() + timedelta(minutes=30))
    assert scheduler.pending == 2  # the run stopped at its end: the hold and the wait are left
    await scheduler.cancel()
    assert scheduler.pending == 0
    assert len(checked) == 1
