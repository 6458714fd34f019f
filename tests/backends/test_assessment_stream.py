"""Property: whatever the delivery — cases interleaved in any order, events duplicated, batches cut
anywhere, a consumer crashing mid-batch or after a commit and restarting from an older position —
the stream's counters equal a recount of the same case histories.

Histories are generated as plain facts (the case was returned twice, its second check failed...);
the recount below works from those facts and INDICATORS.md, not from the stream's code. The
stream runs for real: the tracked consumer on the embedded backend's SQLite store.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import zoneinfo
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
import pytest_asyncio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select

from assessment.domain import COUNTERS, PeriodKind, period_start
from assessment.handlers import Stream
from assessment.models import case_states, counters, metadata, positions
from assessment.stream import STREAM_CONSUMER
from shared.city.loader import load_city
from shared.city.model import City
from shared.core.clock import SystemClock
from shared.core.ids import new_id
from shared.core.settings import Settings
from shared.db.engine import create_engine
from shared.db.migrations import upgrade_to_head
from shared.events import catalogue as ev
from shared.events.envelope import Event
from shared.messaging.binding import encode
from shared.messaging.bus import Record
from shared.messaging.store import ServiceStore
from shared.messaging.tracked import TrackedConsumer, TrackedConsumerSpec

TOPIC = "case-events"
PARTITIONS = 3
CITY: City = load_city(Settings().city_dir)
ZONE = zoneinfo.ZoneInfo(CITY.timezone)
CELLS = [CITY.cells[0], CITY.cells[1], CITY.cells[-1]]
CATEGORIES = {"02-05-01": "event", "01-01-04": "component"}
DEPARTMENTS = ["co-power", "office-990102001", "dept-sanitation"]
# Late October to early November: histories cross a month and ISO weeks, in the city's time zone.
EPOCH = datetime(2026, 10, 29, 15, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Check:
    """One check task (核查): answered or still open, and whether the timer reported it missed."""

    answered: bool
    missed: bool
    on_time: bool = False
    passed: bool = False


@dataclass
class Facts:
    """One generated history, as facts."""

    case_id: UUID
    cell: Any
    category: str
    source: ev.ReportSource
    received: datetime
    fate: str  # pending, rejected, merged, filed
    self_handled: bool = False
    filed: datetime | None = None
    filed_on_time: bool = True
    dispatched_on_time: bool = True
    dispatches: list[tuple[str, bool]] = field(default_factory=list)
    handled: bool = False
    checks: list[Check] = field(default_factory=list)
    overdue: bool = False
    closed: bool = False
    closed_on_time: bool = False
    cancelled: bool = False
    events: list[Event] = field(default_factory=list)


class Timeline:
    """Event times of one case: each step some minutes (or days) after the last."""

    def __init__(self, start: datetime, draw: st.DrawFn) -> None:
        self.at = start
        self.draw = draw

    def next(self) -> datetime:
        self.at += timedelta(minutes=self.draw(st.integers(1, 3 * 24 * 60)))
        return self.at


@st.composite
def histories(draw: st.DrawFn) -> Facts:
    """A plausible lifecycle, drawn step by step."""
    case_id = new_id()
    facts = Facts(
        case_id=case_id,
        cell=draw(st.sampled_from(CELLS)),
        category=draw(st.sampled_from(sorted(CATEGORIES))),
        source=draw(st.sampled_from(list(ev.ReportSource))),
        received=EPOCH + timedelta(minutes=draw(st.integers(0, 8 * 24 * 60))),
        fate=draw(st.sampled_from(["pending", "rejected", "merged", "filed", "filed", "filed"])),
    )
    time = Timeline(facts.received, draw)

    def emit(payload: ev.EventPayload, at: datetime | None = None) -> datetime:
        at = at or time.next()
        facts.events.append(Event(id=new_id(), source="/test", subject=str(case_id), time=at, data=payload))
        return at

    place = facts.cell.place
    emit(
        ev.ReportReceived(
            source=facts.source,
            category_code=facts.category,
            description="generated",
            point=ev.GeoPoint(lon=113.6, lat=34.7),
            place=place,
        ),
        facts.received,
    )
    if facts.fate == "pending":
        return facts
    if facts.fate == "rejected":
        emit(ev.ReportRejected(reason_code="invalid", reason="not there", rejected_by="operator"))
        return facts
    if facts.fate == "merged":
        emit(ev.ReportMerged(into_case_id=new_id()))
        return facts

    facts.self_handled = facts.source is ev.ReportSource.INSPECTOR and draw(st.booleans())
    facts.filed_on_time = draw(st.booleans())
    facts.dispatched_on_time = draw(st.booleans())
    filed = time.next()
    facts.filed = filed
    first_dispatch_gap = timedelta(minutes=1)
    emit(
        ev.CaseFiled(
            case_number="2026-11-000001",
            category_code=facts.category,
            family=ev.CategoryFamily(CATEGORIES[facts.category]),
            source=facts.source,
            place=place,
            filed_by="operator",
            reported_at=facts.received,
            filing_deadline=filed + (timedelta(minutes=5) if facts.filed_on_time else -timedelta(minutes=5)),
            dispatch_deadline=filed
            + first_dispatch_gap
            + (timedelta(days=30) if facts.dispatched_on_time else -timedelta(minutes=1)),
            self_handled=facts.self_handled,
        ),
        filed,
    )
    if facts.self_handled:
        facts.closed = facts.closed_on_time = True
        emit(ev.CaseClosed(closed_by="inspector1", on_time=True, self_handled=True))
        return _maybe_cancelled(draw, facts, emit)

    if draw(st.booleans()):
        emit(ev.CaseQueuedForCoordination(reason="no rule"))
    returns = draw(st.integers(0, 2))
    for attempt in range(returns + 1):
        department = draw(st.sampled_from(DEPARTMENTS))
        deadline = time.at + timedelta(hours=4)
        at = filed + first_dispatch_gap if attempt == 0 else None
        if at is not None:
            time.at = at
        emit(
            ev.CaseDispatched(
                department_id=department, dispatched_by="rules", handling_deadline=deadline, attempt=attempt + 1
            ),
            at,
        )
        if draw(st.booleans()):
            emit(ev.CaseAccepted(department_id=department, accepted_by="dept"))
        returned = attempt < returns or draw(st.integers(0, 9)) == 0
        facts.dispatches.append((department, returned))
        if returned:
            emit(ev.CaseReturned(department_id=department, returned_by="dept", reason="not ours"))
            return _maybe_cancelled(draw, facts, emit)

    department = facts.dispatches[-1][0]
    if draw(st.booleans()):
        emit(ev.DeadlineMissed(kind=ev.DeadlineKind.HANDLING, deadline=time.at, department_id=department))
        facts.overdue = True
        emit(ev.SupervisionIssued(department_id=department, level=1, note="late"))
        clearing = draw(st.sampled_from(["none", "extension", "suspension"]))
        if clearing == "extension":
            facts.overdue = False
            emit(ev.ExtensionApproved(approved_by="lead", handling_deadline=time.at + timedelta(days=2)))
        elif clearing == "suspension":
            facts.overdue = False
            emit(ev.CaseSuspended(suspended_by="lead", reason="waiting"))
            emit(ev.CaseResumed(resumed_by="lead", handling_deadline=time.at + timedelta(days=2)))
    for _ in range(draw(st.integers(0, 3))):
        facts.handled = True
        emit(ev.CaseHandled(department_id=department, handled_by="dept", result="done"))
        requested = time.next()
        check_deadline = requested + timedelta(hours=2)
        emit(ev.CheckRequested(inspector_id="insp-001", check_deadline=check_deadline), requested)
        # Closure's check timer: the check passed its limit with no answer yet.
        missed = draw(st.booleans())
        if missed:
            emit(
                ev.DeadlineMissed(kind=ev.DeadlineKind.CHECK, deadline=check_deadline),
                check_deadline + timedelta(minutes=1),
            )
        if draw(st.integers(0, 3)) == 0:  # still open: not answered yet
            facts.checks.append(Check(answered=False, missed=missed))
            break
        on_time = not missed and draw(st.booleans())
        answered = requested + (timedelta(hours=1) if on_time else timedelta(hours=3))
        passed = draw(st.booleans())
        facts.checks.append(Check(answered=True, missed=missed, on_time=on_time, passed=passed))
        time.at = answered
        if passed:
            emit(ev.CheckPassed(inspector_id="insp-001"), answered)
            facts.closed = True
            facts.closed_on_time = draw(st.booleans())
            emit(ev.CaseClosed(closed_by="insp", on_time=facts.closed_on_time))
            break
        emit(ev.CheckFailed(inspector_id="insp-001", reason="still there"), answered)
    return _maybe_cancelled(draw, facts, emit)


def _maybe_cancelled(draw: st.DrawFn, facts: Facts, emit: Any) -> Facts:
    if not facts.closed and draw(st.integers(0, 4)) == 0:
        facts.cancelled = True
        emit(ev.CaseCancelled(cancelled_by="lead", reason="void"))
    return facts


# --- the recount ------------------------------------------------------------------------------


def recount(cases: list[Facts]) -> dict[tuple[str, str, str, date], dict[str, int]]:
    """INDICATORS.md applied to the facts."""
    rows: dict[tuple[str, str, str, date], dict[str, int]] = defaultdict(lambda: dict.fromkeys(COUNTERS, 0))

    def add(scopes: list[tuple[str, str]], at: datetime, counter: str, value: int) -> None:
        if not value:
            return
        day = at.astimezone(ZONE).date()
        for kind, scope_id in scopes:
            for period in PeriodKind:
                rows[(kind, scope_id, period.value, period_start(period, day))][counter] += value

    for case in cases:
        place = case.cell.place
        inspector = CITY.inspector_for(place.cell_id).id
        scopes = [
            ("city", "city"),
            ("district", place.district_id),
            ("street", place.street_id),
            ("community", place.community_id),
            ("cell", place.cell_id),
            ("category", case.category),
            ("family", CATEGORIES[case.category]),
            ("source", case.source.value),
            ("inspector", inspector),
        ]
        add(scopes, case.received, "reports", 1)
        if case.filed is None:
            continue
        if case.cancelled:
            add(scopes, case.filed, "cancelled", 1)
            continue
        add(scopes, case.received, "filed", 1)
        add(scopes, case.received, "filed_on_time", int(case.filed_on_time))
        current = case.dispatches[-1][0] if case.dispatches and not case.dispatches[-1][1] else None
        with_department = [*scopes, ("department", current)] if current else scopes
        for department, returned in case.dispatches:
            add([*scopes, ("department", department)], case.filed, "dispatches", 1)
            add([*scopes, ("department", department)], case.filed, "returns", int(returned))
        # On-time dispatch is the command center's figure: no department has it.
        add(scopes, case.filed, "cases_dispatched", int(bool(case.dispatches)))
        add(scopes, case.filed, "dispatched_on_time", int(bool(case.dispatches) and case.dispatched_on_time))
        case_values = {
            "handled": int(case.handled),
            "reworked": int(any(check.answered and not check.passed for check in case.checks)),
            "checks_requested": len(case.checks),
            # Due once answered or once past its limit, whichever came first; never twice.
            "checks_due": sum(1 for check in case.checks if check.answered or check.missed),
            "checks_on_time": sum(1 for check in case.checks if check.on_time),
            "closed": int(case.closed),
            "closed_on_time": int(case.closed and case.closed_on_time),
            "overdue_open": int(case.overdue and not case.closed),
        }
        for counter, value in case_values.items():
            add(with_department, case.filed, counter, value)
    return {key: values for key, values in rows.items() if any(values.values())}


# --- delivery ---------------------------------------------------------------------------------


def partition_of(case_id: UUID) -> int:
    return case_id.int % PARTITIONS


@st.composite
def deliveries(draw: st.DrawFn) -> tuple[list[Facts], list[Record], list[tuple[int, int, str]]]:
    """Histories, the log they make (cases interleaved at random, some events published twice),
    and a consumption plan: (start, end, what happens) slices over the log.
    """
    cases = draw(st.lists(histories(), min_size=1, max_size=8))
    queues = [list(case.events) for case in cases]
    published: list[Event] = []
    while any(queues):
        queue = draw(st.sampled_from([q for q in queues if q]))
        event = queue.pop(0)
        published.append(event)
        if draw(st.integers(0, 9)) == 0:  # the relay died after publishing: the copy comes later
            queue.insert(draw(st.integers(0, len(queue))), event)
    offsets = [0] * PARTITIONS
    log: list[Record] = []
    for event in published:
        message = encode(event, TOPIC)
        partition = partition_of(UUID(event.subject))
        log.append(Record(TOPIC, partition, offsets[partition], message.key, message.value, message.headers))
        offsets[partition] += 1
    plan: list[tuple[int, int, str]] = []
    position = 0
    while position < len(log):
        end = min(len(log), position + draw(st.integers(1, 12)))
        what = draw(st.sampled_from(["commit", "commit", "crash_inside", "crash_after"]))
        plan.append((position, end, what))
        if what == "crash_after":  # committed, but the restarted member reads from an older position
            position = draw(st.integers(max(0, position - 10), end))
        elif what == "commit":
            position = end
    return cases, log, plan


class Interrupted(ConnectionError):
    """The process died in the middle of the batch: nothing of it committed."""


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def store(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ServiceStore]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('stream') / 'assessment.db'}")
    await upgrade_to_head("assessment", engine)
    yield ServiceStore("assessment", engine, metadata, clock=SystemClock(), case_events_topic=TOPIC)
    await engine.dispose()


async def _empty(store: ServiceStore) -> None:
    async with store.transaction() as tx:
        for table in (counters, case_states, positions):
            await tx.connection.execute(delete(table))


async def stream_rows(store: ServiceStore) -> dict[tuple[str, str, str, date], dict[str, int]]:
    async with store.transaction() as tx:
        rows = (await tx.connection.execute(select(counters))).mappings().all()
    result = {}
    for row in rows:
        values = {name: int(row[name]) for name in COUNTERS}
        if any(values.values()):
            result[(row["scope_kind"], row["scope_id"], row["period_kind"], row["period_start"])] = values
    return result


def _consumer(store: ServiceStore, interrupt: bool) -> TrackedConsumer:
    stream = Stream(CITY)

    async def apply(tx: Any, events: Any) -> None:
        await stream.apply(tx, events)
        if interrupt:
            raise Interrupted("killed after applying, before committing")

    spec = TrackedConsumerSpec(STREAM_CONSUMER, [TOPIC], apply)
    return TrackedConsumer(spec, store, bus=None, positions=positions, dead_letter_topic="dlq")  # type: ignore[arg-type]


pytestmark = pytest.mark.asyncio(loop_scope="module")


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.large_base_example],
)
@given(delivery=deliveries())
async def test_any_delivery_gives_the_recount(
    store: ServiceStore, delivery: tuple[list[Facts], list[Record], list[tuple[int, int, str]]]
) -> None:
    cases, log, plan = delivery
    await _empty(store)
    for start, end, what in plan:
        batch = log[start:end]
        if what == "crash_inside":
            # Killed mid-batch (unless everything in it was applied before: then nothing runs).
            with contextlib.suppress(Interrupted):
                await _consumer(store, interrupt=True)._apply_once(batch)
        else:
            await _consumer(store, interrupt=False)._apply_once(batch)
    assert await stream_rows(store) == recount(cases)


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.large_base_example],
)
@given(cases=st.lists(histories(), min_size=1, max_size=10))
async def test_two_members_sharing_the_partitions_apply_each_record_once(
    store: ServiceStore, cases: list[Facts]
) -> None:
    """A member that lost its partitions may still hold their records: its late batch changes nothing."""
    await _empty(store)
    log: list[Record] = []
    offsets = [0] * PARTITIONS
    for case in cases:
        for event in case.events:
            message = encode(event, TOPIC)
            partition = partition_of(case.case_id)
            log.append(Record(TOPIC, partition, offsets[partition], message.key, message.value, message.headers))
            offsets[partition] += 1
    first, second = _consumer(store, interrupt=False), _consumer(store, interrupt=False)
    await asyncio.gather(first._apply_once(log), second._apply_once(log))
    assert await stream_rows(store) == recount(cases)


@dataclass
class Chunked:
    """A subscription whose every fetch brings at most ``chunk`` records, as a Kafka fetch brings
    at most its bytes of each partition; records are handed out once, in order."""

    records: list[Record]
    chunk: int
    fetches: int = 0

    async def fetch(self, max_records: int, timeout_s: float) -> list[Record]:
        self.fetches += 1
        taken = self.records[: min(self.chunk, max_records)]
        del self.records[: len(taken)]
        return taken

    async def commit(self, offsets: Any) -> None:
        """Positions are the database's; the hint is not needed here."""

    async def seek(self, partition: Any, offset: int) -> None:
        raise AssertionError("a log handed out in order never needs a seek")

    async def close(self) -> None:
        """Nothing to leave."""


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cases=st.lists(histories(), min_size=3, max_size=6))
async def test_a_batch_is_filled_from_the_fetches_already_there(store: ServiceStore, cases: list[Facts]) -> None:
    """A consumer catching up applies full batches, not one fetch's worth at a time."""
    await _empty(store)
    log = [
        Record(TOPIC, 0, offset, message.key, message.value, message.headers)
        for offset, message in enumerate(encode(event, TOPIC) for case in cases for event in case.events)
    ]
    subscription = Chunked(list(log), chunk=2)
    consumer = _consumer(store, interrupt=False)
    consumer.batch_size = len(log) - 1

    assert await consumer.step(subscription) == len(log) - 1
    assert subscription.fetches == math.ceil((len(log) - 1) / 2)
    assert await consumer.step(subscription) == 1
    assert await stream_rows(store) == recount(cases)
