"""What the case file tells other systems: the hotline's receipt, status changes and reply, and a
department system's case changes, sent on the integration topic in the transaction that applies
the event."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import select

from intake.domain import RejectionReason
from intake.handlers import reject_report, verify_report
from intake.models import cases
from intake.outbound import INTEGRATION_CATALOGUE, CaseFacts, Kind, Outbound, OutboundMessage, message_id
from services.runtime.registry import load_specs
from shared.city.model import City
from shared.core.auth import Role
from shared.core.clock import SimulatedClock
from shared.core.ids import new_id
from shared.events.catalogue import (
    CaseAccepted,
    CaseCancelled,
    CaseClosed,
    CaseDispatched,
    CaseHandled,
    CaseReopened,
    CaseResumed,
    CaseReturned,
    CaseSuspended,
    CheckRequested,
    ExtensionApproved,
    ReportRejected,
    ReportSource,
)
from shared.events.envelope import Event
from shared.messaging.binding import decode
from shared.messaging.bus import Record
from shared.messaging.tables import headers_from_json
from tests.service.conftest import MONDAY_0900, ServiceUnderTest, hours, principal
from tests.service.intake.conftest import CELL, ORDINARY, inspector, send
from tests.support.integrations import HOTLINE_ENDPOINT, HOTLINE_ID, integrations

WATER, URBAN = "co-water", "bureau-urban"
PUBLIC_URL = "https://citycase.example.gov.cn"
DEADLINE = MONDAY_0900 + timedelta(days=3)
PHOTO = "c" * 64


@pytest.fixture
async def city_intake(intake: ServiceUnderTest) -> ServiceUnderTest:
    """Intake in a city whose hotline 12345 and water company have endpoints (the urban bureau none)."""
    ctx = replace(
        intake.ctx,
        integrations=integrations("https://hotline.example/in", {WATER: "https://water.example/citycase"}),
        settings=intake.ctx.settings.model_copy(update={"public_url": PUBLIC_URL + "/"}),
    )
    (spec,) = load_specs(["intake"])
    return ServiceUnderTest(ctx, intake.clock, spec.consumers(ctx))


class Follower:
    """Feeds intake's case file the events intake emitted, as its consumer would, and reads what it
    sent on the integration topic since the last look."""

    def __init__(self, intake: ServiceUnderTest) -> None:
        self.intake = intake
        self._rows_seen = 0
        self._messages_seen = 0

    async def own_events(self) -> None:
        """Apply the case events intake committed since the last call."""
        await self.intake.deliver_events(await self.fresh_events())

    async def fresh_events(self) -> list[Event]:
        """The case events intake committed since the last call (not applied: the test applies them)."""
        events = [event for topic, event in await self._outbox() if topic == "case"]
        fresh, self._rows_seen = events[self._rows_seen :], len(events)
        return fresh

    async def messages(self) -> list[OutboundMessage]:
        """The integration messages committed since the last call, in order."""
        sent = [event.data for topic, event in await self._outbox() if topic == "integration"]
        fresh, self._messages_seen = sent[self._messages_seen :], len(sent)
        assert all(isinstance(message, OutboundMessage) for message in fresh)
        return fresh  # type: ignore[return-value]

    async def _outbox(self) -> list[tuple[str, Event]]:
        store = self.intake.store
        settings = self.intake.ctx.settings
        async with store.engine.connect() as connection:
            rows = (await connection.execute(select(store.outbox).order_by(store.outbox.c.seq))).mappings().all()
        decoded = []
        for n, row in enumerate(rows):
            record = Record(row["topic"], 0, n, row["key"], row["value"], headers_from_json(row["headers"]))
            if row["topic"] == settings.topic_integration:
                assert row["key"] == decode(record, INTEGRATION_CATALOGUE).subject.encode()
                decoded.append(("integration", decode(record, INTEGRATION_CATALOGUE)))
            else:
                decoded.append(("case", decode(record)))
        return decoded


def dispatched(department_id: str, attempt: int = 1) -> CaseDispatched:
    return CaseDispatched(
        department_id=department_id, dispatched_by="dispatcher1", handling_deadline=DEADLINE, attempt=attempt
    )


def data(message: OutboundMessage) -> dict[str, Any]:
    body: dict[str, Any] = message.body["data"]
    return body


async def a_work_order(intake: ServiceUnderTest, follower: Follower, reporter_id: str = HOTLINE_ID) -> UUID:
    """A work order of the hotline, received and sent to the cell's inspector; its id."""
    row = await send(intake, ReportSource.HOTLINE, category=ORDINARY, reporter_id=reporter_id, external_ref="WO-88")
    await follower.own_events()
    report_id: UUID = row["id"]
    return report_id


async def a_filed_work_order(intake: ServiceUnderTest, follower: Follower) -> UUID:
    report_id = await a_work_order(intake, follower)
    await verify_report(intake.ctx, inspector("insp-001"), report_id, confirmed=True, note=None, photos=[PHOTO])
    await follower.own_events()
    await follower.messages()
    return report_id


async def test_the_hotline_hears_its_receipt_then_each_status_then_the_reply(city_intake: ServiceUnderTest) -> None:
    intake, follower = city_intake, Follower(city_intake)
    case_id = await a_work_order(intake, follower)
    (receipt,) = await follower.messages()
    assert (receipt.kind, receipt.endpoint, receipt.case_id) == (Kind.RECEIPT, HOTLINE_ENDPOINT, case_id)
    assert receipt.body["type"] == "receipt"
    assert receipt.body["id"] == str(receipt.message_id)
    due = data(receipt)["verification_due_at"]
    assert data(receipt) == {
        "work_order": "WO-88",
        "case_id": str(case_id),
        "case_number": None,
        "decision": "accepted",
        "verification_due_at": due,
    }

    intake.clock.advance(hours(1))
    await verify_report(intake.ctx, inspector("insp-001"), case_id, confirmed=True, note=None, photos=[])
    await follower.own_events()
    (filed,) = await follower.messages()
    number = data(filed)["case_number"]
    assert number.startswith("2026-11-")
    assert (filed.kind, data(filed)["status"]) == (Kind.STATUS, "filed")

    later = DEADLINE + timedelta(days=2)
    for payload in (
        dispatched(URBAN),
        CaseAccepted(department_id=URBAN, accepted_by="clerk"),
        ExtensionApproved(approved_by="lead", handling_deadline=later),
        CaseSuspended(suspended_by="lead", reason="waiting for the owner"),
        CaseResumed(resumed_by="lead", handling_deadline=later + timedelta(days=1)),
        CaseHandled(department_id=URBAN, handled_by="clerk", result="cover replaced", photos=[PHOTO]),
        CheckRequested(inspector_id="insp-001", check_deadline=later),
        CaseClosed(closed_by="insp-001", on_time=True),
    ):
        await intake.deliver(payload, case_id)
    statuses = await follower.messages()
    assert [(m.kind, data(m).get("status")) for m in statuses] == [
        (Kind.STATUS, "dispatched"),
        (Kind.STATUS, "extended"),
        (Kind.STATUS, "suspended"),
        (Kind.STATUS, "resumed"),
        (Kind.REPLY, None),
    ]
    assert data(statuses[0])["department"] == {"id": URBAN, "name": intake.ctx.city.department(URBAN).name}
    assert data(statuses[2])["reason"] == "waiting for the owner"
    reply = statuses[-1]
    assert data(reply) == {
        "work_order": "WO-88",
        "case_id": str(case_id),
        "case_number": number,
        "result": "cover replaced",
        "department": {"id": URBAN, "name": intake.ctx.city.department(URBAN).name},
        "handled_at": "2026-11-02T02:00:00Z",
        "closed_at": "2026-11-02T02:00:00Z",
        "on_time": True,
        "photos": [f"{PUBLIC_URL}/handling/photos/{PHOTO}"],
    }
    assert {m.endpoint for m in statuses} == {HOTLINE_ENDPOINT}


async def test_a_reply_reads_the_latest_report_back_whether_in_its_batch_or_an_earlier_one(
    city_intake: ServiceUnderTest,
) -> None:
    intake, follower = city_intake, Follower(city_intake)
    case_id = await a_filed_work_order(intake, follower)
    await intake.deliver(dispatched(WATER), case_id)
    # The report back lands in a batch of its own and is kept in the case file for the reply.
    await intake.deliver(CaseHandled(department_id=WATER, handled_by="clerk", result="first try"), case_id)
    kept = await intake.row(cases, case_id)
    assert (kept["handled_result"], kept["handled_photos"]) == ("first try", [])
    await intake.deliver(CaseClosed(closed_by="insp-001", on_time=True), case_id)
    # The citizen is not satisfied: the rework's report back and the second closure come in one
    # batch, and the second reply has the rework's result.
    events = [
        Event.occurred(payload, subject=case_id, source="/citycase/handling", clock=intake.clock)
        for payload in (
            CaseReopened(department_id=WATER, reason="the citizen says it still leaks"),
            CaseHandled(department_id=WATER, handled_by="clerk", result="pipe replaced", photos=[PHOTO]),
            CaseClosed(closed_by="insp-001", on_time=False),
        )
    ]
    await intake.deliver_events(events)
    to_hotline = [m for m in await follower.messages() if m.endpoint == HOTLINE_ENDPOINT]
    assert [(m.kind, data(m).get("status")) for m in to_hotline] == [
        (Kind.STATUS, "dispatched"),
        (Kind.REPLY, None),
        (Kind.STATUS, "reopened"),
        (Kind.REPLY, None),
    ]
    assert [(data(m)["result"], data(m)["on_time"]) for m in (to_hotline[1], to_hotline[3])] == [
        ("first try", True),
        ("pipe replaced", False),
    ]
    assert data(to_hotline[3])["photos"] == [f"{PUBLIC_URL}/handling/photos/{PHOTO}"]
    assert (await intake.row(cases, case_id))["handled_result"] == "pipe replaced"


@pytest.mark.parametrize("in_one_batch", [False, True], ids=["event by event", "in one batch"])
async def test_a_department_system_hears_every_change_to_the_cases_it_holds(
    city_intake: ServiceUnderTest, in_one_batch: bool
) -> None:
    intake, follower = city_intake, Follower(city_intake)
    case_id = await a_filed_work_order(intake, follower)
    events = [
        Event.occurred(payload, subject=case_id, source="/citycase/elsewhere", clock=intake.clock)
        for payload in (
            dispatched(WATER),
            CaseAccepted(department_id=WATER, accepted_by="clerk"),
            CaseReturned(department_id=WATER, returned_by="clerk", reason="not our pipe"),
            dispatched(URBAN, attempt=2),  # the urban bureau has no system: nothing to send it
            dispatched(WATER, attempt=3),  # taken from the bureau and given back to the water company
            CaseHandled(department_id=WATER, handled_by="clerk", result="fixed", photos=[PHOTO]),
            CaseClosed(closed_by="insp-001", on_time=True),
        )
    ]
    for batch in [events] if in_one_batch else [[event] for event in events]:
        await intake.deliver_events(batch)
    to_water = [m for m in await follower.messages() if m.endpoint == "department:co-water"]
    assert all(m.kind is Kind.CASE for m in to_water)
    assert [data(m)["change"] for m in to_water] == [
        "dispatched",
        "accepted",
        "returned",
        "dispatched",
        "handled",
        "closed",
    ]
    first = data(to_water[0])
    assert first["department_id"] == WATER
    assert first["case"]["description"] == "a problem"
    assert first["case"]["category"]["code"] == ORDINARY
    assert first["case"]["place"]["cell_id"] == CELL
    assert first["case"]["photos"] == []
    assert data(to_water[2])["reason"] == "not our pipe"
    assert data(to_water[4])["photos"] == [f"{PUBLIC_URL}/handling/photos/{PHOTO}"]


async def test_a_department_hears_its_case_withdrawn_when_it_goes_to_another(city_intake: ServiceUnderTest) -> None:
    intake, follower = city_intake, Follower(city_intake)
    case_id = await a_filed_work_order(intake, follower)
    await intake.deliver(dispatched(WATER), case_id)
    moved = await intake.deliver(dispatched(URBAN, attempt=2), case_id)
    await intake.deliver(CaseSuspended(suspended_by="lead", reason="owner unknown"), case_id)
    to_water = [m for m in await follower.messages() if m.endpoint == "department:co-water"]
    assert [data(m)["change"] for m in to_water] == ["dispatched", "withdrawn"]
    assert to_water[1].message_id == message_id(moved.id, "department:co-water")


async def test_a_merged_work_order_gets_a_receipt_naming_the_case_it_joined(city_intake: ServiceUnderTest) -> None:
    intake, follower = city_intake, Follower(city_intake)
    open_case = await send(intake, ReportSource.INSPECTOR, category=ORDINARY)
    await follower.own_events()
    merged = await send(intake, ReportSource.HOTLINE, category=ORDINARY, reporter_id=HOTLINE_ID, external_ref="WO-9")
    await follower.own_events()
    (receipt,) = await follower.messages()
    assert receipt.case_id == merged["id"]
    assert data(receipt)["decision"] == "merged"
    assert data(receipt)["merged_into"] == {"case_id": str(open_case["id"]), "case_number": open_case["case_number"]}


async def test_a_rejection_after_the_inspector_went_to_look_is_a_status(city_intake: ServiceUnderTest) -> None:
    intake, follower = city_intake, Follower(city_intake)
    report_id = await a_work_order(intake, follower)
    await follower.messages()
    operator = principal(Role.OPERATOR, "operator1")
    await reject_report(intake.ctx, operator, report_id, RejectionReason.OUT_OF_SCOPE, "a private courtyard")
    await follower.own_events()
    (status,) = await follower.messages()
    assert (status.kind, data(status)["status"], data(status)["reason"]) == (
        Kind.STATUS,
        "rejected",
        "a private courtyard",
    )


async def test_reports_from_elsewhere_send_nothing(city_intake: ServiceUnderTest) -> None:
    follower = Follower(city_intake)
    await a_work_order(city_intake, follower, reporter_id="hotline-12319")  # a hotline with no endpoint
    public = await send(city_intake, ReportSource.PUBLIC, category=ORDINARY, cell="990102001002001")
    await follower.own_events()
    await city_intake.deliver(dispatched(URBAN), public["id"])
    assert await follower.messages() == []


async def test_a_city_without_integrations_sends_nothing(intake: ServiceUnderTest) -> None:
    follower = Follower(intake)
    case_id = await a_work_order(intake, follower)
    await intake.deliver(dispatched(WATER), case_id)
    assert await follower.messages() == []


def test_a_work_order_refused_before_anyone_went_to_look_gets_a_refusing_receipt(city: City) -> None:
    outbound = Outbound(integrations("https://hotline.example/in"), city, PUBLIC_URL)
    report_id = new_id()
    facts = CaseFacts(
        id=report_id,
        source=ReportSource.HOTLINE,
        reporter_id=HOTLINE_ID,
        external_ref="WO-3",
        verifier_id=None,
        category_code=ORDINARY,
        description="a problem",
        lon=113.6,
        lat=34.7,
        cell_id=CELL,
        community_id="c",
        street_id="s",
        district_id="d",
        photos=(),
        received_at=MONDAY_0900,
        case_number=None,
        filed_at=None,
        department_id=None,
        handling=None,
    )
    refused = ReportRejected(reason_code="out_of_scope", reason="a private courtyard", rejected_by="operator1")
    event = Event.occurred(refused, subject=report_id, source="/citycase/intake", clock=SimulatedClock(MONDAY_0900))
    (receipt,) = outbound.messages(event, facts)
    assert (receipt.kind, receipt.message_id) == (Kind.RECEIPT, message_id(event.id, HOTLINE_ENDPOINT))
    assert data(receipt) == {
        "work_order": "WO-3",
        "case_id": str(report_id),
        "case_number": None,
        "decision": "refused",
        "reason_code": "out_of_scope",
        "reason": "a private courtyard",
    }
    assert receipt.body["timestamp"] == "2026-11-02T01:00:00Z"


# --- work orders merged into another case ----------------------------------------------------


async def merged_work_orders(intake: ServiceUnderTest, follower: Follower) -> tuple[UUID, list[UUID]]:
    """An inspector's case, and two work orders of hotline 12345 (WO-1, WO-2) and one of a hotline
    with no endpoint merged into it, their receipts sent; the case's id and the two work orders'."""
    open_case = await send(intake, ReportSource.INSPECTOR, category=ORDINARY)
    await follower.own_events()
    work_orders = []
    for number in ("WO-1", "WO-2"):
        merged = await send(
            intake, ReportSource.HOTLINE, category=ORDINARY, reporter_id=HOTLINE_ID, external_ref=number
        )
        work_orders.append(merged["id"])
    await send(intake, ReportSource.HOTLINE, category=ORDINARY, reporter_id="hotline-12319", external_ref="WO-3")
    await follower.own_events()
    assert [data(m)["decision"] for m in await follower.messages()] == ["merged", "merged"]
    return open_case["id"], work_orders


async def test_work_orders_merged_into_a_case_hear_when_it_closes_each_under_its_own_number(
    city_intake: ServiceUnderTest,
) -> None:
    intake, follower = city_intake, Follower(city_intake)
    case_id, work_orders = await merged_work_orders(intake, follower)
    number = (await intake.row(cases, case_id))["case_number"]
    await intake.deliver(dispatched(URBAN), case_id)
    await intake.deliver(
        CaseHandled(department_id=URBAN, handled_by="clerk", result="cover replaced", photos=[PHOTO]), case_id
    )
    # The steps in between are the case's own: a merged work order hears none of them.
    assert await follower.messages() == []

    closed = await intake.deliver(CaseClosed(closed_by="insp-001", on_time=True), case_id)
    replies = await follower.messages()
    assert [(m.kind, m.endpoint, m.case_id) for m in replies] == [
        (Kind.REPLY, HOTLINE_ENDPOINT, work_order) for work_order in work_orders
    ]
    assert [m.message_id for m in replies] == [message_id(closed.id, HOTLINE_ENDPOINT, w) for w in work_orders]
    assert len({m.message_id for m in replies}) == 2
    assert data(replies[0]) == {
        "work_order": "WO-1",
        "case_id": str(work_orders[0]),
        "case_number": None,
        "merged_into": {"case_id": str(case_id), "case_number": number},
        "result": "cover replaced",
        "department": {"id": URBAN, "name": intake.ctx.city.department(URBAN).name},
        "handled_at": "2026-11-02T01:00:00Z",
        "closed_at": "2026-11-02T01:00:00Z",
        "on_time": True,
        "photos": [f"{PUBLIC_URL}/handling/photos/{PHOTO}"],
    }
    assert data(replies[1])["work_order"] == "WO-2"

    # Reopened for rework and closed again: they hear both, and the second reply.
    await intake.deliver(CaseReopened(department_id=URBAN, reason="the citizen says it is back"), case_id)
    await intake.deliver(CaseHandled(department_id=URBAN, handled_by="clerk", result="welded shut"), case_id)
    await intake.deliver(CaseClosed(closed_by="insp-001", on_time=False), case_id)
    heard = await follower.messages()
    assert [(m.case_id, m.kind, data(m).get("status"), data(m).get("result")) for m in heard] == [
        (work_orders[0], Kind.STATUS, "reopened", None),
        (work_orders[1], Kind.STATUS, "reopened", None),
        (work_orders[0], Kind.REPLY, None, "welded shut"),
        (work_orders[1], Kind.REPLY, None, "welded shut"),
    ]
    assert data(heard[0])["reason"] == "the citizen says it is back"


async def test_work_orders_merged_into_a_case_hear_it_cancelled(city_intake: ServiceUnderTest) -> None:
    intake, follower = city_intake, Follower(city_intake)
    case_id, work_orders = await merged_work_orders(intake, follower)
    await intake.deliver(CaseCancelled(cancelled_by="lead", reason="filed twice"), case_id)
    heard = await follower.messages()
    assert [(m.case_id, data(m)["status"], data(m)["reason"]) for m in heard] == [
        (work_order, "cancelled", "filed twice") for work_order in work_orders
    ]


@pytest.mark.parametrize("order", ["merge first", "closure first"])
async def test_a_work_order_merged_in_the_batch_of_the_closure_hears_its_receipt_then_the_reply(
    city_intake: ServiceUnderTest, order: str
) -> None:
    intake, follower = city_intake, Follower(city_intake)
    open_case = await send(intake, ReportSource.INSPECTOR, category=ORDINARY)
    await follower.own_events()
    case_id = open_case["id"]
    await intake.deliver(CaseHandled(department_id=URBAN, handled_by="clerk", result="fixed"), case_id)
    merged = await send(intake, ReportSource.HOTLINE, category=ORDINARY, reporter_id=HOTLINE_ID, external_ref="WO-7")
    merge = await follower.fresh_events()  # the work order received, and merged
    closure = Event.occurred(
        CaseClosed(closed_by="insp-001", on_time=True), subject=case_id, source="/citycase/closure", clock=intake.clock
    )
    await intake.deliver_events([*merge, closure] if order == "merge first" else [closure, *merge])
    heard = await follower.messages()
    assert [(m.kind, m.case_id) for m in heard] == [(Kind.RECEIPT, merged["id"]), (Kind.REPLY, merged["id"])]
    assert (data(heard[1])["work_order"], data(heard[1])["result"]) == ("WO-7", "fixed")


async def test_a_work_order_merged_into_a_case_closed_since_hears_the_reply_after_its_receipt(
    city_intake: ServiceUnderTest,
) -> None:
    """The merge was decided while the case file still had the case open, and reaches it after
    the closure (another partition): the reply follows the receipt at once, never before it."""
    intake, follower = city_intake, Follower(city_intake)
    open_case = await send(intake, ReportSource.INSPECTOR, category=ORDINARY)
    await follower.own_events()
    case_id = open_case["id"]
    merged = await send(intake, ReportSource.HOTLINE, category=ORDINARY, reporter_id=HOTLINE_ID, external_ref="WO-8")
    await intake.deliver(CaseHandled(department_id=URBAN, handled_by="clerk", result="fixed"), case_id)
    intake.clock.advance(hours(2))
    await intake.deliver(CaseClosed(closed_by="insp-001", on_time=False), case_id)
    assert await follower.messages() == []  # its merge not applied yet: nothing before its receipt
    await follower.own_events()
    receipt, reply = await follower.messages()
    assert (receipt.kind, data(receipt)["decision"]) == (Kind.RECEIPT, "merged")
    assert (reply.kind, reply.case_id, reply.endpoint) == (Kind.REPLY, merged["id"], HOTLINE_ENDPOINT)
    assert (data(reply)["result"], data(reply)["on_time"], data(reply)["closed_at"]) == (
        "fixed",
        False,
        "2026-11-02T03:00:00Z",
    )
    assert receipt.message_id != reply.message_id
