"""Satisfaction (满意率) and reopens in the stream: a callback (回访) counts in every scope of the
case and for the department that closed it, its latest verdict decides whether the case is
satisfied; an unsatisfied one that reopened the case takes the closure back until it closes again."""

from __future__ import annotations

from datetime import date, timedelta

from assessment import bulletin, domain, queries
from assessment.domain import PeriodKind
from assessment.queries import Period
from shared.events.catalogue import CallbackVerdict
from tests.service.assessment.conftest import CELL, WEDNESDAY, Assessment, History, history

MONTH = Period.bucket(PeriodKind.MONTH, date(2026, 11, 4))
DECEMBER = Period.bucket(PeriodKind.MONTH, date(2026, 12, 1))
DEPARTMENT = "bureau-urban"


def only(values: dict[str, int]) -> dict[str, int]:
    return {name: n for name, n in values.items() if n}


def closed_case(assessment: Assessment, department: str = DEPARTMENT, cell: str = CELL) -> History:
    """A hotline case filed on Wednesday, dispatched, handled, checked and closed on time."""
    case = history(assessment, cell)
    case.received(WEDNESDAY)
    case.filed(WEDNESDAY + timedelta(minutes=5))
    case.dispatched(department, WEDNESDAY + timedelta(minutes=30))
    case.handled(department, WEDNESDAY + timedelta(hours=3))
    case.checked(WEDNESDAY + timedelta(hours=5), passed=True)
    case.closed(WEDNESDAY + timedelta(hours=5))
    return case


async def test_satisfied_verdicts_count_and_change_nothing_else(assessment: Assessment) -> None:
    satisfied, basically, unsatisfied = (closed_case(assessment) for _ in range(3))
    await assessment.apply([e for case in (satisfied, basically, unsatisfied) for e in case.events])
    ctx = assessment.svc.ctx
    before = await queries.indicators(ctx, "department", DEPARTMENT, MONTH)
    states = await assessment.states()

    later = WEDNESDAY + timedelta(days=1)
    await assessment.apply(
        [
            satisfied.called_back(later, CallbackVerdict.SATISFIED),
            basically.called_back(later, CallbackVerdict.BASICALLY_SATISFIED),
            unsatisfied.called_back(later, CallbackVerdict.UNSATISFIED),  # the rule did not reopen it
        ]
    )

    for scope in (("city", "city"), ("department", DEPARTMENT), ("source", "hotline"), ("inspector", "insp-001")):
        values = await queries.indicators(ctx, *scope, MONTH)
        assert (values["callbacks"], values["satisfied"]) == (3, 2), scope
        assert domain.derived(values)["satisfaction_rate"] == 2 / 3
    after = await queries.indicators(ctx, "department", DEPARTMENT, MONTH)
    assert {k: v for k, v in after.items() if k not in ("callbacks", "satisfied")} == {
        k: v for k, v in before.items() if k not in ("callbacks", "satisfied")
    }
    for case_id, state in (await assessment.states()).items():
        assert (state["closed"], state["reworked"], state["flow"]) == (True, False, "closed")
        assert state["called_back"] is True
        assert {k: v for k, v in state.items() if k not in ("called_back", "satisfied", "event_ids")} == {
            k: v for k, v in states[case_id].items() if k not in ("called_back", "satisfied", "event_ids")
        }


async def test_a_reopened_case_is_reworked_not_closed_until_it_closes_again(assessment: Assessment) -> None:
    case = closed_case(assessment)
    await assessment.apply(case.events)
    ctx = assessment.svc.ctx
    december = WEDNESDAY.replace(month=12, day=2)  # called back and reopened the next month

    await assessment.apply(
        [case.called_back(december, CallbackVerdict.UNSATISFIED), case.reopened(DEPARTMENT, december)]
    )

    department = await queries.indicators(ctx, "department", DEPARTMENT, MONTH)
    assert only(department) == {
        "dispatches": 1,
        "handled": 1,
        "reworked": 1,
        "checks_requested": 1,
        "checks_due": 1,
        "checks_on_time": 1,
        "callbacks": 1,
    }
    assert domain.derived(department)["satisfaction_rate"] == 0.0
    assert only(await queries.indicators(ctx, "city", "city", DECEMBER)) == {}

    # Its deadline was missed while it was reopened: overdue open, in the filing month.
    await assessment.apply([case.missed(DEPARTMENT, december + timedelta(hours=1))])
    assert (await queries.indicators(ctx, "department", DEPARTMENT, MONTH))["overdue_open"] == 1

    # Handled, checked, closed again (late), and the next callback satisfied.
    case.events.clear()
    case.handled(DEPARTMENT, december + timedelta(hours=2))
    case.checked(december + timedelta(hours=4), passed=True)
    case.closed(december + timedelta(hours=4), on_time=False)
    case.called_back(december + timedelta(days=1), CallbackVerdict.SATISFIED)
    await assessment.apply(case.events)
    values = await queries.indicators(ctx, "department", DEPARTMENT, MONTH)
    assert (values["closed"], values["closed_on_time"], values["overdue_open"], values["reworked"]) == (1, 0, 0, 1)
    assert (values["checks_requested"], values["callbacks"], values["satisfied"]) == (2, 1, 1)


async def test_a_duplicate_callback_counts_once(assessment: Assessment) -> None:
    case = closed_case(assessment)
    verdict = case.called_back(WEDNESDAY + timedelta(days=1), CallbackVerdict.SATISFIED)
    await assessment.apply(case.events)
    await assessment.apply([verdict])
    city = await queries.indicators(assessment.svc.ctx, "city", "city", MONTH)
    assert (city["callbacks"], city["satisfied"]) == (1, 1)


async def test_the_bulletin_shows_satisfaction(assessment: Assessment) -> None:
    happy, unhappy = closed_case(assessment), closed_case(assessment, "bureau-housing")
    happy.called_back(WEDNESDAY + timedelta(days=1), CallbackVerdict.SATISFIED)
    unhappy.called_back(WEDNESDAY + timedelta(days=1), CallbackVerdict.UNSATISFIED)
    await assessment.apply([*happy.events, *unhappy.events])

    answer = await bulletin.monthly_bulletin(assessment.svc.ctx, date(2026, 11, 1))

    assert (answer["totals"]["callbacks"], answer["totals"]["satisfied"]) == (2, 1)
    assert answer["totals"]["satisfaction_rate"] == 0.5
    ranking = {row["scope_id"]: row["indicators"]["satisfaction_rate"] for row in answer["department_ranking"]}
    assert ranking == {DEPARTMENT: 1.0, "bureau-housing": 0.0}
    by_source = {row["id"]: row["satisfaction_rate"] for row in answer["by_source"]}
    assert by_source == {"hotline": 0.5}
