"""One indicator of every scope of a kind, for a map: every scope the city has, each with what
its counters say alone, a rate over nothing as None, and the figures a department does not have
refused as for a ranking."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from assessment import bulletin, domain, queries
from assessment.domain import PeriodKind
from assessment.queries import Period
from shared.core.errors import InvalidInput
from tests.service.assessment.conftest import CELL, OTHER_CELL, WEDNESDAY, Assessment, history

NOVEMBER = Period.bucket(PeriodKind.MONTH, date(2026, 11, 1))


async def closed_cases(assessment: Assessment) -> None:
    """Three cases closed in November: two in CELL (one late), one in OTHER_CELL."""
    cases = []
    for cell, department, on_time in (
        (CELL, "bureau-urban", True),
        (CELL, "bureau-urban", False),
        (OTHER_CELL, "bureau-housing", True),
    ):
        case = history(assessment, cell)
        case.received(WEDNESDAY)
        case.filed(WEDNESDAY + timedelta(minutes=5))
        case.dispatched(department, WEDNESDAY + timedelta(minutes=30))
        case.closed(WEDNESDAY + timedelta(hours=4), on_time=on_time)
        cases.append(case)
    await assessment.apply([event for case in cases for event in case.events])


@pytest.mark.parametrize("kind", bulletin.MAPPED_KINDS)
@pytest.mark.parametrize("indicator", ["closed", "on_time_closure_rate", "due"])
async def test_every_scope_of_the_city_with_what_its_counters_say(
    assessment: Assessment, kind: str, indicator: str
) -> None:
    await closed_cases(assessment)
    ctx = assessment.svc.ctx
    values = bulletin.mapped(ctx.city, kind, await queries.scopes_of_kind(ctx, kind, NOVEMBER), indicator)
    assert list(values) == bulletin.scope_ids(ctx.city, kind)
    counted = {scope_id for scope_id, value in values.items() if value is not None and value != 0}
    assert counted  # the three cases are somewhere
    for scope_id in [*counted, *list(values)[-2:]]:
        counters, indicators = domain.figures(kind, await queries.indicators(ctx, kind, scope_id, NOVEMBER))
        assert values[scope_id] == {**counters, **indicators}[indicator], scope_id
    empty = [value for scope_id, value in values.items() if scope_id not in counted]
    assert set(empty) <= ({None} if indicator.endswith("_rate") else {0})


async def test_the_cells_of_the_cases(assessment: Assessment) -> None:
    await closed_cases(assessment)
    ctx = assessment.svc.ctx
    by_cell = await queries.scopes_of_kind(ctx, "cell", NOVEMBER)
    rates = bulletin.mapped(ctx.city, "cell", by_cell, "on_time_closure_rate")
    assert len(rates) == len(ctx.city.cells) == 4014
    assert (rates[CELL], rates[OTHER_CELL]) == (0.5, 1.0)
    assert sum(value is None for value in rates.values()) == 4012


def test_a_scope_the_counters_know_and_the_city_does_not_comes_last(assessment: Assessment) -> None:
    city = assessment.svc.ctx.city
    zero = dict.fromkeys(domain.COUNTERS, 0)
    values = bulletin.mapped(
        city, "district", {"990102": {**zero, "reports": 2}, "000000": {**zero, "reports": 1}}, "reports"
    )
    assert list(values) == [*(d.id for d in city.districts), "000000"]
    assert (values["990102"], values["990103"], values["000000"]) == (2, 0, 1)


@pytest.mark.parametrize("indicator", ["reports", "filed_on_time", "on_time_dispatch_rate"])
def test_a_department_has_no_filing_nor_dispatch_figures(assessment: Assessment, indicator: str) -> None:
    with pytest.raises(InvalidInput, match=f"a department has no {indicator}"):
        bulletin.mapped(assessment.svc.ctx.city, "department", {}, indicator)
