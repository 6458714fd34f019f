"""The batch recount of the assessment indicators: ``python -m services reconcile``.

The assessment service counts the indicators as a stream of events. This command counts them a
second way — from the lifecycle services' own records, read through their NDJSON exports — and
compares the two value by value: every base counter of ``assessment/INDICATORS.md``, for every
scope and every day, week and month. It imports nothing from ``assessment``: two independent
implementations of one contract, so a bug in either shows as a difference. Only the names of
the counters are common to both (``shared/city/indicators.py``).

The four exports are ordered by case id, so they are merged case by case as they stream in and
only the counters stay in memory. Counters are recounted per day and rolled up into weeks and
months ("counters add up across periods", INDICATORS.md).

Run it when the event log is drained: a case whose events are still in flight is counted by the
services that have seen them and not yet by the stream (or the other way round).
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import sys
from collections.abc import AsyncGenerator, AsyncIterable, Iterable, Mapping, Sequence
from contextlib import AsyncExitStack, aclosing
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Generic, TextIO, TypeVar
from uuid import UUID
from zoneinfo import ZoneInfo

import httpx
from pydantic import BaseModel, ConfigDict, ValidationError

from shared.city.indicators import COUNTERS as COUNTERS  # re-exported: the tests read it here
from shared.city.loader import CityDataError, load_city
from shared.city.model import City
from shared.core.auth import Principal, Role, TokenIssuer
from shared.core.clock import SimulatedClockMissing, clock_of_folder
from shared.core.settings import Settings
from shared.events.catalogue import CallbackVerdict

_INDEX = {name: i for i, name in enumerate(COUNTERS)}
EXPORTS = {
    "intake": "/export/reports",
    "dispatch": "/export/cases",
    "handling": "/export/cases",
    "closure": "/export/cases",
    "assessment": "/export/counters",
}
RECONCILED_SERVICES = tuple(EXPORTS)
LISTED = 50

RowKey = tuple[str, str, str, str]
"""(scope_kind, scope_id, period_kind, period_start as an ISO date)."""


class ReconcileError(Exception):
    """The recount could not be done: a service did not answer, or its export is not readable."""


# --- the records, as the services' exports give them -------------------------------------------


class _Line(BaseModel):
    # Exports may carry more than the recount reads; extra fields are ignored.
    model_config = ConfigDict(frozen=True, extra="ignore")

    id: UUID


class ReportLine(_Line):
    """A report from intake's export; ``filed_at`` is set when it became a case (立案),
    ``callback_verdict`` once the hotline called the citizen back (回访): the latest verdict."""

    source: str
    category_code: str
    cell_id: str
    community_id: str
    street_id: str
    district_id: str
    received_at: datetime
    filed_at: datetime | None = None
    filing_deadline: datetime | None = None
    callback_verdict: CallbackVerdict | None = None


class AssignmentLine(BaseModel):
    """One dispatch attempt (派遣); ``returned_at`` when dispatch accepted the return (回退)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    attempt: int
    department_id: str
    dispatched_at: datetime
    returned_at: datetime | None = None


class DispatchLine(_Line):
    """A case from dispatch's export."""

    dispatch_deadline: datetime | None = None
    deadline_missed_at: datetime | None = None
    assignments: tuple[AssignmentLine, ...] = ()


class HandlingLine(_Line):
    """A case (or a report never filed) from handling's export."""

    first_handled_at: datetime | None = None


class ClosureLine(_Line):
    """A case from closure's export; ``checks`` are the check tasks answered, ``check_missed_at``
    is set while the open one is past its deadline unanswered; ``reopens`` counts the reopens after
    an unsatisfied callback."""

    status: str
    on_time: bool | None = None
    checks_requested: int = 0
    checks: int = 0
    check_missed_at: datetime | None = None
    checks_on_time: int = 0
    checks_failed: int = 0
    reopens: int = 0


class CounterRow(BaseModel):
    """One row of the stream's counters (``GET /assessment/export/counters``)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    scope_kind: str
    scope_id: str
    period_kind: str
    period_start: date
    values: dict[str, int]

    @property
    def key(self) -> RowKey:
        """The row's key."""
        return (self.scope_kind, self.scope_id, self.period_kind, self.period_start.isoformat())


@dataclass(frozen=True, slots=True)
class CaseRecords:
    """Everything the services recorded of one report: intake's always, the others' when they have it."""

    report: ReportLine
    dispatch: DispatchLine | None = None
    handling: HandlingLine | None = None
    closure: ClosureLine | None = None


# --- the recount: records -> counters, no I/O ------------------------------------------------------


@dataclass(frozen=True)
class CityFacts:
    """What the recount needs of the city: its time zone, who patrols a cell, a category's family."""

    timezone: ZoneInfo
    inspectors: Mapping[str, str]
    families: Mapping[str, str]

    @classmethod
    def of(cls, city: City) -> CityFacts:
        """The facts of a loaded city."""
        return cls(
            timezone=ZoneInfo(city.timezone),
            inspectors={cell.id: city.inspector_for(cell.id).id for cell in city.cells},
            families={category.code: category.family.value for category in city.categories},
        )

    def scopes(self, report: ReportLine) -> list[tuple[str, str]]:
        """Every scope a report counts in, but its department's."""
        try:
            inspector, family = self.inspectors[report.cell_id], self.families[report.category_code]
        except KeyError as missing:
            raise ReconcileError(f"report {report.id}: the city has no cell or category {missing}") from None
        return [
            ("city", "city"),
            ("district", report.district_id),
            ("street", report.street_id),
            ("community", report.community_id),
            ("cell", report.cell_id),
            ("category", report.category_code),
            ("family", family),
            ("source", report.source),
            ("inspector", inspector),
        ]

    def day(self, instant: datetime) -> str:
        """The local date of an instant, as an ISO date."""
        return instant.astimezone(self.timezone).date().isoformat()


class Counters:
    """Base counters by row key; a row holds one integer per name of ``COUNTERS``."""

    def __init__(self) -> None:
        self._rows: dict[RowKey, list[int]] = {}

    def values(self, key: RowKey) -> dict[str, int]:
        """A row's non-zero counters (empty for a row never counted)."""
        row = self._rows.get(key)
        return {} if row is None else {name: n for name, n in zip(COUNTERS, row, strict=True) if n}

    def pop(self, key: RowKey) -> dict[str, int]:
        """A row's non-zero counters, removing the row."""
        values = self.values(key)
        self._rows.pop(key, None)
        return values

    def row_keys(self) -> list[RowKey]:
        """Every row key, sorted."""
        return sorted(self._rows)

    def __len__(self) -> int:
        return len(self._rows)

    def add_case(self, case: CaseRecords, city: CityFacts) -> None:
        """Count one report and, if it became a case, the case, in day rows (see INDICATORS.md)."""
        report = case.report
        scopes = city.scopes(report)
        received = city.day(report.received_at)
        self._add_all(scopes, received, {"reports": 1})
        if report.filed_at is None:
            return  # rejected, merged or still pending: only the report counts
        filed = city.day(report.filed_at)
        attempts = sorted(case.dispatch.assignments, key=lambda a: a.attempt) if case.dispatch else []
        # The current department: the latest dispatch's, unless that dispatch was returned.
        current = attempts[-1].department_id if attempts and attempts[-1].returned_at is None else None
        case_scopes = [*scopes, ("department", current)] if current is not None else scopes
        if case.closure is not None and case.closure.status == "cancelled":
            # 作废: everything but the report is retracted; only the cancellation counts.
            self._add_all(scopes, filed, {"cancelled": 1})
            return
        on_time_filing = report.filing_deadline is None or report.filed_at <= report.filing_deadline
        self._add_all(scopes, received, {"filed": 1, "filed_on_time": int(on_time_filing)})
        self._add_all(case_scopes, filed, _case_counters(case))
        # On-time dispatch is the command center's: no department counts it.
        self._add_all(scopes, filed, _dispatch_counters(case, attempts))
        for attempt in attempts:
            returned = int(attempt.returned_at is not None)
            self._add_all(scopes, filed, {"dispatches": 1, "returns": returned})
            self._add_all([("department", attempt.department_id)], filed, {"dispatches": 1, "returns": returned})

    def _add_all(self, scopes: Sequence[tuple[str, str]], day: str, amounts: Mapping[str, int]) -> None:
        wanted = [(_INDEX[name], n) for name, n in amounts.items() if n]
        if not wanted:
            return
        for scope_kind, scope_id in scopes:
            key = (scope_kind, scope_id, "day", day)
            row = self._rows.get(key)
            if row is None:
                row = self._rows[key] = [0] * len(COUNTERS)
            for index, n in wanted:
                row[index] += n

    def roll_up(self) -> None:
        """Add week rows (ISO weeks, named by their Monday) and month rows (named by their first
        day) as sums of the day rows.
        """
        for (scope_kind, scope_id, period_kind, start), row in list(self._rows.items()):
            if period_kind != "day":
                continue
            day = date.fromisoformat(start)
            for kind, first in (("week", day - timedelta(days=day.weekday())), ("month", day.replace(day=1))):
                key = (scope_kind, scope_id, kind, first.isoformat())
                total = self._rows.get(key)
                if total is None:
                    total = self._rows[key] = [0] * len(COUNTERS)
                for index, n in enumerate(row):
                    total[index] += n


def _dispatch_counters(case: CaseRecords, attempts: Sequence[AssignmentLine]) -> dict[str, int]:
    """Whether a filed, not cancelled case was dispatched, and on time (按时派遣)."""
    dispatch_deadline = case.dispatch.dispatch_deadline if case.dispatch else None
    return {
        "cases_dispatched": int(bool(attempts)),
        "dispatched_on_time": int(
            bool(attempts) and (dispatch_deadline is None or attempts[0].dispatched_at <= dispatch_deadline)
        ),
    }


# The verdicts counted satisfied (满意率 counts basically satisfied as satisfied).
_SATISFIED = frozenset({CallbackVerdict.SATISFIED, CallbackVerdict.BASICALLY_SATISFIED})


def _case_counters(case: CaseRecords) -> dict[str, int]:
    """The counters of a filed, not cancelled case that go to its current department too."""
    closure = case.closure
    closed = closure is not None and closure.status == "closed"
    verdict = case.report.callback_verdict
    counters = {
        "handled": int(case.handling is not None and case.handling.first_handled_at is not None),
        "closed": int(closed),
        "closed_on_time": int(closed and closure is not None and closure.on_time is True),
        # Closure wins over overdue.
        "overdue_open": int(not closed and case.dispatch is not None and case.dispatch.deadline_missed_at is not None),
        "callbacks": int(verdict is not None),
        "satisfied": int(verdict in _SATISFIED),
    }
    if closure is not None:
        # A check is due once answered, or once its deadline passed unanswered while still open.
        open_and_missed = closure.status == "checking" and closure.check_missed_at is not None
        counters.update(
            # 返工: a failed check, or a reopen after an unsatisfied callback.
            reworked=int(closure.checks_failed > 0 or closure.reopens > 0),
            checks_requested=closure.checks_requested,
            checks_due=closure.checks + int(open_and_missed),
            checks_on_time=closure.checks_on_time,
        )
    return counters


def recount(cases: Iterable[CaseRecords], city: CityFacts) -> Counters:
    """Every base counter of every scope for every day, week and month, from the records."""
    counters = Counters()
    for case in cases:
        counters.add_case(case, city)
    counters.roll_up()
    return counters


# --- the comparison ------------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class Difference:
    """One value the two paths disagree on."""

    key: RowKey
    counter_rank: int
    counter: str
    batch: int
    stream: int

    def __str__(self) -> str:
        scope_kind, scope_id, period_kind, period_start = self.key
        return (
            f"{scope_kind} {scope_id} {period_kind} {period_start} {self.counter}:"
            f" batch {self.batch}, stream {self.stream}"
        )


@dataclass
class Comparison:
    """How many values were compared, how many differ, and the first differences in key order."""

    listed: int = LISTED
    compared: int = 0
    different: int = 0
    first: list[Difference] = field(default_factory=list)

    def value(self, key: RowKey, counter: str, batch: int, stream: int) -> None:
        """Compare one value of one row."""
        self.compared += 1
        if batch == stream:
            return
        self.different += 1
        difference = Difference(key, _INDEX.get(counter, len(COUNTERS)), counter, batch, stream)
        # Keep only the smallest ``listed`` differences: a broken stream may differ everywhere.
        if len(self.first) < self.listed or difference < self.first[-1]:
            bisect.insort(self.first, difference)
            del self.first[self.listed :]

    def row(self, key: RowKey, batch: Mapping[str, int], stream: Mapping[str, int]) -> None:
        """Compare every counter either side has for one row."""
        for counter in sorted(batch.keys() | stream.keys(), key=lambda name: (_INDEX.get(name, len(COUNTERS)), name)):
            self.value(key, counter, batch.get(counter, 0), stream.get(counter, 0))

    def report(self) -> list[str]:
        """The summary line, then the differences listed."""
        lines = [f"compared {self.compared} values, {self.different} differences"]
        lines += [f"  {difference}" for difference in self.first]
        if self.different > len(self.first):
            lines.append(f"  ... and {self.different - len(self.first)} more")
        return lines


def compare(batch: Counters, stream: Iterable[CounterRow], listed: int = LISTED) -> Comparison:
    """Compare the batch's counters with the stream's rows, over the union of both sides."""
    comparison = Comparison(listed)
    for row in stream:
        comparison.row(row.key, batch.pop(row.key), row.values)
    return _finish(comparison, batch)


def _finish(comparison: Comparison, batch: Counters) -> Comparison:
    # What is left of the batch, the stream does not have at all.
    for key in batch.row_keys():
        comparison.row(key, batch.pop(key), {})
    return comparison


# --- reading the exports -------------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoints:
    """Where each service is: one base URL serving them all, or one per service (each process
    still mounts its service under ``/<service>``).
    """

    base: str
    overrides: Mapping[str, str] = field(default_factory=dict)

    def export_url(self, service: str) -> str:
        """The URL of a service's export."""
        return f"{self.overrides.get(service, self.base).rstrip('/')}/{service}{EXPORTS[service]}"


M = TypeVar("M", bound=BaseModel)


async def read_export(client: httpx.AsyncClient, url: str, model: type[M]) -> AsyncGenerator[M, None]:
    """The records of one NDJSON export, as they stream in."""
    try:
        async with client.stream("GET", url) as response:
            if response.status_code != 200:
                body = (await response.aread()).decode(errors="replace")
                raise ReconcileError(f"GET {url}: {response.status_code} {body[:500]}")
            number = 0
            async for line in response.aiter_lines():
                number += 1
                if not line.strip():
                    continue
                try:
                    yield model.model_validate_json(line)
                except ValidationError as exc:
                    raise ReconcileError(f"GET {url}: line {number} is not a {model.__name__}: {exc}") from None
    except httpx.HTTPError as exc:
        raise ReconcileError(f"GET {url}: {type(exc).__name__}: {exc}") from exc


R = TypeVar("R", bound=_Line)


class _Follower(Generic[R]):
    """One export read alongside intake's: both are ordered by id, so a case's record is found by
    reading forward to it.
    """

    def __init__(self, name: str, records: AsyncIterable[R]) -> None:
        self.name = name
        self._records = aiter(records)
        self._next: R | None = None
        self._done = False
        self._last: UUID | None = None

    async def _peek(self) -> R | None:
        if self._next is None and not self._done:
            self._next = await anext(self._records, None)
            self._done = self._next is None
            if self._next is not None:
                if self._last is not None and self._next.id <= self._last:
                    raise ReconcileError(f"the {self.name} export is not ordered by id at {self._next.id}")
                self._last = self._next.id
        return self._next

    async def take(self, case_id: UUID) -> R | None:
        """The record of ``case_id``, if this service has one."""
        record = await self._peek()
        if record is not None and record.id < case_id:
            raise ReconcileError(f"the {self.name} export has case {record.id}, which intake never received")
        if record is None or record.id != case_id:
            return None
        self._next = None
        return record

    async def skip_rest(self) -> None:
        """Read past the records after intake's last report, still checking their order."""
        while await self._peek() is not None:
            self._next = None


async def joined_cases(
    reports: AsyncIterable[ReportLine],
    dispatch: AsyncIterable[DispatchLine],
    handling: AsyncIterable[HandlingLine],
    closure: AsyncIterable[ClosureLine],
) -> AsyncGenerator[CaseRecords, None]:
    """The four exports merged by case id, one report at a time.

    Records after intake's last report are skipped: ids are time-ordered, so they belong to
    reports received after intake's export was read.
    """
    dispatches, handlings, closures = (
        _Follower("dispatch", dispatch),
        _Follower("handling", handling),
        _Follower("closure", closure),
    )
    last: UUID | None = None
    async for report in reports:
        if last is not None and report.id <= last:
            raise ReconcileError(f"the intake export is not ordered by id at {report.id}")
        last = report.id
        yield CaseRecords(
            report,
            dispatch=await dispatches.take(report.id),
            handling=await handlings.take(report.id),
            closure=await closures.take(report.id),
        )
    for follower in (dispatches, handlings, closures):
        await follower.skip_rest()


async def batch_counters(client: httpx.AsyncClient, endpoints: Endpoints, city: CityFacts) -> Counters:
    """The batch side: every counter recounted from the four lifecycle services' exports."""
    counters = Counters()
    # Exports left unfinished by an error are closed here, not left to the garbage collector with
    # their connections open.
    async with AsyncExitStack() as exports:

        async def read(service: str, model: type[M]) -> AsyncGenerator[M, None]:
            return await exports.enter_async_context(
                aclosing(read_export(client, endpoints.export_url(service), model))
            )

        cases = joined_cases(
            await read("intake", ReportLine),
            await read("dispatch", DispatchLine),
            await read("handling", HandlingLine),
            await read("closure", ClosureLine),
        )
        async with aclosing(cases):
            async for case in cases:
                counters.add_case(case, city)
    counters.roll_up()
    return counters


async def reconcile(
    client: httpx.AsyncClient, endpoints: Endpoints, city: CityFacts, out: TextIO, listed: int = LISTED
) -> int:
    """Recount, compare with the stream's counters, print the result; the exit status (1 when
    anything differs).
    """
    batch = await batch_counters(client, endpoints, city)
    comparison = Comparison(listed)
    async with aclosing(read_export(client, endpoints.export_url("assessment"), CounterRow)) as stream:
        async for row in stream:
            comparison.row(row.key, batch.pop(row.key), row.values)
    _finish(comparison, batch)
    for line in comparison.report():
        print(line, file=out)
    return 1 if comparison.different else 0


def recount_token(settings: Settings) -> str:
    """A shift lead's token for the recount, issued on the city's clock: one issued on today's date
    is from the future of a simulated city, which refuses it."""
    clock = clock_of_folder(settings.data_dir, settings.clock_file, real_time=settings.real_time)
    return TokenIssuer(settings.token_secret(), clock, ttl=timedelta(hours=1)).issue_machine(
        Principal(username="reconcile", role=Role.SHIFT_LEAD, name="batch recount of the indicators")
    )


def run(settings: Settings, endpoints: Endpoints, timeout_s: float) -> int:
    """The command: a shift lead's token minted with the configured secret, the city from its
    folder, then ``reconcile``. Exit status 0 (agree), 1 (differences) or 2 (could not compare).
    """
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request would drown the result
    try:
        city = CityFacts.of(load_city(settings.city_dir))
    except (CityDataError, OSError) as exc:
        print(f"reconcile: cannot load the city: {exc}", file=sys.stderr)
        return 2
    try:
        token = recount_token(settings)
    except (SimulatedClockMissing, ValueError) as exc:
        print(f"reconcile: {exc}", file=sys.stderr)
        return 2

    async def main() -> int:
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(headers=headers, timeout=timeout_s) as client:
            return await reconcile(client, endpoints, city, sys.stdout)

    try:
        return asyncio.run(main())
    except ReconcileError as exc:
        print(f"reconcile: {exc}", file=sys.stderr)
        return 2
