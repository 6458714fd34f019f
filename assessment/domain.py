"""The assessment rules (综合评价): how a case's events become its counters. Pure, no I/O.

Each case keeps a compact state; its **contribution** is the counters it adds to every scope and
anchor day, a function of that state alone. An event changes the state, and the change of the
case's contribution (new minus old) is what the stream adds to the counters, so any history —
late events for a past month, a closure retracting an overdue — comes out exactly as a recount
would. The rules are written down in INDICATORS.md.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from datetime import date, datetime, timedelta, tzinfo
from enum import StrEnum
from functools import lru_cache
from operator import add
from typing import Any

from pydantic_core import to_json

# Re-exported (``as``): the stream's readers (bench, the tests) know the names as the domain's.
from shared.city.indicators import CITY as CITY
from shared.city.indicators import COUNTERS as COUNTERS
from shared.city.indicators import NOT_FOR_DEPARTMENTS, indicators_of
from shared.core.errors import InvalidInput
from shared.events.catalogue import (
    CallbackRecorded,
    CallbackVerdict,
    CaseCancelled,
    CaseClosed,
    CaseDispatched,
    CaseFiled,
    CaseHandled,
    CaseQueuedForCoordination,
    CaseReopened,
    CaseResumed,
    CaseReturned,
    CaseSuspended,
    CheckFailed,
    CheckPassed,
    CheckRequested,
    DeadlineKind,
    DeadlineMissed,
    DeadlineRecomputed,
    EventPayload,
    ExtensionApproved,
    GridPlace,
    ReportReceived,
)
from shared.events.envelope import Event

INDEX: Mapping[str, int] = {name: i for i, name in enumerate(COUNTERS)}
WIDTH = len(COUNTERS)

# The verdicts the satisfaction rate (满意率) counts as satisfied: basically satisfied is satisfied.
SATISFIED_VERDICTS = frozenset({CallbackVerdict.SATISFIED, CallbackVerdict.BASICALLY_SATISFIED})


class PeriodKind(StrEnum):
    """The buckets counters are kept in; a custom range is summed from days."""

    DAY = "day"
    WEEK = "week"
    MONTH = "month"


def period_start(kind: PeriodKind, day: date) -> date:
    """The first day of the ``kind`` period that contains ``day`` (ISO weeks start on Monday)."""
    if kind is PeriodKind.DAY:
        return day
    if kind is PeriodKind.WEEK:
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def period_end(kind: PeriodKind, start: date) -> date:
    """The last day of the ``kind`` period starting on ``start``."""
    if kind is PeriodKind.DAY:
        return start
    if kind is PeriodKind.WEEK:
        return start + timedelta(days=6)
    next_month = (start.replace(day=28) + timedelta(days=4)).replace(day=1)
    return next_month - timedelta(days=1)


class Flow(StrEnum):
    """Where the case stands with dispatch, mirrored so a return counts only where dispatch takes it."""

    NONE = ""
    COORDINATION = "coordination"
    DISPATCHED = "dispatched"
    RETURNED = "returned"
    HANDLED = "handled"
    SUSPENDED = "suspended"
    CLOSED = "closed"


@dataclass(frozen=True)
class Attribution:
    """What the city knows that events do not carry: a category's family, a cell's inspector."""

    family_of: Callable[[str], str]
    inspector_of: Callable[[str], str | None]


@dataclass(slots=True)
class CaseState:
    """All the stream remembers of one report and the case it became."""

    received_at: datetime | None = None
    source: str | None = None
    category_code: str | None = None
    family: str | None = None
    cell_id: str | None = None
    community_id: str | None = None
    street_id: str | None = None
    district_id: str | None = None
    inspector_id: str | None = None
    filed_at: datetime | None = None
    filed_on_time: bool = False
    dispatch_deadline: datetime | None = None
    first_dispatched_at: datetime | None = None
    # One [department_id, returned] pair per dispatch attempt, in order.
    assignments: list[list[Any]] = field(default_factory=list)
    flow: Flow = Flow.NONE
    overdue: bool = False
    handled: bool = False
    reworked: bool = False
    checks_requested: int = 0
    # Checks due (应核查): answered, or reported missed while open — each check once.
    checks_due: int = 0
    checks_on_time: int = 0
    check_deadline: datetime | None = None
    # The open check passed its deadline unanswered (closure's timer said so): it is due already.
    check_missed: bool = False
    closed: bool = False
    closed_on_time: bool = False
    cancelled: bool = False
    # The hotline called the citizen back (回访) at least once, and what the latest verdict said.
    called_back: bool = False
    satisfied: bool = False
    # Ids of the events applied: a copy delivered twice (or published twice) changes nothing.
    event_ids: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready form for the state table. It shares the lists of the state: it is for
        writing at once, not for keeping (a deep copy here was a tenth of the stream's time).
        """
        data = {name: getattr(self, name) for name in _STATE_FIELDS}
        for name in _STATE_TIMES:
            value = data[name]
            if value is not None:
                data[name] = value.isoformat()
        return data

    def to_text(self) -> str:
        """``to_json`` as JSON text (times in RFC 3339, UTC as ``Z``), which ``from_json`` reads back.

        pydantic-core's serializer, not ``json.dumps`` of ``to_json``: a replay writes every case's
        state with each batch, and the standard library took a twelfth of its time.
        """
        return to_json(self).decode()

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CaseState:
        """The state stored by ``to_json``."""
        values = dict(data)
        for name in _STATE_TIMES:
            if values.get(name) is not None:
                values[name] = datetime.fromisoformat(values[name])
        values["flow"] = Flow(values.get("flow", ""))
        return cls(**values)

    @property
    def current_department(self) -> str | None:
        """The department of the latest dispatch, unless it was returned."""
        if self.assignments and not self.assignments[-1][1]:
            return str(self.assignments[-1][0])
        return None


_STATE_FIELDS = tuple(f.name for f in fields(CaseState))
_STATE_TIMES = ("received_at", "filed_at", "dispatch_deadline", "first_dispatched_at", "check_deadline")


def apply(state: CaseState, event: Event, attribution: Attribution) -> bool:
    """Apply one event of the case to its state; False when the event was applied before."""
    event_id = str(event.id)
    if event_id in state.event_ids:
        return False
    state.event_ids.append(event_id)
    applier = _APPLY.get(type(event.data))
    if applier is not None:
        applier(state, event.data, event.time, attribution)
    return True


def _on_report_received(state: CaseState, data: ReportReceived, at: datetime, attribution: Attribution) -> None:
    _place(state, at, data.source.value, data.category_code, data.place, attribution)
    state.family = attribution.family_of(data.category_code)


def _on_filed(state: CaseState, data: CaseFiled, at: datetime, attribution: Attribution) -> None:
    if state.received_at is None:  # tolerate a log that starts after the report
        _place(state, data.reported_at, data.source.value, data.category_code, data.place, attribution)
    state.family = data.family.value
    state.filed_at = at
    state.filed_on_time = data.filing_deadline is None or at <= data.filing_deadline
    state.dispatch_deadline = data.dispatch_deadline
    if not data.self_handled:
        state.flow = Flow.COORDINATION


def _on_queued(state: CaseState, data: CaseQueuedForCoordination, at: datetime, attribution: Attribution) -> None:
    state.flow = Flow.COORDINATION


def _on_dispatched(state: CaseState, data: CaseDispatched, at: datetime, attribution: Attribution) -> None:
    state.assignments.append([data.department_id, False])
    if state.first_dispatched_at is None:
        state.first_dispatched_at = at
    state.flow = Flow.DISPATCHED
    state.overdue = False


def _on_returned(state: CaseState, data: CaseReturned, at: datetime, attribution: Attribution) -> None:
    # Dispatch takes a return only from the department holding the case, before it reports back.
    if state.flow is Flow.DISPATCHED and state.current_department == data.department_id:
        state.assignments[-1][1] = True
        state.flow = Flow.RETURNED
        state.overdue = False


def _on_handled(state: CaseState, data: CaseHandled, at: datetime, attribution: Attribution) -> None:
    state.handled = True
    if state.flow is Flow.DISPATCHED and state.current_department == data.department_id:
        state.flow = Flow.HANDLED


def _on_check_requested(state: CaseState, data: CheckRequested, at: datetime, attribution: Attribution) -> None:
    state.checks_requested += 1
    state.check_deadline = data.check_deadline
    state.check_missed = False


def _on_check_answered(
    state: CaseState, data: CheckPassed | CheckFailed, at: datetime, attribution: Attribution
) -> None:
    # A check reported missed was counted due, and late, when its deadline passed.
    if not state.check_missed:
        state.checks_due += 1
        if state.check_deadline is not None and at <= state.check_deadline:
            state.checks_on_time += 1
    state.check_deadline = None
    state.check_missed = False


def _on_check_failed(state: CaseState, data: CheckFailed, at: datetime, attribution: Attribution) -> None:
    _on_check_answered(state, data, at, attribution)
    state.reworked = True
    if state.flow is Flow.HANDLED:
        state.flow = Flow.DISPATCHED


def _on_suspended(state: CaseState, data: CaseSuspended, at: datetime, attribution: Attribution) -> None:
    state.flow = Flow.SUSPENDED


def _on_resumed(state: CaseState, data: CaseResumed, at: datetime, attribution: Attribution) -> None:
    state.flow = Flow.DISPATCHED
    state.overdue = False


def _on_extension_approved(state: CaseState, data: ExtensionApproved, at: datetime, attribution: Attribution) -> None:
    state.overdue = False


def _on_deadline_missed(state: CaseState, data: DeadlineMissed, at: datetime, attribution: Attribution) -> None:
    if data.kind is DeadlineKind.CHECK:
        # Closure's timer: the open check passed its deadline unanswered, so it is due, and late.
        if state.check_deadline is not None and not state.check_missed:
            state.checks_due += 1
            state.check_missed = True
        return
    # The timer may fire after the department returned the case but before dispatch read the
    # return; dispatch then forgets the miss, and so does the stream: it belongs to a
    # department the case has left.
    if (
        data.kind is DeadlineKind.HANDLING
        and state.flow is not Flow.RETURNED
        and (data.department_id is None or data.department_id == state.current_department)
    ):
        state.overdue = True


def _on_deadline_recomputed(state: CaseState, data: DeadlineRecomputed, at: datetime, attribution: Attribution) -> None:
    # A deadline counted on a provisional calendar year, counted again while its step is still
    # to come: the deadline the step will be judged against. A handling deadline moved to now or
    # later is no longer missed (dispatch clears its mark the same way: a deadline's own instant is
    # not yet a miss); a check reported missed stays so.
    if data.kind is DeadlineKind.HANDLING and at <= data.deadline:
        state.overdue = False
    elif data.kind is DeadlineKind.DISPATCH:
        state.dispatch_deadline = data.deadline
    elif data.kind is DeadlineKind.CHECK and state.check_deadline is not None and not state.check_missed:
        state.check_deadline = data.deadline


def _on_closed(state: CaseState, data: CaseClosed, at: datetime, attribution: Attribution) -> None:
    state.closed = True
    state.closed_on_time = data.on_time
    state.flow = Flow.CLOSED


def _on_reopened(state: CaseState, data: CaseReopened, at: datetime, attribution: Attribution) -> None:
    # Back with the department for rework (返工): not closed until it closes again, and the next
    # closure decides on time afresh.
    state.closed = False
    state.closed_on_time = False
    state.reworked = True
    if state.flow is Flow.CLOSED:
        state.flow = Flow.DISPATCHED


def _on_callback_recorded(state: CaseState, data: CallbackRecorded, at: datetime, attribution: Attribution) -> None:
    state.called_back = True
    state.satisfied = data.verdict in SATISFIED_VERDICTS


def _on_cancelled(state: CaseState, data: CaseCancelled, at: datetime, attribution: Attribution) -> None:
    state.cancelled = True


# What each kind of event does to a case's state: (state, payload, event time, attribution).
# Events not listed (a verification, a supervision...) change no counter; they are still
# remembered as applied.
Applier = Callable[[CaseState, Any, datetime, Attribution], None]
_APPLY: Mapping[type[EventPayload], Applier] = {
    ReportReceived: _on_report_received,
    CaseFiled: _on_filed,
    CaseQueuedForCoordination: _on_queued,
    CaseDispatched: _on_dispatched,
    CaseReturned: _on_returned,
    CaseHandled: _on_handled,
    CheckRequested: _on_check_requested,
    CheckPassed: _on_check_answered,
    CheckFailed: _on_check_failed,
    CaseSuspended: _on_suspended,
    CaseResumed: _on_resumed,
    ExtensionApproved: _on_extension_approved,
    DeadlineMissed: _on_deadline_missed,
    DeadlineRecomputed: _on_deadline_recomputed,
    CaseClosed: _on_closed,
    CaseReopened: _on_reopened,
    CallbackRecorded: _on_callback_recorded,
    CaseCancelled: _on_cancelled,
}


def _place(
    state: CaseState, at: datetime, source: str, category_code: str, place: GridPlace, attribution: Attribution
) -> None:
    state.received_at = at
    state.source = source
    state.category_code = category_code
    state.cell_id = place.cell_id
    state.community_id = place.community_id
    state.street_id = place.street_id
    state.district_id = place.district_id
    state.inspector_id = attribution.inspector_of(place.cell_id)


# A contribution: counter vectors by (scope kind, scope id, anchor day).
ContributionKey = tuple[str, str, date]
Contribution = dict[ContributionKey, list[int]]


def contribution(state: CaseState, zone: tzinfo) -> Contribution:
    """What the case adds to the counters of every scope, by the local day of each anchor. Its
    vectors may be shared between keys: they are for reading."""
    result: Contribution = {}
    if state.received_at is None:
        return result
    scopes = _place_scopes(state)
    received = state.received_at.astimezone(zone).date()
    report = [0] * WIDTH
    report[INDEX["reports"]] = 1
    case = [0] * WIDTH
    per_department: dict[str, list[int]] = {}
    if state.filed_at is not None and state.cancelled:
        case[INDEX["cancelled"]] = 1
    elif state.filed_at is not None:
        report[INDEX["filed"]] = 1
        report[INDEX["filed_on_time"]] = int(state.filed_on_time)
        _case_counters(state, case)
        for department_id, returned in state.assignments:
            vector = per_department.setdefault(department_id, [0] * WIDTH)
            vector[INDEX["dispatches"]] += 1
            vector[INDEX["returns"]] += int(returned)
    for kind, scope_id in scopes:  # a report always counts (``reports``)
        _add(result, (kind, scope_id, received), report)
    if state.filed_at is None:
        return result
    filed = state.filed_at.astimezone(zone).date()
    if any(case):
        for kind, scope_id in scopes:
            _add(result, (kind, scope_id, filed), case)
    department = state.current_department
    if department is not None and not state.cancelled:
        held = list(case)
        for index in _NOT_FOR_THE_HOLDER:
            held[index] = 0
        if any(held):
            _add(result, ("department", department, filed), held)
    for department_id, vector in per_department.items():  # each counts a dispatch
        _add(result, ("department", department_id, filed), vector)
    return result


# What the department holding the case is not credited with: its dispatches and returns go to
# each attempt's department, and what a department never has (on-time dispatch is the command
# center's).
_NOT_FOR_THE_HOLDER = (
    INDEX["dispatches"],
    INDEX["returns"],
    *(INDEX[name] for name in COUNTERS if name in NOT_FOR_DEPARTMENTS),
)


def _case_counters(state: CaseState, case: list[int]) -> None:
    dispatched = bool(state.assignments)
    case[INDEX["cases_dispatched"]] = int(dispatched)
    case[INDEX["dispatched_on_time"]] = int(
        dispatched
        and (
            state.dispatch_deadline is None
            or (state.first_dispatched_at is not None and state.first_dispatched_at <= state.dispatch_deadline)
        )
    )
    case[INDEX["dispatches"]] = len(state.assignments)
    case[INDEX["returns"]] = sum(1 for _, returned in state.assignments if returned)
    case[INDEX["handled"]] = int(state.handled)
    case[INDEX["reworked"]] = int(state.reworked)
    case[INDEX["checks_requested"]] = state.checks_requested
    case[INDEX["checks_due"]] = state.checks_due
    case[INDEX["checks_on_time"]] = state.checks_on_time
    case[INDEX["closed"]] = int(state.closed)
    case[INDEX["closed_on_time"]] = int(state.closed and state.closed_on_time)
    case[INDEX["overdue_open"]] = int(state.overdue and not state.closed)
    case[INDEX["callbacks"]] = int(state.called_back)
    case[INDEX["satisfied"]] = int(state.called_back and state.satisfied)


def _place_scopes(state: CaseState) -> list[tuple[str, str]]:
    candidates = (
        ("city", CITY),
        ("district", state.district_id),
        ("street", state.street_id),
        ("community", state.community_id),
        ("cell", state.cell_id),
        ("category", state.category_code),
        ("family", state.family),
        ("source", state.source),
        ("inspector", state.inspector_id),
    )
    return [(kind, scope_id) for kind, scope_id in candidates if scope_id is not None]


def _add(result: Contribution, key: ContributionKey, vector: list[int]) -> None:
    """Add a vector that is not all zeros at ``key``. It is kept, not copied: no vector of a
    contribution is changed once added (a sum makes a new one)."""
    existing = result.get(key)
    result[key] = vector if existing is None else list(map(add, existing, vector))


def difference(new: Contribution, old: Contribution) -> Iterator[tuple[ContributionKey, list[int]]]:
    """The non-zero changes from ``old`` to ``new``, key by key."""
    for key in new.keys() | old.keys():
        after = new.get(key)
        before = old.get(key)
        if after is None:
            assert before is not None
            yield key, [-value for value in before]
        elif before is None:
            yield key, after
        elif after != before:
            yield key, [a - b for a, b in zip(after, before, strict=True)]


Changes = list[tuple[ContributionKey, list[int]]]


def decide(state: CaseState, events: Iterable[Event], attribution: Attribution, zone: tzinfo) -> Changes | None:
    """Apply a case's ``events`` to its ``state`` (in place: the stream saves it) and return the
    change of the case's contribution; ``None`` when every event had been applied before.
    """
    before = contribution(state, zone)
    applied = [apply(state, event, attribution) for event in events]
    if not any(applied):
        return None
    return list(difference(contribution(state, zone), before))


# A counter row: (scope kind, scope id, period kind, period start).
RowKey = tuple[str, str, str, date]


def to_periods(changes: Iterable[tuple[ContributionKey, list[int]]]) -> dict[RowKey, list[int]]:
    """Fold day-anchored changes into the day, week and month rows they belong to.

    The changes of a batch's cases are summed per scope and day first: most cases of a batch share
    their city-wide, district and category days. The vectors returned may be shared between rows
    and with ``changes``: they are for reading.
    """
    days: dict[ContributionKey, list[int]] = {}
    for anchor, vector in changes:
        existing = days.get(anchor)
        days[anchor] = vector if existing is None else list(map(add, existing, vector))
    rows: dict[RowKey, list[int]] = {}
    for (kind, scope_id, day), vector in days.items():
        if not any(vector):
            continue
        for period, start in _buckets(day):
            key = (kind, scope_id, period, start)
            existing = rows.get(key)
            rows[key] = vector if existing is None else list(map(add, existing, vector))
    return {key: vector for key, vector in rows.items() if any(vector)}


@lru_cache(maxsize=4096)
def _buckets(day: date) -> tuple[tuple[str, date], ...]:
    """The (period kind, start) of every bucket that holds ``day``; asked for again and again."""
    return tuple((period.value, period_start(period, day)) for period in PeriodKind)


def derived(values: Mapping[str, int]) -> dict[str, float | int | None]:
    """The indicators of DOMAIN.md from base counters (a rate over zero is ``None``)."""
    due = values["closed"] + values["overdue_open"]

    def rate(numerator: int, denominator: int) -> float | None:
        return None if denominator == 0 else numerator / denominator

    return_rate = rate(values["returns"], values["dispatches"])
    return {
        "due": due,
        "effective_filing_rate": rate(values["filed"], values["reports"]),
        "closure_rate": rate(values["closed"], due),
        "on_time_closure_rate": rate(values["closed_on_time"], due),
        "on_time_check_rate": rate(values["checks_on_time"], values["checks_due"]),
        "rework_rate": rate(values["reworked"], values["handled"]),
        "return_rate": return_rate,
        "accurate_dispatch_rate": None if return_rate is None else 1 - return_rate,
        "on_time_filing_rate": rate(values["filed_on_time"], values["filed"]),
        "on_time_dispatch_rate": rate(values["dispatched_on_time"], values["cases_dispatched"]),
        "satisfaction_rate": rate(values["satisfied"], values["callbacks"]),
    }


Figures = tuple[dict[str, int], dict[str, float | int | None]]


def figures(scope_kind: str, values: Mapping[str, int]) -> Figures:
    """The base counters and the derived indicators a scope of ``scope_kind`` has, from its
    counters: a department is not answered with what it does not have (on-time dispatch, filing).
    """
    kept = set(indicators_of(scope_kind))
    return (
        {name: n for name, n in values.items() if name in kept},
        {name: value for name, value in derived(values).items() if name in kept},
    )


def ensure_scope_has(scope_kind: str, indicator: str) -> None:
    """``InvalidInput`` unless scopes of ``scope_kind`` have ``indicator``: departments are not
    ranked by on-time dispatch, which measures the command center (DOMAIN.md), nor by filing."""
    if indicator not in indicators_of(scope_kind):
        raise InvalidInput(
            f"a {scope_kind} has no {indicator}: on-time dispatch is the command center's figure, filing"
            " comes before any department has the case",
            {"scope_kind": scope_kind, "indicator": indicator},
        )
