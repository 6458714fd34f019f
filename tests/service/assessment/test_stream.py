"""The stream's use case: a batch of the case event log becomes case states and counter deltas,
applied through the service's tracked consumer, and read back through ``assessment.queries``."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import insert

from assessment import domain, queries
from assessment.domain import COUNTERS, PeriodKind
from assessment.models import case_states, counters, positions
from assessment.queries import Period
from assessment.stream import STREAM_CONSUMER, forget_everything
from shared.city.indicators import NOT_FOR_DEPARTMENTS
from shared.events.catalogue import ReportSource
from tests.service.assessment.conftest import CELL, COMPONENT, WEDNESDAY, Assessment, history

DISTRICT = "990102"
MONTH = Period.bucket(PeriodKind.MONTH, date(2026, 11, 4))


def only(values: dict[str, int]) -> dict[str, int]:
    """The non-zero counters."""
    return {name: n for name, n in values.items() if n}


async def test_a_batch_counts_a_closed_case_in_every_scope_of_its_place(assessment: Assessment) -> None:
    case = history(assessment, source=ReportSource.INSPECTOR)
    case.received(WEDNESDAY)
    case.filed(WEDNESDAY + timedelta(minutes=5))
    case.dispatched("bureau-urban", WEDNESDAY + timedelta(minutes=30))
    case.handled("bureau-urban", WEDNESDAY + timedelta(hours=3))
    case.checked(WEDNESDAY + timedelta(hours=5), passed=True)
    case.closed(WEDNESDAY + timedelta(hours=5))
    await assessment.apply(case.events)

    everything = {
        "reports": 1,
        "filed": 1,
        "filed_on_time": 1,
        "cases_dispatched": 1,
        "dispatched_on_time": 1,
        "dispatches": 1,
        "handled": 1,
        "checks_requested": 1,
        "checks_due": 1,
        "checks_on_time": 1,
        "closed": 1,
        "closed_on_time": 1,
    }
    ctx = assessment.svc.ctx
    for kind, scope_id in [
        ("city", "city"),
        ("district", DISTRICT),
        ("street", "990102001"),
        ("community", "990102001001"),
        ("cell", CELL),
        ("category", COMPONENT),
        ("family", "component"),
        ("source", "inspector"),
        ("inspector", "insp-001"),
    ]:
        assert only(await queries.indicators(ctx, kind, scope_id, MONTH)) == everything, kind
    department = only(await queries.indicators(ctx, "department", "bureau-urban", MONTH))
    # No filing for a department, and no on-time dispatch: that is the command center's figure.
    assert department == {name: n for name, n in everything.items() if name not in NOT_FOR_DEPARTMENTS}
    assert only(await queries.indicators(ctx, "district", "990103", MONTH)) == {}

    (state,) = (await assessment.states()).values()
    assert state["flow"] == "closed"
    assert len(state["event_ids"]) == len(case.events)  # type: ignore[arg-type]
    assert await assessment.svc.emitted() == []  # the stream emits nothing


async def test_a_duplicate_event_is_counted_once(assessment: Assessment) -> None:
    case = history(assessment)
    received = case.received(WEDNESDAY)
    filed = case.filed(WEDNESDAY + timedelta(minutes=5))
    await assessment.apply([received, filed, filed])
    await assessment.apply([received])  # delivered again in a later batch
    await assessment.apply([filed, received])

    city = await queries.indicators(assessment.svc.ctx, "city", "city", MONTH)
    assert only(city) == {"reports": 1, "filed": 1, "filed_on_time": 1}
    (state,) = (await assessment.states()).values()
    assert state["event_ids"] == [str(received.id), str(filed.id)]
    assert await assessment.counter_rows(scope_kind="city", period_kind="day") == [
        {
            "scope_kind": "city",
            "scope_id": "city",
            "period_kind": "day",
            "period_start": date(2026, 11, 4),
            "reports": 1,
            "filed": 1,
            "filed_on_time": 1,
        }
    ]


async def test_a_closure_in_the_next_month_corrects_the_filing_month(assessment: Assessment) -> None:
    last_day = WEDNESDAY.replace(day=30)  # Monday 2026-11-30, 10:00 in Shanghai
    case = history(assessment)
    case.received(last_day)
    case.filed(last_day + timedelta(minutes=5))
    case.dispatched("bureau-urban", last_day + timedelta(minutes=30))
    case.missed("bureau-urban", last_day + timedelta(hours=8))
    await assessment.apply(case.events)
    november = Period.bucket(PeriodKind.MONTH, date(2026, 11, 30))
    december = Period.bucket(PeriodKind.MONTH, date(2026, 12, 2))
    ctx = assessment.svc.ctx
    assert (await queries.indicators(ctx, "department", "bureau-urban", november))["overdue_open"] == 1
    assert await queries.backlog_by_department(ctx, november.end) == {"bureau-urban": 1}

    closure = case.closed(last_day + timedelta(days=2), on_time=False)
    await assessment.apply([closure])

    for scope in [("city", "city"), ("department", "bureau-urban")]:
        values = await queries.indicators(ctx, *scope, november)
        assert (values["closed"], values["closed_on_time"], values["overdue_open"]) == (1, 0, 0)
        assert only(await queries.indicators(ctx, *scope, december)) == {}
    assert await assessment.counter_rows(period_start=date(2026, 12, 1)) == []
    assert await queries.backlog_by_department(ctx, december.end) == {}


async def test_a_cancelled_case_keeps_only_its_report(assessment: Assessment) -> None:
    case = history(assessment)
    case.received(WEDNESDAY)
    case.filed(WEDNESDAY + timedelta(minutes=5))
    case.dispatched("bureau-urban", WEDNESDAY + timedelta(minutes=30))
    await assessment.apply(case.events)
    await assessment.apply([case.cancelled(WEDNESDAY + timedelta(hours=1))])

    ctx = assessment.svc.ctx
    assert only(await queries.indicators(ctx, "district", DISTRICT, MONTH)) == {"reports": 1, "cancelled": 1}
    assert only(await queries.indicators(ctx, "department", "bureau-urban", MONTH)) == {}


async def test_a_return_counts_for_the_returning_department_and_the_case_moves_on(assessment: Assessment) -> None:
    case = history(assessment)
    case.received(WEDNESDAY)
    case.filed(WEDNESDAY + timedelta(minutes=5))
    case.dispatched("bureau-urban", WEDNESDAY + timedelta(minutes=30))
    case.returned("bureau-urban", WEDNESDAY + timedelta(hours=1))
    case.dispatched("bureau-housing", WEDNESDAY + timedelta(hours=2), attempt=2)
    case.handled("bureau-housing", WEDNESDAY + timedelta(hours=4))
    await assessment.apply(case.events)

    ctx = assessment.svc.ctx
    assert only(await queries.indicators(ctx, "department", "bureau-urban", MONTH)) == {"dispatches": 1, "returns": 1}
    assert only(await queries.indicators(ctx, "department", "bureau-housing", MONTH)) == {
        "dispatches": 1,
        "handled": 1,
    }
    city = await queries.indicators(ctx, "city", "city", MONTH)
    assert (city["dispatches"], city["returns"], city["cases_dispatched"]) == (2, 1, 1)


async def test_late_steps_count_as_late_and_an_extension_clears_the_overdue(assessment: Assessment) -> None:
    case = history(assessment)
    case.received(WEDNESDAY)
    case.filed(WEDNESDAY + timedelta(minutes=5), late=True)
    case.dispatched("bureau-urban", WEDNESDAY + timedelta(hours=2))  # after the 1-hour dispatch deadline
    case.handled("bureau-urban", WEDNESDAY + timedelta(hours=3))
    case.checked(WEDNESDAY + timedelta(hours=5), passed=False, on_time=False)
    case.missed("bureau-urban", WEDNESDAY + timedelta(hours=6))
    await assessment.apply(case.events)
    ctx = assessment.svc.ctx
    assert only(await queries.indicators(ctx, "department", "bureau-urban", MONTH)) == {
        "dispatches": 1,
        "handled": 1,
        "reworked": 1,
        "checks_requested": 1,
        "checks_due": 1,
        "overdue_open": 1,
    }
    city = await queries.indicators(ctx, "city", "city", MONTH)
    assert (city["filed_on_time"], city["cases_dispatched"], city["dispatched_on_time"]) == (0, 1, 0)

    await assessment.apply([case.extended(WEDNESDAY + timedelta(hours=7))])
    assert (await queries.indicators(ctx, "department", "bureau-urban", MONTH))["overdue_open"] == 0


async def test_a_check_is_due_when_answered_or_when_its_limit_passes_and_counts_once(assessment: Assessment) -> None:
    ctx = assessment.svc.ctx
    cases = []
    for _ in range(3):
        case = history(assessment)
        case.received(WEDNESDAY)
        case.filed(WEDNESDAY + timedelta(minutes=5))
        case.dispatched("bureau-urban", WEDNESDAY + timedelta(minutes=30))
        case.handled("bureau-urban", WEDNESDAY + timedelta(hours=3))
        cases.append(case)
    answered, waiting, missed = cases
    answered.checked(WEDNESDAY + timedelta(hours=4), passed=True)
    answered.closed(WEDNESDAY + timedelta(hours=4))
    waiting.check_requested(WEDNESDAY + timedelta(hours=3), deadline=WEDNESDAY + timedelta(hours=5))
    missed.check_requested(WEDNESDAY + timedelta(hours=3), deadline=WEDNESDAY + timedelta(hours=5))
    await assessment.apply([event for case in cases for event in case.events])

    async def checks(kind: str, scope_id: str) -> tuple[int, int, int, float | None]:
        values = await queries.indicators(ctx, kind, scope_id, MONTH)
        rate = domain.derived(values)["on_time_check_rate"]
        return values["checks_requested"], values["checks_due"], values["checks_on_time"], rate

    # The check still open within its limit is not a miss yet: one due, on time.
    assert await checks("city", "city") == (3, 1, 1, 1.0)

    # Closure's timer: the other open check passed its limit unanswered. Due, and late.
    await assessment.apply([missed.check_missed(WEDNESDAY + timedelta(hours=5, seconds=1))])
    assert await checks("city", "city") == (3, 2, 1, 0.5)
    assert await checks("department", "bureau-urban") == (3, 2, 1, 0.5)
    assert await checks("inspector", "insp-001") == (3, 2, 1, 0.5)

    # Answered later: already due, so nothing changes; and the waiting one answered in time.
    await assessment.apply(
        [
            missed.answered(WEDNESDAY + timedelta(hours=6), passed=True),
            waiting.answered(WEDNESDAY + timedelta(hours=4), passed=False),
        ]
    )
    assert await checks("city", "city") == (3, 3, 2, 2 / 3)


async def test_batches_cut_anywhere_give_the_same_counters(assessment: Assessment) -> None:
    cases = []
    for n, cell in enumerate([CELL, "990103001001001", CELL]):
        case = history(assessment, cell)
        start = WEDNESDAY + timedelta(days=n * 3)
        case.received(start)
        case.filed(start + timedelta(minutes=5))
        case.dispatched("bureau-urban", start + timedelta(minutes=30))
        case.closed(start + timedelta(hours=4))
        cases.append(case)
    interleaved = [event for step in zip(*(case.events for case in cases), strict=True) for event in step]
    await assessment.apply(interleaved)
    whole = [line async for line in queries.export_counters(assessment.svc.ctx)]

    await forget_everything(assessment.svc.store)
    for event in interleaved:
        await assessment.apply([event])
    assert [line async for line in queries.export_counters(assessment.svc.ctx)] == whole
    assert len(await assessment.states()) == 3


async def test_forgetting_everything_empties_the_stream_and_its_positions_only(assessment: Assessment) -> None:
    case = history(assessment)
    case.received(WEDNESDAY)
    await assessment.apply(case.events)
    async with assessment.svc.store.transaction() as tx:
        await tx.connection.execute(
            insert(positions),
            [
                {"consumer": STREAM_CONSUMER, "topic": "case-events", "partition": 0, "next_offset": 7},
                {"consumer": "someone.else", "topic": "case-events", "partition": 0, "next_offset": 3},
            ],
        )
    assert await queries.stream_positions(assessment.svc.ctx) == {"case-events/0": 7}

    await forget_everything(assessment.svc.store)
    assert await assessment.svc.rows(case_states) == []
    assert await assessment.svc.rows(counters) == []
    assert await queries.stream_positions(assessment.svc.ctx) == {}
    assert [row["consumer"] for row in await assessment.svc.rows(positions)] == ["someone.else"]
    assert only(await queries.indicators(assessment.svc.ctx, "city", "city", MONTH)) == {}
    assert set(COUNTERS) == set((await queries.indicators(assessment.svc.ctx, "city", "city", MONTH)).keys())
