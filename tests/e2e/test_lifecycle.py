"""End-to-end scenarios: the whole lifecycle through the HTTP APIs of all five services, each
asserting the final state and the timeline, on both backends.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from tests.e2e.harness import PNG, Harness, running_city

pytestmark = pytest.mark.asyncio(loop_scope="module")

STREET_VENDING = "02-05-01"  # routed to the street office of the place
POWER_MANHOLE = "01-01-04"  # urgent, calendar time, 120 minutes, routed to the power company
OWNERLESS_MANHOLE = "01-01-11"  # no routing rule: unclear ownership (权属不清)
STREET_OFFICE, STREET_USER = "office-990102001", "dept-street"


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=["embedded", "postgres-kafka"])
async def city(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Harness]:
    async with running_city(request.param, tmp_path_factory.mktemp(request.param)) as harness:
        yield harness


def has_case(case_id: str) -> Callable[[list[dict[str, Any]]], bool]:
    return lambda body: any(item["id"] == case_id for item in body)


def types(timeline: list[dict[str, Any]]) -> list[str]:
    return [entry["event_type"] for entry in timeline]


def entry(timeline: list[dict[str, Any]], event_type: str) -> dict[str, Any]:
    return next(e for e in timeline if e["event_type"] == event_type)


async def dispatched_case(city: Harness, category: str = STREET_VENDING, **extra: Any) -> str:
    report = await city.report(category, **extra)
    assert report["status"] == "filed"
    await city.case_status(report["id"], "dispatched")
    return str(report["id"])


async def handle(city: Harness, user: str, case_id: str, result: str = "cleared") -> dict[str, Any]:
    body: dict[str, Any] = await city.call(
        user,
        "POST",
        f"/handling/cases/{case_id}/report",
        data={"result": result},
        files=[("photos", ("after.png", PNG, "image/png"))],
    )
    return body


async def test_happy_path_from_report_to_closure(city: Harness) -> None:
    sent = {
        "category_code": STREET_VENDING,
        "description": "found on patrol",
        "location": city.fresh_spot(),
        "client_ref": "phone-42-0001",
    }
    report = await city.post("inspector1", "/intake/reports", sent, expect=201)
    case_id = report["id"]
    assert report["case_number"].startswith("2026-11-")
    # The phone resends after a timeout: the same report comes back, nothing is filed twice.
    again = await city.post("inspector1", "/intake/reports", sent)
    assert again["id"] == case_id
    # The same key with another report is a conflict, not the first report silently kept.
    await city.post("inspector1", "/intake/reports", {**sent, "description": "x"}, expect=409)

    await city.case_status(case_id, "dispatched")
    inbox = await city.eventually(STREET_USER, "/handling/inbox", lambda b: any(t["id"] == case_id for t in b))
    task = next(t for t in inbox if t["id"] == case_id)
    assert task["department_id"] == STREET_OFFICE
    assert task["description"] == "found on patrol"

    await city.post(STREET_USER, f"/handling/cases/{case_id}/accept")
    handled = await handle(city, STREET_USER, case_id)
    assert handled["status"] == "handled"
    assert len(handled["result_photos"]) == 1

    checks = await city.eventually("inspector1", "/closure/checks", lambda b: any(c["id"] == case_id for c in b))
    assert next(c for c in checks if c["id"] == case_id)["handling_result"] == "cleared"
    closed = await city.post("inspector1", f"/closure/cases/{case_id}/check", {"passed": True, "note": "gone"})
    assert closed["status"] == "closed"
    assert closed["on_time"] is True

    case = await city.case_status(case_id, "closed")
    assert case["on_time"] is True
    timeline = await city.timeline(case_id, "case.closed")
    assert types(timeline) == [
        "report.received",
        "case.filed",
        "case.dispatched",
        "case.accepted",
        "case.handled",
        "case.check_requested",
        "case.check_passed",
        "case.closed",
    ]
    assert entry(timeline, "case.dispatched")["actor"] == "routing-rules"
    assert entry(timeline, "case.accepted")["actor"] == STREET_USER
    assert entry(timeline, "case.closed")["actor"] == "inspector1"
    assert {e["service"] for e in timeline} == {"intake", "dispatch", "handling", "closure"}
    # Photos are served by content hash.
    photo = await city.client.get(
        f"/handling/photos/{handled['result_photos'][0]}",
        headers={"Authorization": f"Bearer {await city.login(STREET_USER)}"},
    )
    assert photo.content == PNG


async def test_a_rejected_report(city: Harness) -> None:
    body = {"category_code": STREET_VENDING, "description": "someone selling", "location": city.fresh_spot()}
    report = await city.post(None, "/intake/public/reports", body, expect=201)
    assert report["status"] == "verifying"
    rejected = await city.post(
        "operator", f"/intake/reports/{report['id']}/reject", {"reason_code": "out_of_scope", "reason": "private land"}
    )
    assert rejected["status"] == "rejected"
    error = await city.post("operator", f"/intake/reports/{report['id']}/file", expect=409)
    assert error["code"] == "illegal_transition"
    assert error["details"] == {"action": "file", "current_state": "rejected"}
    timeline = await city.timeline(report["id"], "report.rejected")
    assert types(timeline) == ["report.received", "report.verification_requested", "report.rejected"]
    assert entry(timeline, "report.rejected")["reason"] == "private land"
    assert entry(timeline, "report.rejected")["actor"] == "operator"


async def test_a_duplicate_is_merged_into_the_open_case(city: Harness) -> None:
    first = await city.report(STREET_VENDING)
    near = {"lon": first["lon"] + 0.00005, "lat": first["lat"], "datum": "wgs84"}
    second = await city.post(
        "hotline",
        "/intake/hotline/work-orders",
        {"category_code": STREET_VENDING, "description": "vendor again", "location": near, "external_ref": "WO-1"},
        expect=201,
    )
    assert second["status"] == "merged"
    assert second["merged_into"] == first["id"]
    timeline = await city.timeline(first["id"], "report.merged")
    merged = entry(timeline, "report.merged")
    assert merged["details"]["into_case_id"] == first["id"]
    assert merged["details"]["distance_m"] < 10


async def test_a_hotline_report_is_verified_then_filed(city: Harness) -> None:
    spot = city.fresh_spot()
    order = await city.post(
        "hotline",
        "/intake/hotline/work-orders",
        {"category_code": STREET_VENDING, "description": "citizen call", "location": spot, "external_ref": "WO-2"},
        expect=201,
    )
    assert order["status"] == "verifying"
    assert order["verifier_id"] == "insp-001"
    tasks = await city.get("inspector1", "/intake/verifications")
    assert order["id"] in {t["id"] for t in tasks}
    filed = await city.post(
        "inspector1", f"/intake/reports/{order['id']}/verification", {"confirmed": True, "note": "seen it"}
    )
    assert filed["status"] == "filed"
    assert filed["case_number"]
    await city.case_status(order["id"], "dispatched")
    timeline = await city.timeline(order["id"], "case.dispatched")
    assert types(timeline)[:4] == ["report.received", "report.verification_requested", "report.verified", "case.filed"]


async def test_a_return_and_a_re_dispatch(city: Harness) -> None:
    case_id = await dispatched_case(city)
    await city.post(STREET_USER, f"/handling/cases/{case_id}/return", {"reason": "this is a market, not ours"})
    queued = await city.eventually(
        "dispatcher", "/dispatch/queue?status=returned", lambda b: any(c["id"] == case_id for c in b)
    )
    assert next(c for c in queued if c["id"] == case_id)["department_id"] is None
    redispatched = await city.post("dispatcher", f"/dispatch/cases/{case_id}/dispatch", {"department_id": "sanitation"})
    assert redispatched["attempt"] == 2
    await city.eventually("dept-sanitation", "/handling/inbox", lambda b: any(t["id"] == case_id for t in b))
    street_inbox = await city.get(STREET_USER, "/handling/inbox")
    assert case_id not in {t["id"] for t in street_inbox}
    await city.get(STREET_USER, f"/handling/cases/{case_id}", expect=404)
    await city.post("dept-sanitation", f"/handling/cases/{case_id}/accept")
    timeline = await city.timeline(case_id, "case.accepted")
    assert types(timeline)[2:] == ["case.dispatched", "case.returned", "case.dispatched", "case.accepted"]
    assert entry(timeline, "case.returned")["reason"] == "this is a market, not ours"


async def test_an_approved_and_a_denied_extension(city: Harness) -> None:
    approved_id, denied_id = await dispatched_case(city), await dispatched_case(city)
    for case_id in (approved_id, denied_id):
        task = await city.post(STREET_USER, f"/handling/cases/{case_id}/accept")
        later = (datetime.fromisoformat(task["handling_deadline"]) + timedelta(days=2)).isoformat()
        await city.post(
            STREET_USER, f"/handling/cases/{case_id}/extension", {"requested_deadline": later, "reason": "x"}
        )
        await city.eventually("shiftlead", "/dispatch/extensions", has_case(case_id))
    before = await city.get("shiftlead", f"/dispatch/cases/{approved_id}")
    approved = await city.post("shiftlead", f"/dispatch/cases/{approved_id}/extension/approve")
    assert datetime.fromisoformat(approved["handling_deadline"]) == datetime.fromisoformat(
        before["handling_deadline"]
    ) + timedelta(days=2)
    denied = await city.post("shiftlead", f"/dispatch/cases/{denied_id}/extension/deny", {"reason": "no"})
    assert denied["extension_deadline"] is None
    await city.post("shiftlead", f"/dispatch/cases/{denied_id}/extension/deny", {"reason": "again"}, expect=409)

    await city.eventually(
        "shiftlead", f"/intake/cases/{approved_id}", lambda c: c["handling_deadline"] == approved["handling_deadline"]
    )
    task = await city.eventually(
        STREET_USER, f"/handling/cases/{approved_id}", lambda t: t["extension_deadline"] is None
    )
    assert task["handling_deadline"] == approved["handling_deadline"]
    denied_timeline = await city.timeline(denied_id, "case.extension_denied")
    assert entry(denied_timeline, "case.extension_denied")["reason"] == "no"


async def test_a_suspension_stops_the_clock(city: Harness) -> None:
    case_id = await dispatched_case(city)
    before = await city.post("shiftlead", f"/dispatch/cases/{case_id}/suspend", {"reason": "waiting for budget"})
    await city.case_status(case_id, "suspended")
    await city.post(STREET_USER, f"/handling/cases/{case_id}/accept", expect=409)
    city.advance(timedelta(days=3))  # far past the 4-working-hour deadline
    resumed = await city.post("shiftlead", f"/dispatch/cases/{case_id}/resume")
    assert datetime.fromisoformat(resumed["handling_deadline"]) > datetime.fromisoformat(before["handling_deadline"])
    assert resumed["deadline_missed_at"] is None
    await city.case_status(case_id, "dispatched")
    timeline = await city.timeline(case_id, "case.resumed")
    assert "case.deadline_missed" not in types(timeline)
    await city.post(STREET_USER, f"/handling/cases/{case_id}/accept")


async def test_a_failed_check_sends_the_case_back_for_rework(city: Harness) -> None:
    case_id = await dispatched_case(city)
    await city.post(STREET_USER, f"/handling/cases/{case_id}/accept")
    await handle(city, STREET_USER, case_id, "moved them on")
    await city.eventually("inspector1", "/closure/checks", lambda b: any(c["id"] == case_id for c in b))
    failed = await city.post("inspector1", f"/closure/cases/{case_id}/check", {"passed": False, "note": "still there"})
    assert failed["status"] == "open"
    task = await city.eventually(STREET_USER, f"/handling/cases/{case_id}", lambda t: t["status"] == "rework")
    assert task["rework_reason"] == "still there"
    await handle(city, STREET_USER, case_id, "removed the stall")
    await city.eventually("inspector1", "/closure/checks", lambda b: any(c["id"] == case_id for c in b))
    closed = await city.post("inspector1", f"/closure/cases/{case_id}/check", {"passed": True})
    assert closed["checks"] == 2
    timeline = await city.timeline(case_id, "case.closed")
    assert types(timeline).count("case.handled") == 2
    assert "case.check_failed" in types(timeline)


async def test_an_overdue_case_raises_a_missed_deadline_and_a_supervision_notice(city: Harness) -> None:
    case_id = await dispatched_case(city, POWER_MANHOLE)
    dispatched = await city.get("shiftlead", f"/dispatch/cases/{case_id}")
    assert dispatched["department_id"] == "co-power"
    city.advance(timedelta(hours=3))  # an urgent category: 120 minutes of calendar time
    timeline = await city.timeline(case_id, "case.supervision_issued")
    missed = entry(timeline, "case.deadline_missed")
    assert missed["details"]["kind"] == "handling"
    assert missed["details"]["department_id"] == "co-power"
    assert entry(timeline, "case.supervision_issued")["details"]["level"] == 1
    await city.post("dept-power", f"/handling/cases/{case_id}/accept")
    await handle(city, "dept-power", case_id, "new cover fitted")
    await city.eventually("inspector1", "/closure/checks", lambda b: any(c["id"] == case_id for c in b))
    closed = await city.post("inspector1", f"/closure/cases/{case_id}/check", {"passed": True})
    assert closed["on_time"] is False
    case = await city.case_status(case_id, "closed")
    assert case["on_time"] is False


async def test_a_cancellation(city: Harness) -> None:
    case_id = await dispatched_case(city)
    await city.post("inspector1", f"/closure/cases/{case_id}/cancel", {"reason": "x"}, expect=403)
    cancelled = await city.post("shiftlead", f"/closure/cases/{case_id}/cancel", {"reason": "reported twice by phone"})
    assert cancelled["status"] == "cancelled"
    await city.post("shiftlead", f"/closure/cases/{case_id}/cancel", {"reason": "again"}, expect=409)
    await city.case_status(case_id, "cancelled")
    task = await city.eventually(STREET_USER, f"/handling/cases/{case_id}", lambda t: t["status"] == "cancelled")
    assert task["status"] == "cancelled"
    await city.post(STREET_USER, f"/handling/cases/{case_id}/accept", expect=409)
    timeline = await city.timeline(case_id, "case.cancelled")
    assert entry(timeline, "case.cancelled")["reason"] == "reported twice by phone"


async def test_a_self_handled_problem_closes_on_the_spot(city: Harness) -> None:
    report = await city.report(STREET_VENDING, self_handled=True)
    assert report["status"] == "filed"
    case = await city.case_status(report["id"], "closed")
    assert case["on_time"] is True
    assert case["department_id"] is None
    timeline = await city.timeline(report["id"], "case.closed")
    assert types(timeline) == ["report.received", "case.filed", "case.closed"]
    assert entry(timeline, "case.closed")["details"]["self_handled"] is True


async def test_unclear_ownership_is_resolved_from_the_coordination_queue(city: Harness) -> None:
    report = await city.report(OWNERLESS_MANHOLE)
    case_id = report["id"]
    await city.case_status(case_id, "coordination")
    await city.eventually("dispatcher", "/dispatch/queue", lambda b: any(c["id"] == case_id for c in b))
    await city.post("dispatcher", f"/dispatch/cases/{case_id}/dispatch", {"department_id": "no-such-dept"}, expect=422)
    await city.post("dispatcher", f"/dispatch/cases/{case_id}/dispatch", {"department_id": "co-power"})
    await city.case_status(case_id, "dispatched")
    await city.eventually("dept-power", "/handling/inbox", lambda b: any(t["id"] == case_id for t in b))
    timeline = await city.timeline(case_id, "case.dispatched")
    assert types(timeline) == ["report.received", "case.filed", "case.queued_for_coordination", "case.dispatched"]
    assert entry(timeline, "case.dispatched")["actor"] == "dispatcher"


async def test_roles_and_scopes_are_enforced(city: Harness) -> None:
    case_id = await dispatched_case(city)
    await city.call(None, "GET", "/handling/inbox", expect=401)
    await city.get("inspector1", "/handling/inbox", expect=403)
    await city.get("dept-power", f"/handling/cases/{case_id}", expect=404)
    await city.post("dept-power", f"/handling/cases/{case_id}/accept", expect=404)
    await city.get("dept-power", f"/intake/cases/{case_id}/timeline", expect=403)
    outside = {"category_code": STREET_VENDING, "description": "x", "location": {"lon": 100.0, "lat": 30.0}}
    error = await city.post("inspector1", "/intake/reports", outside, expect=422)
    assert error["message"] == "the location is outside the city's grid"
    unknown = {"category_code": "99-99-99", "description": "x", "location": city.fresh_spot()}
    await city.post("inspector1", "/intake/reports", unknown, expect=422)
    bad_token = await city.client.get("/handling/inbox", headers={"Authorization": "Bearer nonsense"})
    assert bad_token.status_code == 401


async def test_reports_in_gcj02_and_bd09_land_in_the_right_cell(city: Harness, tmp_path: Path) -> None:
    from shared.city.geo import Datum, from_wgs84

    spot = city.fresh_spot()
    cell = city.city.locate(spot["lon"], spot["lat"])
    assert cell is not None
    for datum in (Datum.GCJ02, Datum.BD09):
        lon, lat = from_wgs84(spot["lon"], spot["lat"], datum)
        body = {
            "category_code": "02-02-01" if datum is Datum.GCJ02 else "02-02-04",
            "description": "x",
            "location": {"lon": lon, "lat": lat, "datum": datum.value},
        }
        report = await city.post("inspector1", "/intake/reports", body, expect=201)
        assert report["cell_id"] == cell.id
        assert report["lon"] == pytest.approx(spot["lon"], abs=1e-5)


async def test_photo_uploads_are_limited_in_type_and_size(city: Harness) -> None:
    token = {"Authorization": f"Bearer {await city.login('inspector1')}"}
    text_file = await city.client.post(
        "/intake/photos", headers=token, files=[("files", ("notes.txt", b"not an image", "image/png"))]
    )
    assert text_file.status_code == 415
    assert text_file.json()["code"] == "unsupported_photo"
    huge = PNG + b"\x00" * (10 * 1024 * 1024)
    too_big = await city.client.post("/intake/photos", headers=token, files=[("files", ("big.png", huge, "image/png"))])
    assert too_big.status_code == 413
    stored = await city.client.post("/intake/photos", headers=token, files=[("files", ("ok.png", PNG, "image/png"))])
    assert stored.status_code == 201
    digest = stored.json()[0]["digest"]
    report = await city.report("02-02-05", photos=[digest])
    assert report["photos"] == [digest]
    missing = {"category_code": "02-02-05", "description": "x", "location": city.fresh_spot(), "photos": ["0" * 64]}
    error = await city.post("inspector1", "/intake/reports", missing, expect=422)
    assert error["details"] == {"missing_photos": ["0" * 64]}


async def test_concurrent_filings_get_distinct_case_numbers_and_a_merged_report_takes_none(city: Harness) -> None:
    filed = await asyncio.gather(*(city.report(STREET_VENDING) for _ in range(8)))
    numbers = [report["case_number"] for report in filed]
    assert len(set(numbers)) == 8
    assert all(number.startswith("2026-11-") for number in numbers)

    first = await city.report(STREET_VENDING)
    duplicate = await city.post(
        "inspector1",
        "/intake/reports",
        {
            "category_code": STREET_VENDING,
            "description": "again",
            "location": {"lon": first["lon"], "lat": first["lat"]},
        },
        expect=201,
    )
    assert duplicate["status"] == "merged"
    assert duplicate["case_number"] is None
    # The number kept aside for the duplicate went back: the next filing takes it, no gap.
    following = await city.report(STREET_VENDING)
    sequence = int(first["case_number"].rsplit("-", 1)[1])
    assert following["case_number"] == f"2026-11-{sequence + 1:06d}"


async def test_zz_after_every_scenario_the_stream_equals_the_batch_recount(city: Harness) -> None:
    """Last in the module (pytest keeps file order): every case above, whatever its path, counted
    by the stream exactly as the batch recount counts it from the services' own records.
    """
    report = await city.reconcile()
    assert " 0 differences" in report
