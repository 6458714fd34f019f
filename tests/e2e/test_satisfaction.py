"""The callback (回访) downstream of intake, end to end on both backends: an unsatisfied verdict
reopens a closed case for rework by its department, the case closes again through a new check,
the satisfaction rate (满意率) is counted by the stream, and the batch recount agrees value by value.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from shared.core.ids import new_id
from shared.integration.signing import Scheme, Secret, Signer, sign
from tests.e2e.harness import Harness, running_city
from tests.e2e.test_lifecycle import STREET_OFFICE, STREET_USER, STREET_VENDING, handle

pytestmark = pytest.mark.asyncio(loop_scope="module")

# The demo city's integrations.yaml: hotline 12345 signs with this (public, demo-only) secret, and
# its rule reopens a case on an unsatisfied verdict.
HOTLINE = "12345"
DEMO_SECRET = Signer(Scheme.STANDARD_WEBHOOKS, (Secret("demo", "whsec_KM+nZtM+LX6rB/stn10DrDW8rM0rWq20w4QM+oQHgh0="),))


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=["embedded", "postgres-kafka"])
async def city(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Harness]:
    async with running_city(request.param, tmp_path_factory.mktemp(request.param)) as harness:
        yield harness


async def closed_work_order(city: Harness, work_order: str) -> str:
    """A hotline work order verified, filed, dispatched to the street office, handled, checked and
    closed; its case id."""
    order = {
        "category_code": STREET_VENDING,
        "description": "a vendor blocks the pavement",
        "location": city.fresh_spot(),
        "external_ref": work_order,
    }
    case_id = str((await city.post("hotline", "/intake/hotline/work-orders", order, expect=201))["id"])
    await city.post("inspector1", f"/intake/reports/{case_id}/verification", {"confirmed": True})
    await city.case_status(case_id, "dispatched")
    await city.eventually(STREET_USER, "/handling/inbox", lambda body: any(t["id"] == case_id for t in body))
    await city.post(STREET_USER, f"/handling/cases/{case_id}/accept")
    await checked_and_closed(city, case_id)
    return case_id


async def checked_and_closed(city: Harness, case_id: str) -> None:
    await handle(city, STREET_USER, case_id)
    await city.eventually("inspector1", "/closure/checks", lambda b: any(c["id"] == case_id for c in b))
    await city.post("inspector1", f"/closure/cases/{case_id}/check", {"passed": True})
    await city.case_status(case_id, "closed")


async def callback(city: Harness, work_order: str, verdict: str, note: str | None = None) -> dict[str, Any]:
    """The hotline pushes the citizen's verdict, signed as the demo city's integrations.yaml says."""
    body = json.dumps({"work_order": work_order, "verdict": verdict, "note": note}).encode()
    headers = sign(DEMO_SECRET, f"msg_{new_id().hex}", city.clock.now(), body)
    response = await city.client.post(
        f"/intake/hotline/{HOTLINE}/callbacks", content=body, headers={**headers, "content-type": "application/json"}
    )
    assert response.status_code == 201, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def test_an_unsatisfied_callback_reopens_the_case_and_satisfaction_is_counted_and_reconciled(
    city: Harness,
) -> None:
    reworked = await closed_work_order(city, "WO-CB-1")
    still_open = await closed_work_order(city, "WO-CB-2")

    await callback(city, "WO-CB-1", "unsatisfied", "the vendor is back every evening")
    task = await city.eventually(STREET_USER, f"/handling/cases/{reworked}", lambda t: t["status"] == "rework")
    assert task["rework_reason"] == "the vendor is back every evening"
    await city.case_status(reworked, "rework")
    reopened = await city.get("shiftlead", f"/closure/cases/{reworked}")
    assert (reopened["status"], reopened["closed_at"], reopened["reopens"]) == ("open", None, 1)
    timeline = await city.timeline(reworked, "case.reopened")
    assert [e["event_type"] for e in timeline][-2:] == ["case.callback_recorded", "case.reopened"]

    # Reworked by the same department, checked again, closed again; then the citizen is satisfied.
    await checked_and_closed(city, reworked)
    await callback(city, "WO-CB-1", "satisfied")
    # The other case: unsatisfied, reopened, not yet handled again.
    await callback(city, "WO-CB-2", "unsatisfied")
    await city.eventually(STREET_USER, f"/handling/cases/{still_open}", lambda t: t["status"] == "rework")

    answer = await city.eventually(
        "shiftlead",
        f"/assessment/indicators?scope_kind=department&scope_id={STREET_OFFICE}",
        # The reopen is closure's answer to the callback, a later event: wait for its count too.
        lambda body: (
            (body["counters"].get("callbacks"), body["counters"].get("satisfied"), body["counters"].get("reworked"))
            == (2, 1, 2)
        ),
    )
    counters, indicators = answer["counters"], answer["indicators"]
    assert indicators["satisfaction_rate"] == 0.5
    assert (counters["closed"], counters["reworked"], counters["checks_requested"]) == (1, 2, 3)
    city_wide = await city.get("shiftlead", "/assessment/indicators?scope_kind=source&scope_id=hotline")
    assert city_wide["indicators"]["satisfaction_rate"] == 0.5

    report = await city.reconcile()
    assert " 0 differences" in report.splitlines()[0]
