"""The hotline loop of issue 13, end to end on both backends: a signed work order in, the receipt,
the status and the reply out to the hotline, an unsatisfied callback in, the case reworked and
closed again, the second reply out; the satisfaction rate (满意率) in the assessment API, and
``python -m services reconcile`` at 0 differences.

The city is a process of its own on the system clock; the other side is the hotline stub
(``tests.support.hotline_stub``), a process of its own too, always answering 200 and recording
every request. Two hotlines sign their own way, each configured in the test's ``integrations.yaml``:
12345 with Standard Webhooks (which the stub verifies), 12319 with app-key and HMAC-SM3 both ways
(checked here with the standard library). The street office has a system of its own on the stub
as well. What the hotlines sign here is signed with the standard library too, as a hotline would,
sharing no code with the city that verifies it.

The citizens' contacts go in with the work orders and must come out nowhere: no message, export,
view, timeline or log line.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
import yaml
from sqlalchemy import select

from intake.models import report_contacts
from shared.db.engine import create_engine
from tests.e2e.harness import PNG, Harness
from tests.e2e.test_exports import export_lines
from tests.e2e.test_hotline_delivery import (
    DEPARTMENT_ENDPOINT,
    DEPARTMENT_HEARS,
    HOTLINE_HEARS,
    PUBLIC_URL,
    Scene,
    city_and_stub,
    close,
    heard,
)
from tests.e2e.test_lifecycle import STREET_OFFICE, STREET_USER, STREET_VENDING
from tests.e2e.test_satisfaction import checked_and_closed
from tests.support.integrations import (
    FAST_RETRY,
    HOTLINE_ENDPOINT,
    HOTLINE_ID,
    INBOUND_SECRET,
    integrations_yaml,
)
from tests.support.processes import HotlineStub

# The second hotline: app-key with HMAC-SM3, what it pushes us and what we send it alike.
SM3_HOTLINE = "12319"
SM3_ENDPOINT = f"hotline:{SM3_HOTLINE}"
SM3_APP_KEY_IN, SM3_SECRET_IN = "hotline-12319", "inbound-sm3-secret-of-12319"
SM3_APP_KEY_OUT, SM3_SECRET_OUT = "citycase", "outbound-sm3-secret-to-12319"
PATHS = {HOTLINE_ID: "/hotline", SM3_HOTLINE: "/hotline-12319"}
# The stub always answers at once: a generous timeout keeps a slow machine from making a retry,
# so every message is sent exactly once.
RETRY = {**FAST_RETRY, "timeout_seconds": 10.0}
TOLERANCE_S = 300
CONTACTS = ({"name": "王小明", "phone": "13912345678"}, {"name": "李红", "phone": "13800138000"})
FIRST_RESULT, SECOND_RESULT = "the stall moved on", "cleared"  # close()'s, then checked_and_closed()'s
UNSATISFIED = "the vendor is back every evening"
PHOTO_LINK = f"{PUBLIC_URL}/handling/photos/{hashlib.sha256(PNG).hexdigest()}"
# What the hotline and the street office's system hear of a case closed, reopened and closed again.
REOPENED_HEARS = [*HOTLINE_HEARS, ("status", "reopened"), ("reply", None)]
REOPENED_DEPARTMENT_HEARS = [*DEPARTMENT_HEARS, "reopened", "handled", "closed"]
EXPORTS = (
    "/intake/export/reports",
    "/dispatch/export/cases",
    "/handling/export/cases",
    "/closure/export/cases",
    "/assessment/export/counters",
)


def loop_integrations(stub: HotlineStub) -> str:
    """Hotline 12345 and the street office as the delivery test has them, and hotline 12319."""
    department = {STREET_OFFICE: {"url": stub.url("/department")}}
    document = yaml.safe_load(integrations_yaml(stub.url(PATHS[HOTLINE_ID]), department, RETRY))
    app_key = {"scheme": "app-key", "algorithm": "hmac-sm3"}
    document["hotlines"].append(
        {
            "id": SM3_HOTLINE,
            "name": "12319城建服务热线",
            "reopen_on_unsatisfied": True,
            "inbound": {**app_key, "app_key": SM3_APP_KEY_IN, "secrets": [{"id": "in", "value": SM3_SECRET_IN}]},
            "outbound": {
                **app_key,
                "url": stub.url(PATHS[SM3_HOTLINE]),
                "app_key": SM3_APP_KEY_OUT,
                "secrets": [{"id": "out", "value": SM3_SECRET_OUT}],
            },
        }
    )
    return yaml.safe_dump(document, allow_unicode=True, sort_keys=False)


@pytest.fixture(params=["embedded", "postgres-kafka"])
async def scene(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Scene]:
    async with city_and_stub(request.param, tmp_path, loop_integrations) as scene:
        yield scene


# --- the hotlines' side: signing and checking with the standard library --------------------------


def sm3_sign(app_key: str, secret: str, timestamp: str, nonce: str, body: bytes) -> str:
    """``X-Sign``: lowercase hex HMAC-SM3 of ``"{appKey}\\n{timestamp}\\n{nonce}\\n{body}"``."""
    return hmac.new(secret.encode(), f"{app_key}\n{timestamp}\n{nonce}\n".encode() + body, "sm3").hexdigest()


def signed(hotline_id: str, body: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    """``body`` as the hotline sends it, and the headers that sign it its way."""
    content = json.dumps(body, ensure_ascii=False).encode()
    if hotline_id == SM3_HOTLINE:
        timestamp, nonce = str(int(time.time() * 1000)), uuid4().hex
        sign = sm3_sign(SM3_APP_KEY_IN, SM3_SECRET_IN, timestamp, nonce, content)
        headers = {"X-App-Key": SM3_APP_KEY_IN, "X-Timestamp": timestamp, "X-Nonce": nonce, "X-Sign": sign}
    else:
        message_id, timestamp = f"msg_{uuid4().hex}", str(int(time.time()))
        key = base64.b64decode(INBOUND_SECRET.removeprefix("whsec_"))
        digest = hmac.new(key, f"{message_id}.{timestamp}.".encode() + content, "sha256").digest()
        signature = "v1," + base64.b64encode(digest).decode()
        headers = {"webhook-id": message_id, "webhook-timestamp": timestamp, "webhook-signature": signature}
    return content, {**headers, "content-type": "application/json"}


async def push(
    users: Harness, hotline_id: str, what: str, request: tuple[bytes, dict[str, str]], expect: int = 201
) -> dict[str, Any]:
    """The hotline posts a signed request to its route ``what`` (work-orders, callbacks)."""
    content, headers = request
    response = await users.client.post(f"/intake/hotline/{hotline_id}/{what}", content=content, headers=headers)
    assert response.status_code == expect, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def work_order(users: Harness, hotline_id: str, number: str, contact: dict[str, str]) -> str:
    """A street vending complaint with the citizen's contact, signed by the hotline; its case id."""
    body = {
        "category_code": STREET_VENDING,
        "description": "a vendor blocks the pavement",
        "location": users.fresh_spot(),
        "external_ref": number,
        "contact": contact,
    }
    report = await push(users, hotline_id, "work-orders", signed(hotline_id, body))
    assert report["source"] == "hotline"
    assert contact["phone"] not in json.dumps(report)
    return str(report["id"])


def sm3_signature_error(request: dict[str, Any]) -> str | None:
    """None when what the city sent 12319 is signed as the hotline expects (its app key, a fresh
    timestamp, an HMAC-SM3 the shared secret reproduces), else why not."""
    headers = request["headers"]
    try:
        app_key, timestamp, nonce, sign = (headers[h] for h in ("x-app-key", "x-timestamp", "x-nonce", "x-sign"))
    except KeyError as missing:
        return f"missing header {missing}"
    if app_key != SM3_APP_KEY_OUT:
        return "not the city's app key"
    if abs(request["at"] - int(timestamp) / 1000) > TOLERANCE_S:
        return "stale timestamp"
    expected = sm3_sign(SM3_APP_KEY_OUT, SM3_SECRET_OUT, timestamp, nonce, request["body"].encode())
    return None if hmac.compare_digest(expected, sign) else "bad signature"


def said(stub: HotlineStub, path: str, case_id: str) -> list[dict[str, Any]]:
    """The ``data`` of each message ``path`` took in of a case, in the order taken (as ``heard``)."""
    seen: set[str] = set()
    data: list[dict[str, Any]] = []
    for request in stub.received():
        body = json.loads(request["body"])
        taken = request["path"] == path and request["answer"] == 200
        if taken and body["data"]["case_id"] == case_id and body["id"] not in seen:
            seen.add(body["id"])
            data.append(body["data"])
    return data


async def satisfaction(users: Harness, scope: str, callbacks: int, satisfied: int) -> dict[str, Any]:
    """The scope's indicators this month, once the stream has counted ``callbacks`` and ``satisfied``."""
    answer: dict[str, Any] = await users.eventually(
        "shiftlead",
        f"/assessment/indicators?{scope}",
        lambda body: (
            (body["counters"].get("callbacks", 0), body["counters"].get("satisfied", 0)) == (callbacks, satisfied)
        ),
    )
    return answer


async def reconciled(scene: Scene, attempts: int = 10) -> str:
    """``python -m services reconcile`` against the city, until the stream has caught up."""
    for _ in range(attempts - 1):
        try:
            return await scene.city.cli("reconcile", "--url", scene.city.url)
        except AssertionError:  # exit status 1: differences (events still in flight), listed
            await asyncio.sleep(1)
    return await scene.city.cli("reconcile", "--url", scene.city.url)


# --- the scenario --------------------------------------------------------------------------------


async def test_a_work_order_goes_round_the_loop_twice_and_satisfaction_is_counted_and_reconciled(
    scene: Scene,
) -> None:
    users, stub = scene.users, scene.stub
    street_office = {"id": STREET_OFFICE, "name": users.city.department(STREET_OFFICE).name}
    hotline = PATHS[HOTLINE_ID]

    # Hotline 12345 pushes a work order, signed, with the citizen's contact: accepted for
    # verification, which is the receipt the hotline hears.
    reworked = await work_order(users, HOTLINE_ID, "WO-12345-1", CONTACTS[0])
    await scene.until("the receipt", lambda: heard(stub, hotline, reworked) == HOTLINE_HEARS[:1])
    receipt = said(stub, hotline, reworked)[0]
    assert (receipt["work_order"], receipt["case_number"]) == ("WO-12345-1", None)

    # Verified by the inspector: filed with its case number, dispatched to the street office.
    await users.post("inspector1", f"/intake/reports/{reworked}/verification", {"confirmed": True})
    case = await users.case_status(reworked, "dispatched")
    assert case["department_id"] == STREET_OFFICE
    await scene.until("filed and dispatched", lambda: heard(stub, hotline, reworked) == HOTLINE_HEARS[:3])
    filed, dispatched = said(stub, hotline, reworked)[1:3]
    assert (filed["status"], filed["case_number"]) == ("filed", case["case_number"])
    assert (dispatched["status"], dispatched["department"]) == ("dispatched", street_office)

    # The street office signs for it, handles it with a photo, the check passes, it is closed:
    # the reply says what was done, by whom, with a link to the photo that works.
    await close(users, reworked)
    await scene.until("the reply", lambda: heard(stub, hotline, reworked) == HOTLINE_HEARS)
    reply = said(stub, hotline, reworked)[3]
    assert (reply["result"], reply["department"], reply["photos"]) == (FIRST_RESULT, street_office, [PHOTO_LINK])
    assert reply["case_number"] == case["case_number"]
    token = await users.login(STREET_USER)
    photo = await users.client.get(PHOTO_LINK.removeprefix(PUBLIC_URL), headers={"Authorization": f"Bearer {token}"})
    assert (photo.status_code, photo.content) == (200, PNG)

    # The citizen is not satisfied: the hotline's signed callback reopens the case, and its retry
    # (the same webhook-id and body) is the same callback, nothing more.
    verdict = signed(HOTLINE_ID, {"work_order": "WO-12345-1", "verdict": "unsatisfied", "note": UNSATISFIED})
    recorded = await push(users, HOTLINE_ID, "callbacks", verdict)
    assert (recorded["case_id"], recorded["verdict"]) == (reworked, "unsatisfied")
    assert (await push(users, HOTLINE_ID, "callbacks", verdict, expect=200))["id"] == recorded["id"]
    await scene.until("reopened", lambda: heard(stub, hotline, reworked) == REOPENED_HEARS[:5])
    assert said(stub, hotline, reworked)[4]["reason"] == UNSATISFIED
    await users.eventually(
        STREET_USER, "/handling/inbox", lambda b: any(t["id"] == reworked and t["status"] == "rework" for t in b)
    )
    await users.case_status(reworked, "rework")
    # One callback, unsatisfied: nobody is satisfied yet, in the city and at the street office.
    for scope in ("scope_kind=city", f"scope_kind=department&scope_id={STREET_OFFICE}"):
        assert (await satisfaction(users, scope, 1, 0))["indicators"]["satisfaction_rate"] == 0.0

    # Handled again, checked, closed again: the second reply says what was done this time.
    await checked_and_closed(users, reworked)
    await scene.until("the second reply", lambda: heard(stub, hotline, reworked) == REOPENED_HEARS)
    second = said(stub, hotline, reworked)[5]
    assert (second["result"], second["department"], second["photos"]) == (SECOND_RESULT, street_office, [PHOTO_LINK])

    # Hotline 12319 (app-key, HMAC-SM3): a work order round the loop once, and a satisfied citizen.
    sm3_path = PATHS[SM3_HOTLINE]
    satisfied = await work_order(users, SM3_HOTLINE, "WO-12319-1", CONTACTS[1])
    await scene.until("the 12319 receipt", lambda: heard(stub, sm3_path, satisfied) == HOTLINE_HEARS[:1])
    await users.post("inspector1", f"/intake/reports/{satisfied}/verification", {"confirmed": True})
    await users.case_status(satisfied, "dispatched")
    await close(users, satisfied)
    await scene.until("the 12319 reply", lambda: heard(stub, sm3_path, satisfied) == HOTLINE_HEARS)
    sm3_reply = said(stub, sm3_path, satisfied)[3]
    assert (sm3_reply["work_order"], sm3_reply["result"], sm3_reply["department"]) == (
        "WO-12319-1",
        FIRST_RESULT,
        street_office,
    )
    await push(
        users, SM3_HOTLINE, "callbacks", signed(SM3_HOTLINE, {"work_order": "WO-12319-1", "verdict": "satisfied"})
    )

    # Two callbacks, one satisfied: 0.5 in the city and at the street office, which closed both.
    city_wide = await satisfaction(users, "scope_kind=city", 2, 1)
    assert city_wide["indicators"]["satisfaction_rate"] == 0.5
    department = await satisfaction(users, f"scope_kind=department&scope_id={STREET_OFFICE}", 2, 1)
    assert department["indicators"]["satisfaction_rate"] == 0.5
    counters = department["counters"]
    assert (counters["closed"], counters["reworked"]) == (2, 1)
    assert (await users.get("shiftlead", f"/closure/cases/{reworked}"))["reopens"] == 1
    report = await reconciled(scene)
    assert " 0 differences" in report.splitlines()[0], report

    # Everything delivered, each message once, signed, and in its case's order to each endpoint.
    async def nothing_left() -> bool:
        endpoints = (HOTLINE_ENDPOINT, SM3_ENDPOINT, DEPARTMENT_ENDPOINT)
        return not any([await scene.deliveries(s, e) for s in ("pending", "dead") for e in endpoints])

    await scene.until("everything delivered", nothing_left)
    received = stub.received()
    assert {r["path"] for r in received} == {hotline, sm3_path, "/department"}
    assert all(r["answer"] == 200 for r in received)
    keys = Counter(r["headers"]["idempotency-key"] for r in received)
    assert set(keys.values()) == {1}, [key for key, count in keys.items() if count > 1]
    assert all(json.loads(r["body"])["id"] == r["headers"]["idempotency-key"] for r in received)
    webhooks = [r for r in received if r["path"] != sm3_path]
    assert [r["signature_error"] for r in webhooks] == [None] * len(webhooks)
    assert all(r["headers"]["webhook-id"] == r["headers"]["idempotency-key"] for r in webhooks)
    sm3 = [r for r in received if r["path"] == sm3_path]
    assert [sm3_signature_error(r) for r in sm3] == [None] * len(sm3)
    assert len({r["headers"]["x-nonce"] for r in sm3}) == len(sm3)
    # Each message once: a message made twice (under two keys) would be heard twice here.
    assert heard(stub, hotline, reworked) == REOPENED_HEARS
    assert heard(stub, sm3_path, satisfied) == HOTLINE_HEARS
    assert heard(stub, hotline, satisfied) == heard(stub, sm3_path, reworked) == []
    assert heard(stub, "/department", reworked) == [(change, None) for change in REOPENED_DEPARTMENT_HEARS]
    assert heard(stub, "/department", satisfied) == [(change, None) for change in DEPARTMENT_HEARS]

    # The contacts were kept, apart, and went nowhere else.
    engine = create_engine(scene.city.settings.database_url("intake"), pool_size=1)
    try:
        async with engine.connect() as connection:
            kept = (await connection.execute(select(report_contacts.c.phone))).scalars().all()
    finally:
        await engine.dispose()
    assert sorted(kept) == sorted(contact["phone"] for contact in CONTACTS)
    seen = [json.dumps(request, ensure_ascii=False) for request in received]
    for path in EXPORTS:
        seen.append(json.dumps(await export_lines(users, path), ensure_ascii=False))
    for case_id in (reworked, satisfied):
        for path in (f"/intake/reports/{case_id}", f"/intake/cases/{case_id}", f"/intake/cases/{case_id}/timeline"):
            seen.append(json.dumps(await users.get("shiftlead", path), ensure_ascii=False))
    seen.append(scene.city.log.read_text(encoding="utf-8", errors="replace"))
    for contact in CONTACTS:
        assert not [text for text in seen if contact["phone"] in text or contact["name"] in text]
