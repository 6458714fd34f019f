"""Query cost (``query`` in the results): what an indicator and a monthly ranking cost at 10k, 100k
and 1M cases when read from the stream's counters through the assessment API, beside the same
answers computed the way a team without a stream would — SQL aggregates over a table of cases.

For each size a year (2026) of synthetic cases of the demo city is drawn from a seed, and each
case's final ``CaseState`` is built directly, without events. By the stream's design its counters
are the sum of the contributions of the cases' current states, so ``domain.contribution`` summed
over those states and folded by ``domain.to_periods`` is exactly what the stream would hold after
applying the cases' events; that goes into the assessment ``counters`` table. The same cases go,
one row each, into ``bench_cases`` with the indexes such a team would add. Two worker processes
draw and copy the cases, a chunk at a time; the million-case size would take minutes on one core.

Then, one request at a time (latency, not throughput) and with the same questions on both sides:
the indicators of a scope (the city, a district, a street, a department) for a month through
``GET /assessment/indicators``, the counter lookup that answers it alone in SQL (how much of the
latency is HTTP), the department ranking by on-time closure rate through ``GET
/assessment/rankings``, and both answers again as aggregates over ``bench_cases``. Every answer of
the API is compared with the aggregate's, so the two sides are shown to count the same thing; a
difference fails the run.

``python -m bench.query --url http://127.0.0.1:8199`` runs it alone against an assessment process
started with the same ``CITYCASE_*`` settings.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import functools
import itertools
import json
import multiprocessing
import random
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Generic, TypeVar
from zoneinfo import ZoneInfo

import asyncpg
import httpx

from assessment import domain
from assessment.domain import COUNTERS, CaseState, Flow
from services.tools.simulator.plan import alternative_owner, category_weights, detectable_by_video, self_handleable
from services.tools.simulator.profile import Profile
from shared.city.indicators import indicators_of
from shared.city.loader import load_city
from shared.city.model import Category, City, GridCell
from shared.core.auth import Principal, Role, TokenIssuer
from shared.core.clock import SystemClock
from shared.core.settings import Settings
from shared.db.engine import create_engine
from shared.db.migrations import upgrade_to_head
from shared.events.catalogue import ReportSource

SIZES = (10_000, 100_000, 1_000_000)
YEAR = 2026
REQUESTS = 300  # per series: the 99th percentile is then the third-slowest request
# A series of slow answers (the plain SQL at 1M cases) stops after this long, but not before
# MIN_REQUESTS: the whole benchmark has ten minutes.
SERIES_SECONDS = 10.0
MIN_REQUESTS = 100
WARMUP = 10
CHUNK = 20_000  # cases drawn and copied at a time
WORKERS = 2  # processes drawing cases, one per core of the machine the benchmark is made for

# The simulator's profile gives sources, categories and the rates of filing, returns, reworks,
# self-handling and cancellations. It models a city that closes 97% of its cases on time; the
# benchmark wants the mix of a typical city instead (Tianmen's month in the README: 75.8%), with
# an overdue backlog, so these few are its own.
LATE = 0.18  # cases closed after their handling deadline
STUCK = 0.015  # dispatched cases the department never finishes: overdue and open
LATE_FILING = 0.03
LATE_DISPATCH = 0.04  # of the cases a dispatcher routes by hand (no rule names an owner)
LATE_CHECK = 0.03
ROUTED_AFTER = 60  # seconds from filing to the automatic dispatch of a routed case

HOUR = 3600
DAY = 24 * HOUR
# Inspectors report in working hours (08:30-12:00, 14:30-18:00); cameras and citizens around the
# clock, more by day.
INSPECTOR_HOURS = dict.fromkeys((8, 9, 10, 11, 14, 15, 16, 17), 1.0)
ROUND_THE_CLOCK_HOURS = {hour: 0.3 if hour < 7 else 1.0 if hour < 20 else 0.6 for hour in range(24)}

_Item = TypeVar("_Item", bound=Hashable)
_Question = TypeVar("_Question", bound=Hashable)
_Answer = TypeVar("_Answer")


class _Weighted(Generic[_Item]):
    """A weighted choice made with one uniform draw (``random.choices`` costs more per call)."""

    def __init__(self, weights: Mapping[_Item, float]) -> None:
        self.items = [item for item, weight in weights.items() if weight > 0]
        self.cumulative = list(itertools.accumulate(weights[item] for item in self.items))

    def pick(self, draw: float) -> _Item:
        index = bisect.bisect_right(self.cumulative, draw * self.cumulative[-1])
        return self.items[min(index, len(self.items) - 1)]


@dataclass(frozen=True, slots=True)
class _Limits:
    """A category's time limits in seconds, counted on the calendar.

    Working-time limits stretch over nights and weekends in a real city; for counting that makes
    no difference, since both sides read the same timestamps, and the share of late cases is set
    by the rates above.
    """

    filing: int
    dispatch: int
    handling: int
    check: int

    @classmethod
    def of(cls, category: Category) -> _Limits:
        return cls(category.filing * 60, category.dispatch * 60, category.handling * 60, category.check * 60)


# The plain table: what a team without a stream keeps of a case, one row each.
BENCH_COLUMNS = (
    "id",
    "received_at",
    "source",
    "category_code",
    "family",
    "cell_id",
    "community_id",
    "street_id",
    "district_id",
    "inspector_id",
    "status",
    "filed_at",
    "filing_deadline",
    "dispatch_deadline",
    "first_dispatched_at",
    "department_id",
    "returned_by_department_id",
    "dispatches",
    "returns",
    "handling_deadline",
    "handled_at",
    "checks_requested",
    "checks_due",
    "checks_on_time",
    "reworked",
    "closed_at",
    "closed_on_time",
    "overdue",
    "cancelled",
)
# Unlogged: a benchmark's copy need not survive a crash, and without the write-ahead log the load
# writes each row once instead of twice; reading the table costs the same.
CREATE_BENCH_CASES = """
CREATE UNLOGGED TABLE bench_cases (
    id bigint NOT NULL,
    received_at timestamptz NOT NULL,
    source text NOT NULL,
    category_code text NOT NULL,
    family text NOT NULL,
    cell_id text NOT NULL,
    community_id text NOT NULL,
    street_id text NOT NULL,
    district_id text NOT NULL,
    inspector_id text,
    status text NOT NULL,
    filed_at timestamptz,
    filing_deadline timestamptz NOT NULL,
    dispatch_deadline timestamptz,
    first_dispatched_at timestamptz,
    -- the department holding the case (none while a returned case waits to be dispatched again)
    department_id text,
    -- the department that sent the case back; a case is returned at most once here
    returned_by_department_id text,
    dispatches smallint NOT NULL,
    returns smallint NOT NULL,
    handling_deadline timestamptz,
    handled_at timestamptz,
    checks_requested smallint NOT NULL,
    checks_due smallint NOT NULL,
    checks_on_time smallint NOT NULL,
    reworked boolean NOT NULL,
    closed_at timestamptz,
    closed_on_time boolean,
    overdue boolean NOT NULL,
    cancelled boolean NOT NULL
)
"""
# Built after the rows are in (faster than keeping them up row by row): the month ranges of both
# anchors, and a department's cases, including those it sent back.
INDEX_BENCH_CASES = (
    "ALTER TABLE bench_cases ADD PRIMARY KEY (id)",
    "CREATE INDEX bench_cases_received_at ON bench_cases (received_at)",
    "CREATE INDEX bench_cases_filed_at ON bench_cases (filed_at)",
    "CREATE INDEX bench_cases_department ON bench_cases (department_id, filed_at)",
    "CREATE INDEX bench_cases_returned_by ON bench_cases (returned_by_department_id, filed_at)"
    " WHERE returned_by_department_id IS NOT NULL",
)


class CaseFactory:
    """Draws synthetic cases: each case's final state as the stream would hold it at the end of
    the year, and its row in the plain table, from the same timestamps.
    """

    def __init__(self, city: City) -> None:
        self.city = city
        self.rng = random.Random()
        self.zone = ZoneInfo(city.timezone)
        self.start = int(datetime(YEAR, 1, 1, tzinfo=self.zone).timestamp())
        # The moment the benchmark's city stands at: what would happen later has not happened.
        self.end = int(datetime(YEAR + 1, 1, 1, tzinfo=self.zone).timestamp())
        self.days = (self.end - self.start) // DAY
        profile = Profile()
        self.profile = profile
        self.sources = _Weighted(profile.sources)
        weights = category_weights(city, profile)
        self.categories = {
            source: _Weighted(
                {
                    city.category(code): weight
                    for code, weight in weights.items()
                    if source is not ReportSource.VIDEO or detectable_by_video(city.category(code))
                }
            )
            for source in ReportSource
        }
        self.hours = {
            source: _Weighted(INSPECTOR_HOURS if source is ReportSource.INSPECTOR else ROUND_THE_CLOCK_HOURS)
            for source in ReportSource
        }
        self.limits = {category.code: _Limits.of(category) for category in city.categories}
        # Plain strings looked up once: an enum's ``.value`` costs more than a dictionary access.
        self.family = {category.code: category.family.value for category in city.categories}
        self.source_name = {source: source.value for source in ReportSource}
        # The profile's self-handled share is of all inspector reports, but only minor events qualify.
        self.handleable = {category.code for category in city.categories if self_handleable(category)}
        handleable_weight = sum(weight for code, weight in weights.items() if code in self.handleable)
        self.self_handled_chance = min(1.0, profile.self_handled * sum(weights.values()) / handleable_weight)
        self.cells = city.cells
        self.inspector_of = {cell.id: city.inspector_for(cell.id).id for cell in self.cells}
        # Routing depends on the category and the place's street and district only: remembered.
        self._owners: dict[tuple[str, str], str | None] = {}
        self._local: dict[tuple[str, str | None], str] = {}

    def _owner(self, category_code: str, cell: GridCell) -> str | None:
        key = (category_code, cell.street_id)
        if key not in self._owners:
            rule = self.city.route(category_code, cell.place)
            self._owners[key] = rule.department_id if rule is not None else None
        return self._owners[key]

    def _local_authority(self, cell: GridCell, exclude: str | None) -> str:
        """Where a dispatcher sends a case no rule routes, or one its owner sent back."""
        key = (cell.street_id, exclude)
        if key not in self._local:
            self._local[key] = alternative_owner(self.city, cell.place, exclude)
        return self._local[key]

    def _delay(self, limit: int, late_share: float, on_time: tuple[float, float] = (0.05, 0.9)) -> int:
        """Seconds until something is done: a fraction of its limit, beyond it for ``late_share``."""
        low, high = (1.05, 2.0) if self.rng.random() < late_share else on_time
        return int(limit * (low + (high - low) * self.rng.random()))

    def draw_chunk(
        self, seed: str, numbers: Iterable[int], part: int, parts: int
    ) -> Iterator[tuple[CaseState, tuple[Any, ...]]]:
        """The cases ``numbers``, drawn from ``seed`` and received in the ``part``-th of ``parts``
        equal slices of the year. Filled chunk by chunk, the plain table lies in time order like a
        real one (cases arrive in time order), so a month's rows sit together, as its SQL expects.
        """
        self.rng.seed(seed)
        first_day = part * self.days // parts
        days = max(1, (part + 1) * self.days // parts - first_day)
        for number in numbers:
            yield self.draw(number, self.start + first_day * DAY, days)

    def draw(self, number: int, midnight: int, days: int) -> tuple[CaseState, tuple[Any, ...]]:
        """Case ``number``, received in the ``days`` from ``midnight`` (local, in epoch seconds):
        its state and its row (``BENCH_COLUMNS``).
        """
        draw = self.rng.random
        profile = self.profile
        source = self.sources.pick(draw())
        category = self.categories[source].pick(draw())
        limits = self.limits[category.code]
        cell = self.cells[int(draw() * len(self.cells))]
        received = midnight + int(draw() * days) * DAY + self.hours[source].pick(draw()) * HOUR
        received += int(draw() * HOUR)
        end = self.end

        # Intake: inspectors' reports are filed at once; the others are verified or looked at first.
        filed: int | None = None
        status = "received"
        if source is ReportSource.INSPECTOR:
            filed = received
        elif draw() < profile.repeat_report:
            status = "merged"
        elif draw() >= (profile.video_filed if source is ReportSource.VIDEO else profile.verification_confirmed):
            status = "rejected"
        else:
            filed = received + self._delay(limits.filing, LATE_FILING)
        if filed is not None and filed >= end:
            filed = None  # still waiting at the end of the year

        self_handled = filed is not None and source is ReportSource.INSPECTOR and category.code in self.handleable
        self_handled = self_handled and draw() < self.self_handled_chance
        cancelled = False
        if filed is not None and not self_handled and draw() < profile.cancelled:
            cancel_at = filed + int(draw() * limits.handling)
            if cancel_at < end:
                # Nothing after the cancellation happens; the stream retracts what came before.
                end, cancelled = cancel_at, True

        flow = Flow.NONE
        dispatch_deadline = first_dispatch = handling_deadline = handled = closed = None
        check_deadline: int | None = None
        assignments: list[list[Any]] = []
        department: str | None = None
        returned_by: str | None = None
        checks_requested = checks_on_time = 0
        reworked = overdue = closed_on_time = False
        if filed is not None and self_handled:
            flow, closed, closed_on_time = Flow.CLOSED, filed, True
        elif filed is not None:
            flow = Flow.COORDINATION
            dispatch_deadline = filed + limits.dispatch
            owner = self._owner(category.code, cell)
            if owner is None:
                dispatched = filed + self._delay(limits.dispatch, LATE_DISPATCH)
                owner = self._local_authority(cell, None)
            else:
                dispatched = filed + ROUTED_AFTER
            if dispatched < end:
                flow, first_dispatch, department = Flow.DISPATCHED, dispatched, owner
                assignments.append([owner, False])
                if draw() < profile.returned:
                    returned_at = dispatched + self._delay(limits.handling, 0.0, (0.02, 0.2))
                    if returned_at < end:
                        flow, returned_by, department = Flow.RETURNED, owner, None
                        assignments[-1][1] = True
                        dispatched = returned_at + self._delay(limits.dispatch, 0.0)
                        if dispatched < end:
                            department = self._local_authority(cell, returned_by)
                            flow = Flow.DISPATCHED
                            assignments.append([department, False])
            if department is not None:
                handling_deadline = dispatched + limits.handling
                fate = draw()
                if fate >= STUCK:
                    done = dispatched + self._delay(limits.handling, LATE / (1 - STUCK), (0.05, 0.7))
                    handled = done
                    rounds = 2 if draw() < profile.check_failed else 1
                    for round_ in range(rounds):
                        if done >= end:
                            break
                        flow, check_deadline, checks_requested = Flow.HANDLED, done + limits.check, round_ + 1
                        answered = done + self._delay(limits.check, LATE_CHECK)
                        if answered >= end:
                            break
                        checks_on_time += answered <= check_deadline
                        check_deadline = None
                        if round_ + 1 < rounds:  # the check fails: the department does it again
                            flow, reworked = Flow.DISPATCHED, True
                            done = answered + self._delay(limits.handling, 0.0, (0.05, 0.4))
                        else:
                            flow, closed = Flow.CLOSED, answered
                    if handled >= end:
                        handled = None
                # The deadline timer fires on a case still open when its handling deadline passes.
                overdue = handling_deadline < (closed if closed is not None else end)
                closed_on_time = closed is not None and closed <= handling_deadline
        # A check is due once answered, or once still open past its limit (the check timer fired).
        check_missed = check_deadline is not None and check_deadline < end
        checks_due = checks_requested - int(check_deadline is not None) + int(check_missed)

        at = self._at
        received_at, filed_at, filing_deadline = at(received), at(filed), at(received + limits.filing)
        dispatch_deadline_at, first_dispatched_at = at(dispatch_deadline), at(first_dispatch)
        check_deadline_at = at(check_deadline)
        family = self.family[category.code]
        source_name = self.source_name[source]
        inspector_id = self.inspector_of[cell.id]
        state = CaseState(
            received_at=received_at,
            source=source_name,
            category_code=category.code,
            family=family,
            cell_id=cell.id,
            community_id=cell.community_id,
            street_id=cell.street_id,
            district_id=cell.district_id,
            inspector_id=inspector_id,
            filed_at=filed_at,
            filed_on_time=filed is not None and filed <= received + limits.filing,
            dispatch_deadline=dispatch_deadline_at,
            first_dispatched_at=first_dispatched_at,
            assignments=assignments,
            flow=flow,
            overdue=overdue,
            handled=handled is not None,
            reworked=reworked,
            checks_requested=checks_requested,
            checks_due=checks_due,
            checks_on_time=checks_on_time,
            check_deadline=check_deadline_at,
            check_missed=check_missed,
            closed=closed is not None,
            closed_on_time=closed_on_time,
            cancelled=cancelled,
        )
        if cancelled:
            status = "cancelled"
        elif filed is not None:
            status = flow.value
        row = (
            number,
            received_at,
            source_name,
            category.code,
            family,
            cell.id,
            cell.community_id,
            cell.street_id,
            cell.district_id,
            inspector_id,
            status,
            filed_at,
            filing_deadline,
            dispatch_deadline_at,
            first_dispatched_at,
            department,
            returned_by,
            len(assignments),
            int(returned_by is not None),
            at(handling_deadline),
            at(handled),
            checks_requested,
            checks_due,
            checks_on_time,
            reworked,
            at(closed),
            closed_on_time if closed is not None else None,
            overdue,
            cancelled,
        )
        return state, row

    @staticmethod
    def _at(seconds: int | None) -> datetime | None:
        return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


# Summing a million contributions of ~20 vectors each as lists would dominate the load; each
# vector is packed into one integer instead (a field per counter), so a sum is one addition.
_FIELD_BITS = 40
_FIELD_MASK = (1 << _FIELD_BITS) - 1
_SHIFTS = tuple(_FIELD_BITS * i for i in range(len(COUNTERS)))


class ContributionSums:
    """The sum of many cases' contributions, by (scope kind, scope id, anchor day)."""

    def __init__(self) -> None:
        self.sums: dict[domain.ContributionKey, int] = {}
        self._packed: dict[tuple[int, ...], int] = {}

    def add(self, contribution: domain.Contribution) -> None:
        sums, packed = self.sums, self._packed
        for key, vector in contribution.items():
            counts = tuple(vector)
            value = packed.get(counts)
            if value is None:
                # A final state's contribution counts things that happened: never below zero.
                assert min(counts) >= 0, counts
                value = packed[counts] = sum(count << shift for count, shift in zip(counts, _SHIFTS, strict=True))
            sums[key] = sums.get(key, 0) + value

    def changes(self) -> Iterator[tuple[domain.ContributionKey, list[int]]]:
        """The sums as the stream's day-anchored changes, for ``domain.to_periods``."""
        for key, value in self.sums.items():
            yield key, [(value >> shift) & _FIELD_MASK for shift in _SHIFTS]


COUNTER_COLUMNS = ("scope_kind", "scope_id", "period_kind", "period_start", *COUNTERS)
# Each worker process folds its own cases' counters, as the stream folds a batch, into this table;
# the parts are then added up into ``counters`` the way the stream's upserts add batches up.
CREATE_COUNTER_PARTS = (
    "CREATE UNLOGGED TABLE bench_counter_parts (scope_kind text, scope_id text, period_kind text,"
    " period_start date, " + ", ".join(f"{name} integer" for name in COUNTERS) + ")"
)
_KEY = "scope_kind, scope_id, period_kind, period_start"
# In key order, so the primary key's index is appended to rather than split all over.
MERGE_COUNTER_PARTS = (
    f"INSERT INTO counters ({', '.join(COUNTER_COLUMNS)}) SELECT {_KEY}, "
    + ", ".join(f"sum({name})" for name in COUNTERS)
    + f" FROM bench_counter_parts GROUP BY {_KEY} ORDER BY {_KEY}"
)
BUSIEST_DEPARTMENTS = (
    "SELECT department_id FROM bench_cases WHERE department_id IS NOT NULL AND NOT cancelled"
    " GROUP BY department_id ORDER BY count(*) DESC, department_id"
)


def _chunks(size: int) -> range:
    """The chunks ``size`` cases are drawn in, numbered."""
    return range(-(-size // CHUNK))


@functools.cache
def _factory(city_dir: Path) -> CaseFactory:
    """The worker process's factory, kept between sizes (its routing memory with it)."""
    return CaseFactory(load_city(city_dir))


def _load_part(city_dir: Path, connect: dict[str, Any], size: int, seed: int, chunks: Sequence[int]) -> None:
    """In a worker process: draw the cases of ``chunks``, copy their rows into ``bench_cases`` and
    their counters, summed and folded, into ``bench_counter_parts``.
    """
    asyncio.run(_copy_part(_factory(city_dir), connect, size, seed, chunks))


async def _copy_part(
    factory: CaseFactory, connect: dict[str, Any], size: int, seed: int, chunks: Sequence[int]
) -> None:
    sums = ContributionSums()
    parts = len(_chunks(size))
    connection = await asyncpg.connect(**connect)
    try:
        for chunk in chunks:
            numbers = range(chunk * CHUNK, min(size, (chunk + 1) * CHUNK))
            # A seed per chunk: the same cases whichever worker draws them.
            cases = factory.draw_chunk(f"citycase-bench-query:{seed}:{size}:{chunk}", numbers, chunk, parts)
            rows = []
            for state, row in cases:
                sums.add(domain.contribution(state, factory.zone))
                rows.append(row)
            await connection.copy_records_to_table("bench_cases", records=rows, columns=BENCH_COLUMNS)
        counter_rows = domain.to_periods(sums.changes())
        await connection.copy_records_to_table(
            "bench_counter_parts",
            records=((*key, *vector) for key, vector in counter_rows.items()),
            columns=COUNTER_COLUMNS,
        )
    finally:
        await connection.close()


@dataclass(frozen=True)
class Loaded:
    """One size's data, as loaded."""

    counter_rows: int
    seconds: float
    # Where the time went: drawing the cases, computing and copying both sides' rows (the worker
    # processes); adding the workers' counter parts up; indexing and vacuuming the tables.
    phases: dict[str, float]
    # Departments by the number of cases they hold, most first.
    departments: list[str]


async def load(
    connection: Any, pool: Executor, city_dir: Path, connect: dict[str, Any], size: int, seed: int
) -> Loaded:
    """Empty the stream's tables and ``bench_cases``, then fill both with ``size`` cases."""
    started = time.perf_counter()
    await connection.execute("TRUNCATE counters, case_states")
    await connection.execute("DROP TABLE IF EXISTS bench_cases, bench_counter_parts")
    await connection.execute(CREATE_BENCH_CASES)
    await connection.execute(CREATE_COUNTER_PARTS)
    chunks = _chunks(size)
    loop = asyncio.get_running_loop()
    marks = [time.perf_counter()]
    await asyncio.gather(
        *(
            loop.run_in_executor(pool, _load_part, city_dir, connect, size, seed, chunks[worker::WORKERS])
            for worker in range(min(WORKERS, len(chunks)))
        )
    )
    marks.append(time.perf_counter())
    status = await connection.execute(MERGE_COUNTER_PARTS)  # "INSERT 0 <rows>"
    await connection.execute("DROP TABLE bench_counter_parts")
    marks.append(time.perf_counter())
    for statement in INDEX_BENCH_CASES:
        await connection.execute(statement)
    # As autovacuum leaves long-lived tables: hint bits set and pages all-visible, so the first
    # queries do not pay for the load (or write pages back while being timed).
    await connection.execute("VACUUM (ANALYZE) counters")
    await connection.execute("VACUUM (ANALYZE) bench_cases")
    marks.append(time.perf_counter())
    phases = {
        name: round(end - start, 1)
        for name, (start, end) in zip(("cases", "counters", "indexes"), itertools.pairwise(marks), strict=True)
    }
    departments = [row["department_id"] for row in await connection.fetch(BUSIEST_DEPARTMENTS)]
    return Loaded(int(status.split()[-1]), time.perf_counter() - started, phases, departments)


# --- the questions and the two ways of answering them ----------------------------------------


@dataclass(frozen=True)
class Question:
    """The indicators of one scope in one month."""

    scope_kind: str
    scope_id: str
    month: date


def _month_bounds(month: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The month as an instant range in the city's time zone (months are local, like the counters')."""
    following = (month.replace(day=28) + timedelta(days=4)).replace(day=1)
    return datetime(month.year, month.month, 1, tzinfo=zone), datetime(following.year, following.month, 1, tzinfo=zone)


# What the assessment handler runs for an indicator query: one counters row by its primary key.
COUNTER_LOOKUP = (
    "SELECT "
    + ", ".join(f"coalesce(sum({name}), 0) AS {name}" for name in COUNTERS)
    + " FROM counters WHERE scope_kind = $1 AND scope_id = $2 AND period_kind = 'month' AND period_start = $3"
)

# The indicators by INDICATORS.md over the plain table: $1 and $2 bound the month. Reports and
# filings count in the month the report was received, everything else in the month of filing; a
# cancelled case keeps only its report and its cancellation.
_RECEIVED = "received_at >= $1 AND received_at < $2"
_FILED = "filed_at >= $1 AND filed_at < $2 AND NOT cancelled"


def _case_counts(filed: str, dispatches: str, returns: str) -> str:
    """The counters anchored on filing, for the cases ``filed`` selects. The bench draws no
    hotline callbacks (回访): none counts in ``callbacks`` or ``satisfied``."""
    return f"""
    count(*) FILTER (WHERE {filed} AND first_dispatched_at IS NOT NULL) AS cases_dispatched,
    count(*) FILTER (
        WHERE {filed} AND first_dispatched_at IS NOT NULL
        AND (dispatch_deadline IS NULL OR first_dispatched_at <= dispatch_deadline)
    ) AS dispatched_on_time,
    {dispatches} AS dispatches,
    {returns} AS returns,
    count(*) FILTER (WHERE {filed} AND handled_at IS NOT NULL) AS handled,
    count(*) FILTER (WHERE {filed} AND reworked) AS reworked,
    coalesce(sum(checks_requested) FILTER (WHERE {filed}), 0) AS checks_requested,
    coalesce(sum(checks_due) FILTER (WHERE {filed}), 0) AS checks_due,
    coalesce(sum(checks_on_time) FILTER (WHERE {filed}), 0) AS checks_on_time,
    count(*) FILTER (WHERE {filed} AND closed_at IS NOT NULL) AS closed,
    count(*) FILTER (WHERE {filed} AND closed_at IS NOT NULL AND closed_on_time) AS closed_on_time,
    count(*) FILTER (WHERE {filed} AND overdue AND closed_at IS NULL) AS overdue_open,
    0 AS callbacks,
    0 AS satisfied"""


_PLACE_COUNTS = _case_counts(
    _FILED,
    dispatches=f"coalesce(sum(dispatches) FILTER (WHERE {_FILED}), 0)",
    returns=f"coalesce(sum(returns) FILTER (WHERE {_FILED}), 0)",
)
_PLACE_SQL = f"""
SELECT
    count(*) FILTER (WHERE {_RECEIVED}) AS reports,
    count(*) FILTER (WHERE {_RECEIVED} AND filed_at IS NOT NULL AND NOT cancelled) AS filed,
    count(*) FILTER (
        WHERE {_RECEIVED} AND filed_at IS NOT NULL AND NOT cancelled
        AND (filing_deadline IS NULL OR filed_at <= filing_deadline)
    ) AS filed_on_time,{_PLACE_COUNTS},
    count(*) FILTER (WHERE filed_at >= $1 AND filed_at < $2 AND cancelled) AS cancelled
FROM bench_cases
WHERE (received_at >= $1 AND received_at < $2 OR filed_at >= $1 AND filed_at < $2)
"""
# A department counts the cases it holds, and every dispatch to it, including those it sent back.
_HELD = "department_id = $3"
_DEPARTMENT_COUNTS = _case_counts(
    _HELD,
    dispatches="count(*) FILTER (WHERE department_id = $3) + count(*) FILTER (WHERE returned_by_department_id = $3)",
    returns="count(*) FILTER (WHERE returned_by_department_id = $3)",
)
_DEPARTMENT_SQL = f"""
SELECT
    0 AS reports, 0 AS filed, 0 AS filed_on_time,{_DEPARTMENT_COUNTS},
    0 AS cancelled
FROM bench_cases
WHERE {_FILED} AND (department_id = $3 OR returned_by_department_id = $3)
"""
PLAIN_INDICATORS = {
    "city": _PLACE_SQL,
    "district": _PLACE_SQL + " AND district_id = $3",
    "street": _PLACE_SQL + " AND street_id = $3",
    "department": _DEPARTMENT_SQL,
}
# The monthly ranking: departments by on-time closure rate, ties by more cases due, then by id
# (the order the API ranks in).
PLAIN_RANKING = f"""
SELECT department_id, closed, closed_on_time, overdue_open,
       closed_on_time::float8 / nullif(closed + overdue_open, 0) AS on_time_closure_rate
FROM (
    SELECT department_id,
           count(*) FILTER (WHERE closed_at IS NOT NULL) AS closed,
           count(*) FILTER (WHERE closed_at IS NOT NULL AND closed_on_time) AS closed_on_time,
           count(*) FILTER (WHERE overdue AND closed_at IS NULL) AS overdue_open
    FROM bench_cases
    WHERE {_FILED} AND department_id IS NOT NULL
    GROUP BY department_id
) AS held
ORDER BY on_time_closure_rate DESC NULLS LAST, closed + overdue_open DESC, department_id
"""
RANKED = ("closed", "closed_on_time", "overdue_open")


async def _series(
    ask: Callable[[_Question], Awaitable[_Answer]], questions: Sequence[_Question]
) -> tuple[list[float], dict[_Question, _Answer]]:
    """Latencies (seconds) of up to ``REQUESTS`` questions asked one after another, cycling
    through ``questions`` after ``WARMUP`` unrecorded ones; and the first answer to each question.
    """
    cycle = itertools.cycle(questions)
    for question in itertools.islice(cycle, WARMUP):
        await ask(question)
    latencies: list[float] = []
    answers: dict[_Question, _Answer] = {}
    deadline = time.perf_counter() + SERIES_SECONDS
    for question in itertools.islice(cycle, REQUESTS):
        started = time.perf_counter()
        answer = await ask(question)
        latencies.append(time.perf_counter() - started)
        answers.setdefault(question, answer)
        if len(latencies) >= MIN_REQUESTS and started > deadline:
            break
    return latencies, answers


def _percentiles(latencies: list[float]) -> tuple[float, float]:
    """p50 and p99 in milliseconds."""
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    return round(cuts[49] * 1000, 2), round(cuts[98] * 1000, 2)


class Disagreement(RuntimeError):
    """The API and the plain SQL answered the same question differently."""


def _check_indicators(api: Mapping[Question, httpx.Response], sql: Mapping[Question, Any]) -> int:
    compared = closed = 0
    for question, response in api.items():
        if question not in sql:
            continue
        # A department is answered without what it does not have (filing, on-time dispatch).
        kept = [name for name in COUNTERS if name in indicators_of(question.scope_kind)]
        theirs = {name: int(sql[question][name]) for name in kept}
        ours = response.json()["counters"]
        if ours != theirs:
            differing = {name: (ours.get(name), theirs[name]) for name in kept if ours.get(name) != theirs[name]}
            raise Disagreement(f"{question}: API vs plain SQL differ on {differing}")
        compared += 1
        closed += ours["closed"]
    if not closed:
        raise Disagreement("no closed case in any answer compared: the check would prove nothing")
    return compared


def _check_rankings(api: Mapping[date, httpx.Response], sql: Mapping[date, list[Any]]) -> int:
    compared = 0
    for month, response in api.items():
        if month not in sql:
            continue
        # The API ranks every department with a counters row in the month, also those with
        # nothing due (a rate over zero ranks last); the plain table only knows holders of cases.
        ours = [
            (row["scope_id"], *(row["counters"][name] for name in RANKED))
            for row in response.json()["ranking"]
            if row["counters"]["closed"] + row["counters"]["overdue_open"] > 0
        ]
        theirs = [
            (row["department_id"], *(int(row[name]) for name in RANKED))
            for row in sql[month]
            if row["closed"] + row["overdue_open"] > 0
        ]
        if ours != theirs:
            raise Disagreement(f"ranking of {month:%Y-%m}: API {ours[:5]}... vs plain SQL {theirs[:5]}...")
        compared += 1
    return compared


async def measure(
    connection: Any, client: httpx.AsyncClient, city: City, loaded: Loaded, seed: int
) -> dict[str, float | int]:
    """Both sides' latencies for one size, once their answers are shown to agree."""
    zone = ZoneInfo(city.timezone)
    months = [date(YEAR, month, 1) for month in range(1, 13)]
    bounds = {month: _month_bounds(month, zone) for month in months}
    held = loaded.departments
    # Departments of every size, from the one holding most cases down.
    departments = sorted({held[i * (len(held) - 1) // 3] for i in range(4)}) if held else []
    scopes = [
        ("city", domain.CITY),
        *(("district", district.id) for district in city.districts),
        *(("street", street.id) for street in city.streets[:: max(1, len(city.streets) // 4)][:4]),
        *(("department", department) for department in departments),
    ]
    questions = [Question(kind, scope_id, month) for kind, scope_id in scopes for month in months]
    rng = random.Random(seed)
    rng.shuffle(questions)
    ranking_months = list(months)
    rng.shuffle(ranking_months)

    async def api_indicators(question: Question) -> httpx.Response:
        response = await client.get(
            "/assessment/indicators",
            params={
                "scope_kind": question.scope_kind,
                "scope_id": question.scope_id,
                "period": "month",
                "date": question.month.isoformat(),
            },
        )
        response.raise_for_status()
        return response

    async def counter_lookup(question: Question) -> Any:
        return await connection.fetchrow(COUNTER_LOOKUP, question.scope_kind, question.scope_id, question.month)

    async def plain_indicators(question: Question) -> Any:
        statement = PLAIN_INDICATORS[question.scope_kind]
        scope = () if question.scope_kind == "city" else (question.scope_id,)
        return await connection.fetchrow(statement, *bounds[question.month], *scope)

    async def api_ranking(month: date) -> httpx.Response:
        response = await client.get(
            "/assessment/rankings",
            params={
                "scope_kind": "department",
                "indicator": "on_time_closure_rate",
                "period": "month",
                "date": month.isoformat(),
            },
        )
        response.raise_for_status()
        return response

    async def plain_ranking(month: date) -> list[Any]:
        return list(await connection.fetch(PLAIN_RANKING, *bounds[month]))

    indicator, indicator_answers = await _series(api_indicators, questions)
    lookup, lookup_answers = await _series(counter_lookup, questions)
    plain, plain_answers = await _series(plain_indicators, questions)
    ranking, ranking_answers = await _series(api_ranking, ranking_months)
    ranking_plain, ranking_plain_answers = await _series(plain_ranking, ranking_months)

    checked = _check_indicators(indicator_answers, plain_answers)
    checked += _check_rankings(ranking_answers, ranking_plain_answers)
    # The lookup must read what the API reads, or it would not show the API's own cost.
    for question, row in lookup_answers.items():
        response = indicator_answers.get(question)
        if response is None:
            continue
        answered = response.json()["counters"]
        if {name: int(row[name]) for name in answered} != answered:
            raise Disagreement(f"{question}: the counter lookup and the API differ")

    figures: dict[str, float | int] = {}
    for name, latencies in (
        ("indicator", indicator),
        ("counter_lookup_sql", lookup),
        ("sql", plain),
        ("ranking", ranking),
        ("ranking_sql", ranking_plain),
    ):
        figures[f"{name}_p50_ms"], figures[f"{name}_p99_ms"] = _percentiles(latencies)
        figures[f"{name}_requests"] = len(latencies)
    figures["answers_checked"] = checked
    return figures


def _label(size: int) -> str:
    """10_000 → ``10k``, 1_000_000 → ``1M``."""
    if size % 1_000_000 == 0:
        return f"{size // 1_000_000}M"
    if size % 1_000 == 0:
        return f"{size // 1_000}k"
    return str(size)


async def run(
    *,
    settings: Settings,
    assessment_url: str,
    token: str,
    sizes: Sequence[int] = SIZES,
    seed: int = 1,
) -> dict[str, Any]:
    """Load each size in turn and measure both ways of answering; figures keyed by size label.

    ``assessment_url`` is a running assessment process on ``settings``' database whose stream
    writes nothing (it follows an empty topic): the counters are the ones loaded here. The worker
    processes are spawned, so the calling program's main module must be safe to import (guarded
    by ``if __name__ == "__main__"``).
    """
    started = time.perf_counter()
    city = load_city(settings.city_dir)
    engine = create_engine(settings.database_url("assessment"))
    try:
        await upgrade_to_head("assessment", engine)
    finally:
        await engine.dispose()
    # asyncpg itself, for COPY and for timing without SQLAlchemy's share, reaching the database as
    # the service does (the dialect turns the URL's options, ``ssl`` among them, into asyncpg's).
    connect = dict(engine.dialect.create_connect_args(engine.url)[1])
    connection = await asyncpg.connect(**connect)
    results: dict[str, Any] = {}

    def put(key: str, label: str, value: Any) -> None:
        results.setdefault(key, {})[label] = value

    # Spawned, not forked: the caller's process has an event loop, threads and sockets.
    pool = ProcessPoolExecutor(max_workers=WORKERS, mp_context=multiprocessing.get_context("spawn"))
    try:
        async with httpx.AsyncClient(
            base_url=assessment_url, headers={"Authorization": f"Bearer {token}"}, timeout=60
        ) as client:
            for size in sizes:
                label = _label(size)
                loaded = await load(connection, pool, settings.city_dir, connect, size, seed)
                put("load_seconds", label, round(loaded.seconds, 1))
                put("load_phases_seconds", label, loaded.phases)
                put("counter_rows", label, loaded.counter_rows)
                for table in ("counters", "bench_cases"):
                    size_bytes = await connection.fetchval("SELECT pg_total_relation_size($1::regclass)", table)
                    put(f"{table}_mb", label, round(size_bytes / 2**20, 1))
                for key, value in (await measure(connection, client, city, loaded, seed)).items():
                    put(key, label, value)
    finally:
        pool.shutdown(cancel_futures=True)
        await connection.close()
    results["seconds"] = round(time.perf_counter() - started, 1)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    """Run the query benchmark alone, on the ``CITYCASE_*`` settings, and print its figures."""
    parser = argparse.ArgumentParser(prog="python -m bench.query", description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="a running assessment process on the same database")
    parser.add_argument("--sizes", default=",".join(str(size) for size in SIZES), help="comma-separated")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    settings = Settings()
    lead = Principal(username="bench", role=Role.SHIFT_LEAD, name="benchmark")
    token = TokenIssuer(settings.token_secret(), SystemClock(), ttl=timedelta(hours=1)).issue_machine(lead)
    sizes = [int(size) for size in args.sizes.split(",")]
    results = asyncio.run(run(settings=settings, assessment_url=args.url, token=token, sizes=sizes, seed=args.seed))
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
