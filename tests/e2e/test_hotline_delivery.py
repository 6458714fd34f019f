"""What the city sends the hotline and a department's system, delivered to a real HTTP server: the
hotline stub (``tests.support.hotline_stub``), a process of its own on 127.0.0.1, which records
every request and verifies its signature with the shared secret. The city is a process of its own
too (``python -m services run all``), on each backend, on the system clock.

The stub answers 500s, stops (connections refused), hangs past the timeout and recovers, while
three work orders go from the hotline to closure; the city is killed (kill -9) while it retries
and started again. Every message of every case must reach its endpoint, signed, once per
idempotency key (a repeat only ever under the same key, with the same body), in the order the
case's messages were made; the department's messages, which outlive their attempts, land dead,
hold their cases' later messages back, and are delivered once redriven (by the CLI and by the
shift lead's route).

The outages are seconds, not the minutes or hours of a real one, with the retry policy scaled to
them: first retry after 0.1 to 0.2 s, doubling up to 1 s, 1 s to answer, as many attempts as an
hour allows; the department's endpoint gives up after 3 attempts.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.city.loader import load_city
from shared.core.clock import SimulatedClock
from shared.core.ids import new_id
from shared.core.settings import Mode, Settings
from tests.conftest import delete_topics
from tests.e2e.harness import PNG, START, Harness, _empty_production_schemas, city_settings
from tests.support.integrations import HOTLINE_ENDPOINT, OUTBOUND_SECRET, integrations_yaml
from tests.support.processes import CityProcess, HotlineStub

STREET_VENDING = "02-05-01"  # routed to the street office of the place
STREET_OFFICE, STREET_USER = "office-990102001", "dept-street"
DEPARTMENT_ENDPOINT = f"department:{STREET_OFFICE}"
ENDPOINTS = (HOTLINE_ENDPOINT, DEPARTMENT_ENDPOINT)
RETRY = {
    "max_age_hours": 1.0,
    "first_delay_seconds": 0.2,
    "max_delay_seconds": 1.0,
    "timeout_seconds": 1.0,
}
CASES = 3
PUBLIC_URL = "https://citycase.example.gov.cn"
WAIT_S = 60.0
# What each endpoint hears of a case that goes from work order to closure, in order.
HOTLINE_HEARS = [("receipt", "accepted"), ("status", "filed"), ("status", "dispatched"), ("reply", None)]
DEPARTMENT_HEARS = ["dispatched", "accepted", "handled", "closed"]


@dataclass
class Scene:
    """The running city, the stub, and the city's users over HTTP."""

    city: CityProcess
    stub: HotlineStub
    users: Harness

    async def deliveries(self, state: str, endpoint: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = await self.users.get(
            "shiftlead", "/intake/deliveries", params={"state": state, "endpoint": endpoint, "limit": 500}
        )
        return found

    async def until(self, what: str, condition: Callable[[], Any]) -> None:
        """Wait (bounded) until ``condition()`` (sync or async) holds."""
        try:
            async with asyncio.timeout(WAIT_S):
                while True:
                    held = condition()
                    if asyncio.iscoroutine(held):
                        held = await held
                    if held:
                        return
                    await asyncio.sleep(0.1)
        except TimeoutError:
            raise AssertionError(f"never: {what}; the stub received {len(self.stub.received())} requests") from None


@asynccontextmanager
async def city_and_stub(
    mode: str, tmp_path: Path, integrations: Callable[[HotlineStub], str], **stub_modes: str
) -> AsyncIterator[Scene]:
    """The stub (its paths answering as ``stub_modes`` say) and a city of its own process on
    ``mode``'s backend, whose ``integrations.yaml`` is ``integrations(stub)``, photo links under
    ``PUBLIC_URL``."""
    stub = HotlineStub(tmp_path, OUTBOUND_SECRET)
    city_dir = tmp_path / "city"
    shutil.copytree(Settings().city_dir, city_dir)
    (city_dir / "integrations.yaml").write_text(integrations(stub), encoding="utf-8")
    settings = city_settings(mode, tmp_path).model_copy(
        update={
            "data_dir": tmp_path,
            "city_dir": city_dir,
            "delivery_poll_seconds": 0.1,
            "kafka_group_prefix": f"e2e-{new_id().hex[-10:]}.",
        }
    )
    if settings.mode is Mode.PRODUCTION:
        await _empty_production_schemas(settings)
    city = CityProcess(settings.model_copy(update={"public_url": PUBLIC_URL}), tmp_path)
    try:
        await stub.start(**stub_modes)
        await city.start()
        async with httpx.AsyncClient(base_url=city.url, timeout=30) as client:
            yield Scene(city, stub, Harness(client, SimulatedClock(START), load_city(city_dir)))
    finally:
        await city.stop()
        await stub.stop()
        if settings.mode is Mode.PRODUCTION:
            await delete_topics(
                settings, [settings.topic_case_events, settings.topic_dead_letter, settings.topic_integration]
            )


@pytest.fixture(params=["embedded", "postgres-kafka"])
async def scene(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Scene]:
    def integrations(stub: HotlineStub) -> str:
        department = {"url": stub.url("/department"), "retry": {"max_attempts": 3}}
        return integrations_yaml(stub.url("/hotline"), {STREET_OFFICE: department}, RETRY)

    async with city_and_stub(request.param, tmp_path, integrations, hotline="fail", department="fail") as scene:
        yield scene


async def test_every_message_reaches_its_endpoint_once_per_key_in_order_through_outages(scene: Scene) -> None:
    users, stub = scene.users, scene.stub

    # Three work orders while the hotline answers 500: their receipts are retried ...
    work_orders = []
    for n in range(CASES):
        body = {
            "category_code": STREET_VENDING,
            "description": "a stall on the pavement",
            "location": users.fresh_spot(),
            "external_ref": f"WO-{n}",
        }
        work_orders.append(await users.post("hotline", "/intake/hotline/work-orders", body, expect=201))
    case_ids = [order["id"] for order in work_orders]

    def failed_twice() -> bool:
        failures: defaultdict[str, int] = defaultdict(int)
        for request in stub.received():
            if request["answer"] == 500 and request["path"] == "/hotline":
                failures[request["headers"]["idempotency-key"]] += 1
        return len(failures) == CASES and min(failures.values()) >= 2

    await scene.until("each receipt failed twice", failed_twice)
    # ... and the city dies in the middle of it, and comes back: nothing is lost.
    await scene.city.kill()
    await stub.answer("hotline", "ok")
    await scene.city.start()
    await scene.until("the receipts delivered", lambda: len(delivered(stub, "/hotline")) == CASES)

    # The hotline goes away (connections refused) while the work orders are verified and filed ...
    await stub.stop()
    for case_id in case_ids:
        await users.post("inspector1", f"/intake/reports/{case_id}/verification", {"confirmed": True})
    for case_id in case_ids:
        await users.case_status(case_id, "dispatched")

    async def refused_and_retried() -> bool:
        pending = await scene.deliveries("pending", HOTLINE_ENDPOINT)
        refused = [d for d in pending if d["attempts"] >= 2 and "ConnectError" in (d["last_error"] or "")]
        return {d["case_id"] for d in refused} == set(case_ids)

    await scene.until("the statuses retried against a hotline that is down", refused_and_retried)
    # ... comes back hanging past the timeout, then answers again.
    await stub.start(hotline="hang", department="fail")

    async def timed_out() -> bool:
        pending = await scene.deliveries("pending", HOTLINE_ENDPOINT)
        return any((d["last_error"] or "").startswith("no answer within 1 s") for d in pending)

    await scene.until("a status timed out", timed_out)
    await stub.answer("hotline", "ok")
    await scene.until("the statuses delivered", lambda: len(delivered(stub, "/hotline")) == 3 * CASES)

    # The department's system failed every attempt: its first message of each case is dead, with
    # the reason, and the rest of the case waits behind it.
    async def dispatches_dead() -> bool:
        return len(await scene.deliveries("dead", DEPARTMENT_ENDPOINT)) == CASES

    await scene.until("the department's dispatches dead", dispatches_dead)
    for case_id in case_ids:
        await close(users, case_id)
    await scene.until("the replies delivered", lambda: len(delivered(stub, "/hotline")) == 4 * CASES)
    dead = await scene.deliveries("dead", DEPARTMENT_ENDPOINT)
    assert {d["case_id"] for d in dead} == set(case_ids)
    assert all(d["attempts"] == 3 and "(attempt 3 of 3" in d["dead_reason"] for d in dead)

    async def the_rest_waiting() -> bool:
        return len(await scene.deliveries("pending", DEPARTMENT_ENDPOINT)) == 3 * CASES

    await scene.until("the department's later messages waiting", the_rest_waiting)
    assert {d["attempts"] for d in await scene.deliveries("pending", DEPARTMENT_ENDPOINT)} == {0}

    # Redriven once the department's system answers again: one case by the CLI, the rest by the
    # shift lead's route.
    await stub.answer("department", "ok")
    output = await scene.city.cli("deliveries", "redrive", "--case", case_ids[0])
    assert output.startswith("1 dead message(s) sent again")
    redriven = await users.post("shiftlead", "/intake/deliveries/redrive", {"endpoint": DEPARTMENT_ENDPOINT})
    assert {d["case_id"] for d in redriven} == set(case_ids[1:])

    async def nothing_left() -> bool:
        # The stub records a request before it answers: the city's record of it comes after.
        left = [await scene.deliveries(state, endpoint) for state in ("pending", "dead") for endpoint in ENDPOINTS]
        return not any(left)

    await scene.until("everything delivered", nothing_left)
    assert len(delivered(stub, "/department")) == 4 * CASES
    assert len(delivered(stub, "/hotline")) == 4 * CASES

    received = stub.received()
    assert all(request["signature_error"] is None for request in received)
    assert_one_message_per_key(received)
    for case_id in case_ids:
        assert heard(stub, "/hotline", case_id) == HOTLINE_HEARS
        assert heard(stub, "/department", case_id) == [(change, None) for change in DEPARTMENT_HEARS]
    assert any(request["answer"] == "hang" for request in received)

    # Counted per endpoint and reason since the city came back.
    metrics = (await users.client.get("/metrics")).text
    for reason in ("connection", "timeout"):
        assert counted(metrics, "citycase_delivery_failures_total", endpoint=HOTLINE_ENDPOINT, reason=reason) > 0
    failed = sum(
        counted(metrics, "citycase_delivery_failures_total", endpoint=DEPARTMENT_ENDPOINT, reason=reason)
        for reason in ("connection", "status_5xx")
    )
    assert failed == 3 * CASES
    attempts = counted(metrics, "citycase_delivery_attempts_total", endpoint=DEPARTMENT_ENDPOINT)
    assert attempts >= 3 * CASES + 4 * CASES


async def close(users: Harness, case_id: str) -> None:
    """The street office signs for the case, handles it (with a photo), and the inspector's check
    closes it."""
    await users.eventually(STREET_USER, "/handling/inbox", lambda b: any(t["id"] == case_id for t in b))
    await users.post(STREET_USER, f"/handling/cases/{case_id}/accept")
    await users.call(
        STREET_USER,
        "POST",
        f"/handling/cases/{case_id}/report",
        data={"result": "the stall moved on"},
        files=[("photos", ("after.png", PNG, "image/png"))],
    )
    await users.eventually("inspector1", "/closure/checks", lambda b: any(c["id"] == case_id for c in b))
    await users.post("inspector1", f"/closure/cases/{case_id}/check", {"passed": True, "note": "gone"})
    await users.case_status(case_id, "closed")


def counted(metrics: str, name: str, **labels: str) -> float:
    """A sample's value in a Prometheus text exposition (0 when absent)."""
    wanted = "{" + ",".join(f'{label}="{value}"' for label, value in sorted(labels.items())) + "}"
    for line in metrics.splitlines():
        if line.startswith(name + wanted + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def delivered(stub: HotlineStub, path: str) -> set[str]:
    """The idempotency keys ``path`` answered 200."""
    return {r["headers"]["idempotency-key"] for r in stub.received() if r["path"] == path and r["answer"] == 200}


def heard(stub: HotlineStub, path: str, case_id: str) -> list[tuple[str, str | None]]:
    """What ``path`` took in (answered 200) of a case, each message once, in the order first taken."""
    seen: list[str] = []
    said: list[tuple[str, str | None]] = []
    for request in stub.received():
        body = json.loads(request["body"])
        key = request["headers"]["idempotency-key"]
        if request["path"] != path or request["answer"] != 200 or body["data"]["case_id"] != case_id or key in seen:
            continue
        seen.append(key)
        data = body["data"]
        if "change" in data:
            said.append((data["change"], None))
        else:
            said.append((body["type"], data.get("decision") or data.get("status")))
    return said


def assert_one_message_per_key(received: list[dict[str, Any]]) -> None:
    """A key always comes with the same body to the same path, as its ``webhook-id`` and its body's
    ``id``; and no two keys carry the same message (which would be a message delivered twice)."""
    by_key: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for request in received:
        key = request["headers"]["idempotency-key"]
        assert request["headers"]["webhook-id"] == key
        assert json.loads(request["body"])["id"] == key
        by_key[key].add((request["path"], request["body"]))
    assert all(len(sent) == 1 for sent in by_key.values())
    contents = [_content(body) for sent in by_key.values() for _, body in sent]
    assert len(contents) == len(set(contents))


def _content(body: str) -> str:
    """A message without its id and time: what it says."""
    message = json.loads(body)
    return json.dumps({"type": message["type"], "data": message["data"]}, sort_keys=True)
