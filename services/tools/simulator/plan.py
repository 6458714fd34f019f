"""The simulation's plan, decided ahead and without I/O: which reports arrive when and where, and
what each actor will do with each case. Every draw comes from a ``random.Random`` seeded from the
run's seed, the day and the report's rank, so one seed always gives the same city.
"""

from __future__ import annotations

import math
import random
from collections import deque
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from shapely import Polygon
from shapely.geometry import Point

from services.tools.simulator.profile import Profile
from shared.city.calendar import CalendarDataMissing, WorkingCalendar
from shared.city.geo import distance_m
from shared.city.model import AreaLevel, Category, City, GridCell
from shared.core.settings import Settings
from shared.events.catalogue import CategoryFamily, GridPlace, ReportSource

# Reports by hour of the day (local) for the sources that never sleep: hotline, public, video.
HOURLY_WEIGHTS = (1, 1, 1, 1, 1, 2, 4, 7, 9, 9, 9, 8, 7, 7, 8, 8, 8, 7, 6, 5, 4, 3, 2, 1)
# Inspectors patrol on working days only; their daily volume is the weekly one spread over five days.
_WORKING_DAYS_A_WEEK = 5
# The handling limit of an event an inspector may fix on the spot: one working day at most.
_SELF_HANDLED_MAX_MINUTES = 420
# How far back a repeat report may look for the problem it repeats.
_REPEAT_WINDOW = timedelta(hours=24)
_REPEAT_GAP = timedelta(minutes=30)
_METRES_PER_DEGREE = 111_320.0
# The longest step the simulator takes (a report's window for its neighbours reaches this further).
LONGEST_STEP = timedelta(minutes=10)
# Neighbours are looked for this many times intake's duplicate radius away: the point a phone sends
# (GCJ-02) comes back to WGS-84 within a metre or so, and a margin costs only a few more turns.
_NEIGHBOURHOOD_MARGIN = 2.0


class Course(StrEnum):
    """What the department's side of a case turns into."""

    NORMAL = "normal"  # signed, handled in time
    LATE = "late"  # handled after the deadline: the timer reports it missed
    EXTENSION = "extension"  # the department asks for more time first
    SUSPENDED = "suspended"  # the shift lead suspends it for a while (挂账)
    CANCELLED = "cancelled"  # the shift lead voids it (作废)


@dataclass(frozen=True, slots=True)
class Fate:
    """Every decision about one case, drawn when the report is planned.

    Delays are fractions of a time limit of the case's category, counted in its time basis
    (working or calendar minutes), so a working-time case waits for working hours like the people
    who handle it.
    """

    decided: bool  # video: the operator files it; hotline and public: the inspector confirms it
    intake_delay: float  # of the filing limit, before the operator or the inspector answers
    self_handled: bool  # the inspector fixed it on the spot
    dispatch_delay: float  # of the dispatch limit, before a dispatcher acts (coordination, re-dispatch)
    accept_delay: float  # of the handling limit, before the department signs or sends it back
    returned: bool  # the first department sends it back (回退)
    course: Course
    course_at: float  # of the time left after signing, when the suspension, request or cancellation comes
    extension_approved: bool
    extension_extra: float  # of the handling limit, the extra time asked for
    decision_delay: float  # of the handling limit, before the shift lead decides
    pause: float  # of the handling limit, how long a suspension lasts
    handle_at: float  # of the time left, when the department reports back
    overrun: float  # of the handling limit, how late a late case is handled
    check_delay: float  # of the check window, before the inspector checks
    rework: bool  # the first check fails (返工)
    rework_at: float  # of the time left after the failed check, when the department handles it again


@dataclass(frozen=True, slots=True)
class Arrival:
    """A report the city will receive, and the fate of the case it may become."""

    number: int
    at: datetime
    source: ReportSource
    category_code: str
    lon: float  # WGS-84
    lat: float
    cell_id: str
    inspector_id: str | None  # the reporting inspector, for inspector reports
    fate: Fate
    # The earlier reports intake may take for the same problem (its category, within intake's
    # duplicate radius and window, a repeat among them): whether this one is merged into one of
    # their cases depends on what intake knows of them when it arrives.
    neighbours: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Merging:
    """When intake takes a new report for an open case's problem."""

    radius_m: float
    window: timedelta

    @classmethod
    def of(cls, settings: Settings) -> Merging:
        """Intake's rule under ``settings`` (``duplicate_radius_m``, ``duplicate_window_hours``)."""
        return cls(settings.duplicate_radius_m, timedelta(hours=settings.duplicate_window_hours))


def draw_fate(rng: random.Random, profile: Profile, source: ReportSource, self_handled_chance: float) -> Fate:
    """One case's decisions; the draws happen in a fixed order whatever they turn out to be."""
    decided_chance = profile.video_filed if source is ReportSource.VIDEO else profile.verification_confirmed
    decided = rng.random() < decided_chance
    # Most intake decisions come within the filing limit; one in twenty is late.
    intake_delay = rng.uniform(0.1, 0.9) if rng.random() < 0.95 else rng.uniform(1.0, 2.0)
    self_handled = source is ReportSource.INSPECTOR and rng.random() < self_handled_chance
    dispatch_delay = rng.uniform(0.1, 0.9)
    accept_delay = rng.uniform(0.02, 0.12)
    returned = rng.random() < profile.returned
    course = _course(rng.random(), profile)
    course_at = rng.uniform(0.1, 0.5)
    extension_approved = rng.random() < profile.extension_approved
    extension_extra = rng.uniform(0.5, 1.0)
    decision_delay = rng.uniform(0.02, 0.1)
    pause = rng.uniform(1.0, 3.0)
    rework = rng.random() < profile.check_failed
    # A case that will be reworked is handled early, which leaves time to do it again.
    handle_at = rng.uniform(0.1, 0.3) if rework else rng.uniform(0.3, 0.85)
    overrun = rng.uniform(0.05, 0.6)
    check_delay = rng.uniform(0.1, 0.9)
    rework_at = rng.uniform(0.2, 0.5)
    return Fate(
        decided=decided,
        intake_delay=intake_delay,
        self_handled=self_handled,
        dispatch_delay=dispatch_delay,
        accept_delay=accept_delay,
        returned=returned,
        course=course,
        course_at=course_at,
        extension_approved=extension_approved,
        extension_extra=extension_extra,
        decision_delay=decision_delay,
        pause=pause,
        handle_at=handle_at,
        overrun=overrun,
        check_delay=check_delay,
        rework=rework,
        rework_at=rework_at,
    )


def _course(draw: float, profile: Profile) -> Course:
    threshold = 0.0
    for course, share in (
        (Course.CANCELLED, profile.cancelled),
        (Course.SUSPENDED, profile.suspended),
        (Course.EXTENSION, profile.extension_requested),
        (Course.LATE, profile.late),
    ):
        threshold += share
        if draw < threshold:
            return course
    return Course.NORMAL


def self_handleable(category: Category) -> bool:
    """A minor event an inspector can clear on the spot: talk a vendor away, tear down a small ad."""
    return (
        category.family is CategoryFamily.EVENT
        and not category.urgent
        and category.time_basis == "working"
        and category.handling <= _SELF_HANDLED_MAX_MINUTES
    )


def detectable_by_video(category: Category) -> bool:
    """What cameras with detection models find: events in public space that are not emergencies."""
    return category.family is CategoryFamily.EVENT and not category.urgent


def category_weights(city: City, profile: Profile) -> dict[str, float]:
    """Each category's relative frequency: its own weight, or its major class's shared equally."""
    per_major: dict[str, int] = {}
    for category in city.categories:
        per_major[category.major_code] = per_major.get(category.major_code, 0) + 1
    weights: dict[str, float] = {}
    for category in city.categories:
        if category.code in profile.category_weights:
            weights[category.code] = profile.category_weights[category.code]
        else:
            weights[category.code] = (
                profile.category_weights.get(category.major_code, 0.0) / per_major[category.major_code]
            )
    if not any(weights.values()):
        raise ValueError("no category of the city has a weight in the profile")
    return weights


def alternative_owner(city: City, place: GridPlace, exclude: str | None) -> str:
    """The department a dispatcher sends a case to when no rule names one, or when its owner sent
    it back: the local authority (属地管理) — the owner of the narrowest area rules around the place,
    the street office before the district before the city.
    """
    by_level: dict[AreaLevel, set[str]] = {level: set() for level in AreaLevel}
    for rule in city.routing_rules:
        if rule.covers(place) and rule.department_id != exclude:
            by_level[rule.area_level].add(rule.department_id)
    for level in (AreaLevel.STREET, AreaLevel.DISTRICT, AreaLevel.CITY):
        if by_level[level]:
            return min(by_level[level])
    others = sorted(d.id for d in city.departments if d.id != exclude)
    if not others:
        raise ValueError("the city has no department to dispatch to")
    return others[0]


class Planner:
    """Plans the reports of each simulated day, in order, from one seed."""

    def __init__(
        self,
        city: City,
        calendar: WorkingCalendar,
        profile: Profile,
        seed: int,
        scale: float,
        merging: Merging,
    ) -> None:
        self.city = city
        self.merging = merging
        self.calendar = calendar
        self.profile = profile
        self.seed = seed
        self.scale = scale
        self.zone = ZoneInfo(city.timezone)
        self._number = 0
        self._recent: deque[Arrival] = deque()
        self._by_category: dict[str, deque[Arrival]] = {}
        weights = category_weights(city, profile)
        self._categories = {
            source: _Choice(
                [
                    (code, weight)
                    for code, weight in weights.items()
                    if weight > 0 and (source is not ReportSource.VIDEO or detectable_by_video(city.category(code)))
                ]
            )
            for source in ReportSource
        }
        inspector_total = sum(weights.values())
        handleable = sum(w for code, w in weights.items() if self_handleable(city.category(code)))
        # The profile's share is of all inspector reports; only minor events qualify, so those
        # that do are fixed on the spot more often.
        self.self_handled_chance = min(1.0, profile.self_handled * inspector_total / handleable) if handleable else 0.0
        self._inspectors = [i for i in city.inspectors if i.cell_ids]
        self._cells = city.cells
        self._inner: dict[str, Polygon] = {}

    def day(self, day: date) -> list[Arrival]:
        """The reports that arrive on ``day`` (local date), in time order."""
        rng = random.Random(f"citycase-simulation:{self.seed}:{day.isoformat()}")
        base = self.profile.reports_per_day * self.scale
        working = self.calendar.is_working_day(day)
        planned: list[tuple[datetime, ReportSource, int]] = []
        for source in ReportSource:
            mean = base * self.profile.source_share(source)
            if source is ReportSource.INSPECTOR:
                mean = mean * 7 / _WORKING_DAYS_A_WEEK if working else 0.0
            for _ in range(_poisson(rng, mean)):
                at = self._working_moment(rng, day) if source is ReportSource.INSPECTOR else self._moment(rng, day)
                planned.append((at, source, rng.getrandbits(64)))
        planned.sort(key=lambda p: (p[0], p[1].value, p[2]))
        return [self._arrival(at, source, random.Random(case_seed)) for at, source, case_seed in planned]

    def _arrival(self, at: datetime, source: ReportSource, rng: random.Random) -> Arrival:
        self._number += 1
        while self._recent and at - self._recent[0].at > _REPEAT_WINDOW:
            self._recent.popleft()
        repeat_of = None
        candidates = self._repeatable(at)
        if source is not ReportSource.INSPECTOR and rng.random() < self.profile.repeat_report and candidates:
            earlier = self._recent[rng.randrange(candidates)]
            if source is not ReportSource.VIDEO or detectable_by_video(self.city.category(earlier.category_code)):
                repeat_of = earlier
        inspector_id = None
        if repeat_of is not None:
            code = repeat_of.category_code
            lon, lat, cell = self._near(rng, repeat_of)
        else:
            code = self._categories[source].pick(rng)
            if source is ReportSource.INSPECTOR:
                inspector = self._inspectors[rng.randrange(len(self._inspectors))]
                cell = self.city.cell(inspector.cell_ids[rng.randrange(len(inspector.cell_ids))])
            else:
                cell = self._cells[rng.randrange(len(self._cells))]
            lon, lat = self._spot(rng, cell)
        if source is ReportSource.INSPECTOR:
            inspector_id = self.city.inspector_for(cell.id).id
        fate = draw_fate(rng, self.profile, source, self.self_handled_chance if self._handleable(code) else 0.0)
        neighbours = self._neighbours(at, code, lon, lat)
        arrival = Arrival(self._number, at, source, code, lon, lat, cell.id, inspector_id, fate, neighbours)
        self._recent.append(arrival)
        self._by_category.setdefault(code, deque()).append(arrival)
        return arrival

    def _neighbours(self, at: datetime, code: str, lon: float, lat: float) -> tuple[int, ...]:
        """The earlier reports of category ``code`` near (``lon``, ``lat``) that a report at ``at``
        may be taken for, with a margin (in place, and in time by a step)."""
        earlier = self._by_category.get(code, deque())
        while earlier and at - earlier[0].at > self.merging.window + LONGEST_STEP:
            earlier.popleft()
        within = self.merging.radius_m * _NEIGHBOURHOOD_MARGIN
        return tuple(other.number for other in earlier if distance_m(other.lon, other.lat, lon, lat) <= within)

    def _repeatable(self, at: datetime) -> int:
        """How many of the recent reports (the oldest first) a report at ``at`` may repeat: those
        at least half an hour older, so that they have been made by then (a simulation's steps are
        shorter than that).
        """
        count = len(self._recent)
        while count and at - self._recent[count - 1].at < _REPEAT_GAP:
            count -= 1
        return count

    def _handleable(self, code: str) -> bool:
        return self_handleable(self.city.category(code))

    def _spot(self, rng: random.Random, cell: GridCell) -> tuple[float, float]:
        """A point inside the cell, at least a few metres from its edge so that the coordinate
        conversions of the phone (GCJ-02) cannot move it into a neighbour.
        """
        shape = self._inner.get(cell.id)
        if shape is None:
            polygon = self.city.grid.polygon(cell.id)
            inner = polygon.buffer(-5 / _METRES_PER_DEGREE)
            shape = self._inner[cell.id] = inner if not inner.is_empty else polygon
        min_lon, min_lat, max_lon, max_lat = shape.bounds
        for _ in range(100):
            lon, lat = rng.uniform(min_lon, max_lon), rng.uniform(min_lat, max_lat)
            if shape.contains(Point(lon, lat)):
                return lon, lat
        centre = shape.representative_point()
        return centre.x, centre.y

    def _near(self, rng: random.Random, earlier: Arrival) -> tuple[float, float, GridCell]:
        """A point 5-20 m from an earlier report: the same problem, reported again."""
        distance, bearing = rng.uniform(5, 20), rng.uniform(0, 2 * math.pi)
        dlat = distance * math.sin(bearing) / _METRES_PER_DEGREE
        dlon = distance * math.cos(bearing) / (_METRES_PER_DEGREE * math.cos(math.radians(earlier.lat)))
        cell = self.city.locate(earlier.lon + dlon, earlier.lat + dlat)
        if cell is None:
            return earlier.lon, earlier.lat, self.city.cell(earlier.cell_id)
        return earlier.lon + dlon, earlier.lat + dlat, cell

    def _working_moment(self, rng: random.Random, day: date) -> datetime:
        periods = [
            (_local(day, start, self.zone), _local(day, end, self.zone)) for start, end in self.calendar.working_hours
        ]
        total = sum((end - start).total_seconds() for start, end in periods)
        offset = rng.uniform(0, total)
        for start, end in periods:
            length = (end - start).total_seconds()
            if offset <= length:
                return start + timedelta(seconds=offset)
            offset -= length
        return periods[-1][1]

    def _moment(self, rng: random.Random, day: date) -> datetime:
        hour = rng.choices(range(24), weights=HOURLY_WEIGHTS)[0]
        return _local(day, time(hour), self.zone) + timedelta(seconds=rng.uniform(0, 3600))


class _Choice:
    """A weighted choice over a fixed list, by bisection on the cumulative weights."""

    def __init__(self, items: list[tuple[str, float]]) -> None:
        if not items:
            raise ValueError("nothing to choose from: give some categories a weight")
        self._items = [item for item, _ in items]
        self._cumulative: list[float] = []
        total = 0.0
        for _, weight in items:
            total += weight
            self._cumulative.append(total)

    def pick(self, rng: random.Random) -> str:
        return rng.choices(self._items, cum_weights=self._cumulative)[0]


def _local(day: date, moment: time, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, moment, tzinfo=zone)


def _poisson(rng: random.Random, mean: float) -> int:
    """A Poisson count: exact for small means, the normal approximation for large ones."""
    if mean <= 0:
        return 0
    if mean > 50:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, count, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


def default_start(calendar: WorkingCalendar, zone: ZoneInfo, days: int, today: date) -> datetime:
    """Midnight of the first Monday of the latest past year whose calendar covers the whole run
    (and three weeks after it for the cases still open), e.g. 2026-01-05 for a month.
    """
    for year in range(today.year, today.year - 100, -1):
        first = date(year, 1, 1)
        monday = first + timedelta(days=(7 - first.weekday()) % 7)
        if monday < today and covered(calendar, monday, monday + timedelta(days=days + 21)):
            return datetime.combine(monday, time(0), tzinfo=zone)
    raise ValueError(f"the city's calendar covers no {days} days in the last hundred years")


def covered(calendar: WorkingCalendar, first: date, last: date) -> bool:
    """Whether the calendar knows every day from ``first`` to ``last``."""
    try:
        for year in range(first.year, last.year + 1):
            calendar.is_working_day(max(first, date(year, 1, 1)))
            calendar.is_working_day(min(last, date(year, 12, 31)))
    except CalendarDataMissing:
        return False
    return True
