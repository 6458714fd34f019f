"""Closure's cases made the way closure learns of them: from the events of the other services."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from pathlib import Path
from uuid import UUID

from closure.handlers import check
from services.runtime.registry import load_specs
from shared.city.model import City
from shared.core.auth import Principal, Role
from shared.core.ids import new_id
from shared.events.catalogue import CaseDispatched, CaseFiled, CaseHandled, ReportSource
from shared.integration.endpoints import INTEGRATIONS_FILE, load_integrations
from tests.service.conftest import MONDAY_0900, ServiceUnderTest, hours, principal

# A category whose limits count in working time: check 120 working minutes.
WORKING_CATEGORY = "01-01-12"


def first_cell(city: City) -> str:
    """The city's first cell."""
    return city.cells[0].id


def inspector_of(city: City, cell_id: str) -> Principal:
    """The inspector patrolling ``cell_id``, as a caller."""
    return principal(Role.INSPECTOR, inspector_id=city.inspector_for(cell_id).id)


def another_inspector(city: City, cell_id: str) -> Principal:
    """An inspector who does not patrol ``cell_id``."""
    (other, *_) = (i for i in city.inspectors if i.id != city.inspector_for(cell_id).id)
    return principal(Role.INSPECTOR, inspector_id=other.id)


def case_filed(
    city: City,
    cell_id: str,
    *,
    self_handled: bool = False,
    inspector_id: str | None = None,
    category_code: str = WORKING_CATEGORY,
) -> CaseFiled:
    """Intake's filing of a case in ``cell_id``."""
    return CaseFiled(
        case_number="2026-11-000001",
        category_code=category_code,
        family=city.category(category_code).family,
        source=ReportSource.INSPECTOR if self_handled else ReportSource.HOTLINE,
        place=city.cell(cell_id).place,
        filed_by="operator-1",
        reported_at=MONDAY_0900,
        inspector_id=inspector_id,
        self_handled=self_handled,
    )


async def open_case(closure: ServiceUnderTest, cell_id: str | None = None) -> UUID:
    """A case filed in ``cell_id`` (default: the first cell) and nothing more."""
    case_id = new_id()
    await closure.deliver(case_filed(closure.ctx.city, cell_id or first_cell(closure.ctx.city)), case_id)
    return case_id


async def dispatched(closure: ServiceUnderTest, case_id: UUID, handling_deadline: datetime) -> None:
    """Dispatch sent the case to a department, due at ``handling_deadline``."""
    payload = CaseDispatched(
        department_id="dept-1", dispatched_by="dispatcher-1", handling_deadline=handling_deadline, attempt=1
    )
    await closure.deliver(payload, case_id)


async def handled(closure: ServiceUnderTest, case_id: UUID, result: str = "fixed") -> None:
    """The department reported the case handled."""
    await closure.deliver(CaseHandled(department_id="dept-1", handled_by="dept-user", result=result), case_id)


async def checking_case(closure: ServiceUnderTest, cell_id: str | None = None) -> UUID:
    """A case dispatched (due in four hours) and handled: a check task waits; what it emitted is read."""
    case_id = await open_case(closure, cell_id)
    await dispatched(closure, case_id, MONDAY_0900 + hours(4))
    await handled(closure, case_id)
    await closure.emitted()
    return case_id


# Two hotlines of one city: an unsatisfied callback from 12345 reopens the case, from 12319 not.
INTEGRATIONS_YAML = """
hotlines:
  - id: "12345"
    name: 12345政务服务便民热线
    reopen_on_unsatisfied: true
    inbound: {scheme: standard-webhooks, secrets: [{id: a, value: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}]}
  - id: "12319"
    name: 12319城建热线
    inbound: {scheme: standard-webhooks, secrets: [{id: a, value: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}]}
"""


def with_hotlines(closure: ServiceUnderTest, folder: Path) -> ServiceUnderTest:
    """``closure`` in a city whose ``integrations.yaml`` (written in ``folder``) names the two
    hotlines of ``INTEGRATIONS_YAML``."""
    (folder / INTEGRATIONS_FILE).write_text(INTEGRATIONS_YAML, encoding="utf-8")
    ctx = replace(closure.ctx, integrations=load_integrations(folder, closure.ctx.city))
    (spec,) = load_specs(["closure"])
    return ServiceUnderTest(ctx, closure.clock, spec.consumers(ctx))


async def closed_case(closure: ServiceUnderTest) -> UUID:
    """A case dispatched to dept-1 (due in four hours), handled, checked and closed on time; what
    it emitted is read."""
    case_id = await checking_case(closure)
    inspector = inspector_of(closure.ctx.city, first_cell(closure.ctx.city))
    closure.clock.advance(hours(1))
    await check(closure.ctx, inspector, case_id, passed=True, note=None, photos=[])
    await closure.emitted()
    return case_id
