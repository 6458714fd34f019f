"""Delivering messages to other systems (``intake.delivery``) on the embedded store and a simulated
clock, against endpoints played by an in-process HTTP transport: signed, keyed and in order per
case; retried on a persisted schedule; given up on with the reason, redriven or discarded; one
sender per message at a time, a few per endpoint."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest
from prometheus_client import REGISTRY

from intake import delivery
from intake.delivery import DeliveryState, Selection, Sender
from intake.models import deliveries
from intake.outbound import Kind, OutboundMessage, StatusMessage, message_id
from services.runtime.registry import load_specs
from services.tools.cli import main
from shared.core.auth import Role
from shared.core.clock import Clock, SimulatedClock
from shared.core.errors import NotFound
from shared.core.ids import new_id
from shared.core.settings import Mode
from shared.events.envelope import Event
from shared.integration.endpoints import Integrations
from shared.integration.signing import Scheme, Secret, Verifier, verify
from tests.service.conftest import ServiceUnderTest, hours, principal
from tests.service.http import read_to_the_end, served
from tests.service.intake.test_outbound import Follower, a_work_order
from tests.support.integrations import HOTLINE_ENDPOINT, OUTBOUND_SECRET, integrations

HOTLINE_URL = "http://hotline.test/citycase"
WATER_URL = "http://water.test/hooks"
WATER_ENDPOINT = "department:co-water"
RETRY = {"max_attempts": 3, "max_age_hours": 1.0, "first_delay_seconds": 10.0, "max_delay_seconds": 60.0}
# A request the endpoint never answers outlasts this (seconds of the test's own time).
TIMEOUT_S = 0.2
# The endpoints of a test that holds a request open until it says so: a busy machine may take longer
# than TIMEOUT_S between two steps of the test, and the request must not time out meanwhile.
PATIENT = integrations(HOTLINE_URL, {"co-water": WATER_URL}, **RETRY, timeout_seconds=60.0)
OUR_SECRET = Verifier(Scheme.STANDARD_WEBHOOKS, (Secret("out", OUTBOUND_SECRET),))

Answer = int | type[httpx.TransportError] | Callable[[], Any]


class Ceiling(random.Random):
    """Jitter that always waits the longest it may, so the test knows when a retry is due."""

    def uniform(self, a: float, b: float) -> float:
        return b


@dataclass
class Endpoints:
    """The other systems, as an HTTP transport: each request recorded, answered 200 unless the test
    queued other answers for its host (a status, an exception, or a coroutine to await first)."""

    requests: list[httpx.Request] = field(default_factory=list)
    answers: dict[str, list[Answer]] = field(default_factory=dict)

    async def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        queued = self.answers.get(request.url.host, [])
        answer = queued.pop(0) if queued else 200
        if isinstance(answer, int):
            return httpx.Response(answer, text="" if answer < 300 else "try later")
        if isinstance(answer, type):
            raise answer("refused", request=request)
        await answer()
        return httpx.Response(200)

    def bodies(self, host: str) -> list[dict[str, Any]]:
        """What ``host`` received, in order."""
        return [json.loads(r.content) for r in self.requests if r.url.host == host]


@pytest.fixture
async def city_intake(intake: ServiceUnderTest) -> ServiceUnderTest:
    ctx = replace(
        intake.ctx,
        integrations=integrations(HOTLINE_URL, {"co-water": WATER_URL}, **RETRY, timeout_seconds=TIMEOUT_S),
    )
    (spec,) = load_specs(["intake"])
    return ServiceUnderTest(ctx, intake.clock, spec.consumers(ctx))


@pytest.fixture
def endpoints() -> Endpoints:
    return Endpoints()


@pytest.fixture
async def sender(city_intake: ServiceUnderTest, endpoints: Endpoints) -> AsyncIterator[Sender]:
    started = a_sender(city_intake, endpoints)
    yield started
    await started.close()


def a_sender(
    intake: ServiceUnderTest,
    endpoints: Endpoints,
    integrations: Integrations | None = None,
    *,
    lease_clock: Clock | None = None,
    per_endpoint: int = 4,
) -> Sender:
    """A sender of ``intake`` (as a process of its own would run one) talking to ``endpoints``;
    its leases on ``lease_clock`` (the system clock unless given)."""
    return Sender(
        intake.store,
        integrations or intake.ctx.integrations,
        intake.clock,
        transport=httpx.MockTransport(endpoints.handle),
        rng=Ceiling(),
        lease_clock=lease_clock,
        per_endpoint=per_endpoint,
    )


def message(case_id: UUID, n: int, endpoint: str = HOTLINE_ENDPOINT) -> OutboundMessage:
    """The ``n``-th status message of a case to ``endpoint``."""
    identifier = message_id(new_id(), endpoint)
    body = {"id": str(identifier), "type": "status", "timestamp": "2026-11-02T01:00:00Z", "data": {"n": n}}
    return StatusMessage(message_id=identifier, endpoint=endpoint, case_id=case_id, kind=Kind.STATUS, body=body)


async def schedule(intake: ServiceUnderTest, *messages: OutboundMessage) -> None:
    """The messages as the integration topic's consumer writes them."""
    events = [
        Event(id=m.message_id, source="/citycase/intake", subject=str(m.case_id), time=intake.clock.now(), data=m)
        for m in messages
    ]
    await intake.deliver_events(events)


async def row(intake: ServiceUnderTest, sent: OutboundMessage) -> dict[str, Any]:
    (found,) = await intake.rows(deliveries, message_id=sent.message_id)
    return dict(found)


async def states(intake: ServiceUnderTest, *sent: OutboundMessage) -> list[str]:
    return [(await row(intake, m))["state"] for m in sent]


def numbers(endpoints: Endpoints, host: str = "hotline.test") -> list[int]:
    return [body["data"]["n"] for body in endpoints.bodies(host)]


async def test_a_work_order_s_receipt_goes_from_the_case_file_to_the_hotline(
    city_intake: ServiceUnderTest, sender: Sender, endpoints: Endpoints
) -> None:
    follower = Follower(city_intake)
    case_id = await a_work_order(city_intake, follower)
    (receipt,) = await follower.messages()
    await schedule(city_intake, receipt)
    assert await sender.send_due() == 1
    (request,) = endpoints.requests
    assert str(request.url) == HOTLINE_URL
    assert json.loads(request.content) == receipt.body
    assert request.headers["content-type"] == "application/json"
    assert request.headers["idempotency-key"] == request.headers["webhook-id"] == str(receipt.message_id)
    signed = verify(OUR_SECRET, request.headers, request.content, city_intake.clock.now())
    assert signed.nonce == str(receipt.message_id)
    stored = await row(city_intake, receipt)
    assert (stored["state"], stored["case_id"], stored["attempts"]) == ("delivered", case_id, 1)


async def test_each_case_s_messages_reach_each_endpoint_in_order(
    city_intake: ServiceUnderTest, sender: Sender, endpoints: Endpoints
) -> None:
    first, second = new_id(), new_id()
    sent = [message(first, 1), message(second, 10), message(first, 2), message(first, 3, WATER_ENDPOINT)]
    sent.append(message(first, 4))
    await schedule(city_intake, *sent)
    assert await sender.send_due() == 5
    to_hotline = numbers(endpoints)
    assert [n for n in to_hotline if n < 10] == [1, 2, 4]
    assert sorted(to_hotline) == [1, 2, 4, 10]
    assert numbers(endpoints, "water.test") == [3]
    keys = [r.headers["idempotency-key"] for r in endpoints.requests]
    assert sorted(keys) == sorted(str(m.message_id) for m in sent)
    for request in endpoints.requests:
        verify(OUR_SECRET, request.headers, request.content, city_intake.clock.now())


async def test_a_message_scheduled_twice_is_delivered_once(
    city_intake: ServiceUnderTest, sender: Sender, endpoints: Endpoints
) -> None:
    once = message(new_id(), 1)
    await schedule(city_intake, once)
    await schedule(city_intake, once)  # the relay published it twice
    assert await sender.send_due() == 1
    assert len(endpoints.requests) == 1


async def test_a_failed_attempt_is_retried_when_due_while_its_case_waits_and_others_flow(
    city_intake: ServiceUnderTest, endpoints: Endpoints
) -> None:
    held, later, other = message(new_id(), 1), None, message(new_id(), 9)
    later = message(held.case_id, 2)
    await schedule(city_intake, held, later, other)
    endpoints.answers["hotline.test"] = [503]
    first = a_sender(city_intake, endpoints)
    await first.send_due()
    await first.close()  # the process stops: the schedule is in the rows
    failed = await row(city_intake, held)
    assert (failed["state"], failed["attempts"], failed["last_status"]) == ("pending", 1, 503)
    assert failed["last_error"] == "HTTP 503: try later"
    assert failed["next_attempt_at"] == city_intake.clock.now() + timedelta(seconds=10)
    assert await states(city_intake, later, other) == ["pending", "delivered"]

    restarted = a_sender(city_intake, endpoints)
    city_intake.clock.advance(timedelta(seconds=9))
    assert await restarted.send_due() == 0
    city_intake.clock.advance(timedelta(seconds=1))
    assert await restarted.send_due() == 2
    await restarted.close()
    assert numbers(endpoints) == [1, 9, 1, 2]
    assert await states(city_intake, held, later) == ["delivered", "delivered"]
    assert (await row(city_intake, held))["attempts"] == 2


@pytest.mark.parametrize(
    ("answer", "reason"),
    [(httpx.ConnectError, "ConnectError: refused"), (lambda: asyncio.sleep(5), f"no answer within {TIMEOUT_S:g} s")],
    ids=["connection refused", "no answer"],
)
async def test_no_connection_or_no_answer_in_time_is_a_failed_attempt(
    city_intake: ServiceUnderTest, sender: Sender, endpoints: Endpoints, answer: Answer, reason: str
) -> None:
    sent = message(new_id(), 1)
    await schedule(city_intake, sent)
    endpoints.answers["hotline.test"] = [answer]
    await sender.send_due()
    failed = await row(city_intake, sent)
    assert (failed["state"], failed["attempts"], failed["last_status"], failed["last_error"]) == (
        "pending",
        1,
        None,
        reason,
    )


async def test_a_message_past_its_attempts_is_dead_holds_its_case_and_a_redrive_delivers_all(
    city_intake: ServiceUnderTest, sender: Sender, endpoints: Endpoints
) -> None:
    dead, behind = message(new_id(), 1), None
    behind = message(dead.case_id, 2)
    await schedule(city_intake, dead, behind)
    endpoints.answers["hotline.test"] = [500, 500, 500]
    for _ in range(3):
        await sender.send_due()
        city_intake.clock.advance(timedelta(seconds=60))
    assert await sender.send_due() == 0
    given_up = await row(city_intake, dead)
    assert (given_up["state"], given_up["attempts"]) == ("dead", 3)
    assert given_up["dead_reason"] == "HTTP 500: try later (attempt 3 of 3, tried for 2m00s)"
    assert await states(city_intake, behind) == ["pending"]
    page = await delivery.listed(city_intake.store, DeliveryState.DEAD, Selection(), 10)
    assert [r["message_id"] for r in page.rows] == [dead.message_id]
    await sender.refresh_metrics()
    assert gauge("citycase_deliveries_dead", HOTLINE_ENDPOINT) == 1
    assert gauge("citycase_deliveries_pending", HOTLINE_ENDPOINT) == 1

    redriven = await delivery.redrive(city_intake.store, city_intake.clock, Selection(endpoint=HOTLINE_ENDPOINT))
    assert [r["message_id"] for r in redriven] == [dead.message_id]
    assert await sender.send_due() == 2
    assert numbers(endpoints) == [1, 1, 1, 1, 2]
    assert await states(city_intake, dead, behind) == ["delivered", "delivered"]
    assert (await row(city_intake, dead))["attempts"] == 1  # a fresh set of attempts
    await sender.refresh_metrics()
    assert gauge("citycase_deliveries_dead", HOTLINE_ENDPOINT) == 0


async def test_a_message_tried_longer_than_its_age_is_dead(
    city_intake: ServiceUnderTest, sender: Sender, endpoints: Endpoints
) -> None:
    sent = message(new_id(), 1)
    await schedule(city_intake, sent)
    endpoints.answers["hotline.test"] = [502, 502]
    await sender.send_due()
    city_intake.clock.advance(hours(1))
    await sender.send_due()
    assert (await row(city_intake, sent))["dead_reason"] == "HTTP 502: try later (attempt 2 of 3, tried for 1h00m)"


async def test_a_redrive_names_its_messages_and_leaves_others_dead(
    city_intake: ServiceUnderTest, sender: Sender, endpoints: Endpoints
) -> None:
    one, two = message(new_id(), 1), message(new_id(), 2, WATER_ENDPOINT)
    await schedule(city_intake, one, two)
    endpoints.answers = {"hotline.test": [500] * 3, "water.test": [500] * 3}
    for _ in range(3):
        await sender.send_due()
        city_intake.clock.advance(timedelta(seconds=60))
    by_case = await delivery.redrive(city_intake.store, city_intake.clock, Selection(case_id=two.case_id))
    assert [r["message_id"] for r in by_case] == [two.message_id]
    assert await delivery.redrive(city_intake.store, city_intake.clock, Selection(ids=(two.message_id,))) == []
    assert await states(city_intake, one, two) == ["dead", "pending"]


async def test_two_senders_never_hold_one_message_until_its_lease_runs_out(
    city_intake: ServiceUnderTest, endpoints: Endpoints
) -> None:
    sent = message(new_id(), 1)
    await schedule(city_intake, sent)
    answered = asyncio.Event()
    endpoints.answers["hotline.test"] = [answered.wait]
    real_time = SimulatedClock(datetime(2026, 11, 2, 1, 0, tzinfo=UTC))
    one, two = (a_sender(city_intake, endpoints, PATIENT, lease_clock=real_time) for _ in range(2))
    try:
        assert await one.start_due() == 1
        await asyncio.sleep(0.05)  # the request is out, unanswered
        assert await two.start_due() == 0
        # A simulated city's clock runs ahead of the request: the lease, on the real clock, holds.
        city_intake.clock.advance(hours(6))
        assert await two.start_due() == 0
        real_time.advance(one.lease)
        assert await two.send_due() == 1  # the lease ran out: the row is free to take over
        answered.set()
        await one.send_due()
    finally:
        await one.close()
        await two.close()
    assert len(endpoints.requests) == 2  # the same message, with the same key, twice
    assert {r.headers["idempotency-key"] for r in endpoints.requests} == {str(sent.message_id)}
    assert (await row(city_intake, sent))["attempts"] == 1  # the late answer of the first is not counted


async def test_a_sender_never_takes_again_a_message_it_is_still_sending(
    city_intake: ServiceUnderTest, endpoints: Endpoints
) -> None:
    sent = message(new_id(), 1)
    await schedule(city_intake, sent)
    answered = asyncio.Event()
    endpoints.answers["hotline.test"] = [answered.wait]
    real_time = SimulatedClock(datetime(2026, 11, 2, 1, 0, tzinfo=UTC))
    lone = a_sender(city_intake, endpoints, PATIENT, lease_clock=real_time)
    try:
        assert await lone.start_due() == 1
        await asyncio.sleep(0.05)
        real_time.advance(lone.lease * 2)  # its own lease ran out (a stalled process, say)
        assert await lone.start_due() == 0
        answered.set()
        await lone.send_due()
    finally:
        await lone.close()
    assert len(endpoints.requests) == 1
    assert (await row(city_intake, sent))["state"] == "delivered"


async def test_a_hanging_endpoint_holds_its_own_places_only(
    city_intake: ServiceUnderTest, endpoints: Endpoints
) -> None:
    to_hotline = [message(new_id(), n) for n in range(10)]
    to_water = [message(new_id(), 100 + n, WATER_ENDPOINT) for n in range(3)]
    await schedule(city_intake, *to_hotline, *to_water)
    answered = asyncio.Event()
    endpoints.answers["hotline.test"] = [answered.wait for _ in to_hotline]
    lone = a_sender(city_intake, endpoints, PATIENT, per_endpoint=4)
    try:
        assert await lone.start_due() == 4 + 3
        # The water company's are answered at once; the hotline still hangs on its four, and has no more.
        for _ in range(100):
            if await states(city_intake, *to_water) == ["delivered"] * 3:
                break
            await asyncio.sleep(0.05)
        assert await states(city_intake, *to_water) == ["delivered"] * 3
        assert await lone.start_due() == 0
        answered.set()
        await lone.send_due()  # the four answered
        assert await lone.send_due() == 6
    finally:
        await lone.close()
    assert await states(city_intake, *to_hotline) == ["delivered"] * 10


async def test_messages_for_an_endpoint_no_longer_configured_are_dead(
    city_intake: ServiceUnderTest, endpoints: Endpoints
) -> None:
    sent = message(new_id(), 1, "department:co-gas")
    await schedule(city_intake, sent)
    lone = a_sender(city_intake, endpoints)
    await lone.send_due()
    await lone.close()
    stored = await row(city_intake, sent)
    assert (stored["state"], stored["dead_reason"]) == ("dead", "no endpoint department:co-gas in integrations.yaml")
    assert endpoints.requests == []


async def test_delivered_messages_are_cleared_after_their_retention(
    city_intake: ServiceUnderTest, sender: Sender
) -> None:
    old, pending = message(new_id(), 1), message(new_id(), 2)
    await schedule(city_intake, old)
    await sender.send_due()
    city_intake.clock.advance(timedelta(days=8))
    await schedule(city_intake, pending)
    assert await sender.purge_delivered() == 1
    assert [r["message_id"] for r in await city_intake.rows(deliveries)] == [pending.message_id]


async def test_a_dead_message_discarded_lets_its_case_go_on_and_is_kept_with_who_when_why(
    city_intake: ServiceUnderTest, sender: Sender, endpoints: Endpoints
) -> None:
    refused = message(new_id(), 1)
    behind = message(refused.case_id, 2)
    other = message(new_id(), 3)
    await schedule(city_intake, refused, behind, other)
    endpoints.answers["hotline.test"] = [422, 200, 422, 422]  # the endpoint never takes the first
    for _ in range(3):
        await sender.send_due()
        city_intake.clock.advance(timedelta(seconds=60))
    assert await states(city_intake, refused, behind, other) == ["dead", "pending", "delivered"]
    # A redrive would only send it to its death again: it is discarded, with the reason.
    discarded = await delivery.discard(
        city_intake.store, city_intake.clock, [refused.message_id], "shiftlead", "the hotline closed it by phone"
    )
    assert [r["message_id"] for r in discarded] == [refused.message_id]
    stored = await row(city_intake, refused)
    assert (stored["state"], stored["discarded_by"], stored["discard_reason"]) == (
        "discarded",
        "shiftlead",
        "the hotline closed it by phone",
    )
    assert stored["discarded_at"] == city_intake.clock.now()
    assert stored["dead_reason"].startswith("HTTP 422")  # why it died stays too
    assert await sender.send_due() == 1
    assert await states(city_intake, refused, behind) == ["discarded", "delivered"]
    assert numbers(endpoints) == [1, 3, 1, 1, 2]
    # Not redriven with its endpoint's dead, not counted as pending or dead.
    assert await delivery.redrive(city_intake.store, city_intake.clock, Selection(endpoint=HOTLINE_ENDPOINT)) == []
    await sender.refresh_metrics()
    assert gauge("citycase_deliveries_dead", HOTLINE_ENDPOINT) == 0
    assert gauge("citycase_deliveries_pending", HOTLINE_ENDPOINT) == 0
    page = await delivery.listed(city_intake.store, DeliveryState.DISCARDED, Selection(), 10)
    assert [r["message_id"] for r in page.rows] == [refused.message_id]


async def test_only_a_dead_message_is_discarded_and_a_refusal_discards_nothing(
    city_intake: ServiceUnderTest, sender: Sender, endpoints: Endpoints
) -> None:
    (dead,) = await dead_messages(city_intake, sender, endpoints, 1)
    pending = message(new_id(), 9)
    await schedule(city_intake, pending)
    with pytest.raises(delivery.NotDead) as not_dead:
        await delivery.discard(city_intake.store, city_intake.clock, [dead, pending.message_id], "lead", "why")
    assert not_dead.value.details == {"states": {str(pending.message_id): "pending"}}
    with pytest.raises(NotFound):
        await delivery.discard(city_intake.store, city_intake.clock, [dead, new_id()], "lead", "why")
    assert await states(city_intake, pending) == ["pending"]
    assert (await city_intake.rows(deliveries, message_id=dead))[0]["state"] == "dead"
    await delivery.discard(city_intake.store, city_intake.clock, [dead], "lead", "why")
    with pytest.raises(delivery.NotDead):  # discarded already
        await delivery.discard(city_intake.store, city_intake.clock, [dead], "lead", "why")


async def test_the_shift_lead_discards_dead_messages_and_lists_them(
    city_intake: ServiceUnderTest, sender: Sender, endpoints: Endpoints
) -> None:
    ids = await dead_messages(city_intake, sender, endpoints, 2)
    async with served(city_intake, principal(Role.SHIFT_LEAD, "lead1")) as client:
        body = {"ids": [str(ids[0])], "reason": "the hotline refuses its content"}
        response = await client.post("/intake/deliveries/discard", json=body)
        assert response.status_code == 200, response.text
        (discarded,) = response.json()
        assert (discarded["id"], discarded["state"], discarded["discarded_by"]) == (str(ids[0]), "discarded", "lead1")
        assert discarded["discard_reason"] == "the hotline refuses its content"
        listed = (await client.get("/intake/deliveries", params={"state": "discarded"})).json()
        assert [item["id"] for item in listed] == [str(ids[0])]
        assert [item["id"] for item in (await client.get("/intake/deliveries")).json()] == [str(ids[1])]
        again = await client.post("/intake/deliveries/discard", json=body)
        assert again.status_code == 409, again.text
        unknown = await client.post("/intake/deliveries/discard", json={"ids": [str(new_id())], "reason": "x"})
        assert unknown.status_code == 404, unknown.text
    async with served(city_intake, principal(Role.OPERATOR)) as client:
        refused = await client.post("/intake/deliveries/discard", json={"ids": [str(ids[1])], "reason": "x"})
        assert refused.status_code == 403
    assert await states_by_id(city_intake, ids) == ["discarded", "dead"]


async def test_a_dead_message_is_discarded_from_the_command_line(
    city_intake: ServiceUnderTest,
    sender: Sender,
    endpoints: Endpoints,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    dead, kept = await dead_messages(city_intake, sender, endpoints, 2)
    # The command reads the intake database of the data folder, the one this intake runs on.
    monkeypatch.setenv("CITYCASE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CITYCASE_MODE", "embedded")
    discard = ["deliveries", "discard", "--id", str(dead), "--reason", "answered by phone"]
    assert await asyncio.to_thread(main, discard) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("1 dead message(s) discarded\n")
    assert f"{dead}  {HOTLINE_ENDPOINT}" in printed
    assert "(cli) at " in printed
    assert ": answered by phone\n    dead: HTTP 500: try later" in printed
    assert await states_by_id(city_intake, [dead, kept]) == ["discarded", "dead"]
    assert await asyncio.to_thread(main, ["deliveries", "list", "--discarded"]) == 0
    assert capsys.readouterr().out.startswith("1 discarded message(s)\n")
    # Not dead (any more): refused, with the reason, and nothing changes.
    assert await asyncio.to_thread(main, [*discard[:3], str(dead), "--id", str(kept), "--reason", "x"]) == 1
    assert "only dead messages are discarded" in capsys.readouterr().err
    assert await states_by_id(city_intake, [dead, kept]) == ["discarded", "dead"]


async def test_production_intake_will_not_start_to_send_in_the_clear_or_link_to_itself(
    intake: ServiceUnderTest,
) -> None:
    (spec,) = load_specs(["intake"])
    production = intake.ctx.settings.model_copy(update={"mode": Mode.PRODUCTION})
    plain = replace(intake.ctx, settings=production, integrations=integrations("http://hotline.example.cn/in"))
    with pytest.raises(RuntimeError) as refused:
        spec.consumers(plain)  # as intake's process builds them, before it serves
    problems = str(refused.value).splitlines()[1:]
    assert [problem.strip()[:60] for problem in problems] == [
        "CITYCASE_PUBLIC_URL is http://127.0.0.1:8000, this machine: ",
        "hotline:12345 is plain http (http://hotline.example.cn/in): ",
    ]
    # Told the network is the city's own, with its real address: it starts.
    allowed = production.model_copy(
        update={"public_url": "https://citycase.example.gov.cn", "allow_plain_http_endpoints": True}
    )
    assert len(spec.consumers(replace(plain, settings=allowed))) == 2
    # Nothing to send (the demo city's hotline without a url): nothing to refuse.
    assert len(spec.consumers(replace(plain, integrations=integrations(None)))) == 2


async def states_by_id(intake: ServiceUnderTest, ids: list[UUID]) -> list[str]:
    return [(await intake.rows(deliveries, message_id=i))[0]["state"] for i in ids]


def gauge(name: str, endpoint: str) -> float | None:
    return REGISTRY.get_sample_value(name, {"endpoint": endpoint})


async def dead_messages(intake: ServiceUnderTest, sender: Sender, endpoints: Endpoints, count: int) -> list[UUID]:
    """``count`` messages to the hotline, of a case each, given up on; their ids."""
    sent = [message(new_id(), n) for n in range(count)]
    await schedule(intake, *sent)
    endpoints.answers["hotline.test"] = [500 for _ in range(3 * count)]
    for _ in range(3):
        await sender.send_due()
        intake.clock.advance(timedelta(seconds=60))
    assert await states(intake, *sent) == ["dead"] * count
    return [m.message_id for m in sent]


async def test_the_shift_lead_lists_dead_messages_in_pages_and_redrives_them(
    city_intake: ServiceUnderTest, sender: Sender, endpoints: Endpoints
) -> None:
    ids = await dead_messages(city_intake, sender, endpoints, 3)
    async with served(city_intake, principal(Role.SHIFT_LEAD)) as client:
        pages = await read_to_the_end(client, f"/intake/deliveries?state=dead&endpoint={HOTLINE_ENDPOINT}&limit=2")
        assert [len(page) for page in pages] == [2, 1]
        listed = [item for page in pages for item in page]
        assert sorted(str(i) for i in ids) == sorted(str(item["id"]) for item in listed)
        assert all(item["state"] == "dead" and item["attempts"] == 3 for item in listed)
        assert str(listed[0]["dead_reason"]).startswith("HTTP 500: try later (attempt 3 of 3")
        assert (await client.get("/intake/deliveries", params={"state": "pending"})).json() == []

        response = await client.post("/intake/deliveries/redrive", json={"ids": [str(ids[0])]})
        assert response.status_code == 200, response.text
        assert [item["id"] for item in response.json()] == [str(ids[0])]
        assert [item["state"] for item in response.json()] == ["pending"]
        response = await client.post("/intake/deliveries/redrive", json={"endpoint": HOTLINE_ENDPOINT})
        assert sorted(item["id"] for item in response.json()) == sorted(str(i) for i in ids[1:])
    assert await sender.send_due() == 3


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/intake/deliveries?state=delivered", None),
        ("GET", "/intake/deliveries?endpoint=anywhere", None),
        ("POST", "/intake/deliveries/redrive", {}),
        ("POST", "/intake/deliveries/redrive", {"endpoint": "hotline:12345", "everything": True}),
        ("POST", "/intake/deliveries/redrive", {"ids": ["not-a-uuid"]}),
        ("POST", "/intake/deliveries/discard", {"ids": [str(new_id())]}),
        ("POST", "/intake/deliveries/discard", {"ids": [], "reason": "x"}),
        ("POST", "/intake/deliveries/discard", {"endpoint": "hotline:12345", "reason": "x"}),
        ("POST", "/intake/deliveries/discard", {"ids": [str(new_id())], "reason": "bell\u0007"}),
    ],
    ids=[
        "delivered is no list",
        "no such endpoint name",
        "naming nothing",
        "unknown field",
        "a bad id",
        "a discard without a reason",
        "a discard naming nothing",
        "a discard of a whole endpoint",
        "a reason with a control character",
    ],
)
async def test_a_bad_request_about_deliveries_is_refused_with_422(
    city_intake: ServiceUnderTest, method: str, path: str, body: Any
) -> None:
    async with served(city_intake, principal(Role.SHIFT_LEAD)) as client:
        response = await client.request(method, path, json=body)
    assert response.status_code == 422, response.text


async def test_a_redrive_of_an_unknown_message_is_a_404_that_redrives_nothing(
    city_intake: ServiceUnderTest, sender: Sender, endpoints: Endpoints
) -> None:
    (dead,) = await dead_messages(city_intake, sender, endpoints, 1)
    async with served(city_intake, principal(Role.SHIFT_LEAD)) as client:
        response = await client.post("/intake/deliveries/redrive", json={"ids": [str(dead), str(new_id())]})
    assert response.status_code == 404, response.text
    assert (await city_intake.rows(deliveries, message_id=dead))[0]["state"] == "dead"


async def test_only_a_shift_lead_sees_or_redrives_deliveries(city_intake: ServiceUnderTest) -> None:
    async with served(city_intake, principal(Role.OPERATOR)) as client:
        assert (await client.get("/intake/deliveries")).status_code == 403
        response = await client.post("/intake/deliveries/redrive", json={"endpoint": HOTLINE_ENDPOINT})
        assert response.status_code == 403
