"""What a hotline sends intake signed, over HTTP on the embedded store: work orders and callbacks
(回访), each refusal leaving nothing behind, resends and retries answered as the first time, the
citizen's contact kept out of every answer, event and export.

The hotline's routes are served behind the process's request guard (the body limit, and no token
asked of a route that names no caller); what they left is read back through the staff's API.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
import pytest
from fastapi import FastAPI

from intake.handlers import forget_contacts, verify_report
from intake.models import callbacks, cases, hotline_nonces, report_contacts, reports
from services.runtime.registry import load_specs
from shared.core.auth import Role, TokenIssuer
from shared.events.catalogue import (
    CallbackRecorded,
    CallbackVerdict,
    CaseClosed,
    CaseReopened,
    ReportReceived,
    VerificationRequested,
)
from shared.integration.endpoints import Hotline, Integrations
from shared.integration.signing import Algorithm, Scheme, Secret, Signer, Verifier, sign
from shared.web.errors import install_error_handlers
from shared.web.guard import RequestGuard, routes_needing_a_caller
from tests.service.conftest import ServiceUnderTest, point_in, principal
from tests.service.http import BASE_URL, served
from tests.service.intake.conftest import CELL, URGENT, inspector

OLD = Secret("2026a", "whsec_" + base64.b64encode(bytes(range(32))).decode())
NEW = Secret("2026b", "whsec_" + base64.b64encode(bytes(range(32, 64))).decode())
RETIRED = Secret("2025", "whsec_" + base64.b64encode(bytes(range(64, 96))).decode())
APP_SECRET = Secret("k1", "an-app-secret-of-12319")
PHONE = "13800138000"
SHIFT_LEAD = principal(Role.SHIFT_LEAD, "shiftlead")

INTEGRATIONS = Integrations(
    (
        Hotline(
            "12345",
            "12345热线",
            Verifier(Scheme.STANDARD_WEBHOOKS, (OLD, NEW)),
            reopen_on_unsatisfied=True,
            account="hotline",
        ),
        Hotline(
            "12319",
            "12319热线",
            Verifier(Scheme.APP_KEY, (APP_SECRET,), Algorithm.HMAC_SM3, "ak-12319"),
            reopen_on_unsatisfied=False,
        ),
    )
)
SIGNERS = {
    "12345": Signer(Scheme.STANDARD_WEBHOOKS, (OLD,)),
    "12319": Signer(Scheme.APP_KEY, (APP_SECRET,), Algorithm.HMAC_SM3, "ak-12319"),
}


@pytest.fixture
def hotlines(intake: ServiceUnderTest) -> ServiceUnderTest:
    """Intake in a city whose integrations.yaml has the hotlines 12345 (Standard Webhooks, two
    secrets) and 12319 (app-key, HMAC-SM3)."""
    ctx = replace(intake.ctx, integrations=INTEGRATIONS)
    (spec,) = load_specs(["intake"])
    return ServiceUnderTest(ctx, intake.clock, spec.consumers(ctx))


@asynccontextmanager
async def guarded(sut: ServiceUnderTest) -> AsyncIterator[httpx.AsyncClient]:
    """A client of intake's routes behind the request guard, as the process serves them, with no token."""
    (spec,) = load_specs(["intake"])
    service = FastAPI()
    service.state.context = sut.ctx
    install_error_handlers(service)
    service.include_router(spec.router)
    app = FastAPI()
    app.mount("/intake", service)
    app.add_middleware(
        RequestGuard,
        tokens=TokenIssuer("a-secret-no-request-here-carries-a-token", sut.clock),
        guarded=routes_needing_a_caller(app),
        limit_for=sut.ctx.settings.body_limit,
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL) as client:
        yield client


@pytest.fixture
async def hotline(hotlines: ServiceUnderTest) -> AsyncIterator[httpx.AsyncClient]:
    async with guarded(hotlines) as client:
        yield client


@pytest.fixture
async def staff(hotlines: ServiceUnderTest) -> AsyncIterator[httpx.AsyncClient]:
    async with served(hotlines, SHIFT_LEAD) as client:
        yield client


def work_order(sut: ServiceUnderTest, number: str = "GD-20261102-001", **changes: Any) -> dict[str, Any]:
    lon, lat = point_in(sut.ctx.city, CELL)
    order = {
        "category_code": URGENT,
        "description": "井盖缺失，有人差点掉下去",
        "location": {"lon": lon, "lat": lat},
        "external_ref": number,
        "contact": {"name": "王女士", "phone": PHONE},
    }
    return {**order, **changes}


async def post(
    client: httpx.AsyncClient,
    sut: ServiceUnderTest,
    path: str,
    body: dict[str, Any] | bytes,
    *,
    hotline_id: str = "12345",
    message_id: str = "msg_0001_work_order",
    signer: Signer | None = None,
    at: datetime | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """``body`` POSTed to ``/intake/hotline/<hotline_id>/<path>``, signed as that hotline signs."""
    raw = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
    signed = sign(signer or SIGNERS.get(hotline_id, SIGNERS["12345"]), message_id, at or sut.clock.now(), raw)
    sent = {"content-type": "application/json", **signed, **(headers or {})}
    return await client.post(f"/intake/hotline/{hotline_id}/{path}", content=raw, headers=sent)


async def nothing_created(sut: ServiceUnderTest, staff: httpx.AsyncClient) -> None:
    """No report in any queue (read through the API), no case, nonce, contact, callback or event."""
    for status in ("verifying", "awaiting_review", "filed", "rejected", "merged"):
        listed = await staff.get("/intake/reports", params={"status": status})
        assert listed.status_code == 200
        assert listed.json() == [], status
    assert (await staff.get("/intake/cases")).json()["items"] == []
    for table in (reports, cases, hotline_nonces, report_contacts, callbacks):
        assert await sut.rows(table) == [], table.name
    assert await sut.outbox() == []


def refusal(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    return body


# --- work orders -------------------------------------------------------------------------------


async def test_a_signed_work_order_goes_to_verification_as_the_hotlines(
    hotlines: ServiceUnderTest, hotline: httpx.AsyncClient, staff: httpx.AsyncClient
) -> None:
    response = await post(hotline, hotlines, "work-orders", work_order(hotlines))
    assert response.status_code == 201, response.text
    report = response.json()
    assert (report["status"], report["source"], report["external_ref"]) == ("verifying", "hotline", "GD-20261102-001")
    row = await hotlines.row(reports, UUID(report["id"]))
    assert (row["reporter_id"], row["client_ref"]) == ("12345", "GD-20261102-001")
    assert [r["id"] for r in (await staff.get("/intake/reports", params={"status": "verifying"})).json()] == [
        report["id"]
    ]
    received, requested = await hotlines.payloads()
    assert isinstance(received, ReportReceived)
    assert (received.reporter_id, received.external_ref) == ("12345", "GD-20261102-001")
    assert isinstance(requested, VerificationRequested)


async def test_a_resend_by_the_work_order_number_is_the_same_report(
    hotlines: ServiceUnderTest, hotline: httpx.AsyncClient
) -> None:
    first = await post(hotline, hotlines, "work-orders", work_order(hotlines), message_id="msg_first_attempt_")
    again = await post(hotline, hotlines, "work-orders", work_order(hotlines), message_id="msg_second_message")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    changed = work_order(hotlines, description="另一件事")
    body = refusal(
        await post(hotline, hotlines, "work-orders", changed, message_id="msg_third_message_"),
        409,
        "idempotency_key_reused",
    )
    assert body["details"] == {"differing_fields": ["description"]}
    assert len(await hotlines.rows(reports)) == 1
    assert len(await hotlines.rows(report_contacts)) == 1


async def test_a_standard_webhooks_retry_is_answered_like_the_first(
    hotlines: ServiceUnderTest, hotline: httpx.AsyncClient
) -> None:
    order = work_order(hotlines)
    first = await post(hotline, hotlines, "work-orders", order, message_id="msg_retried_message")
    events = await hotlines.outbox()
    hotlines.clock.advance(timedelta(minutes=3))  # a retry: the same id and body, a new timestamp
    retry = await post(hotline, hotlines, "work-orders", order, message_id="msg_retried_message")
    assert (first.status_code, retry.status_code) == (201, 200)
    assert retry.json() == first.json()
    assert await hotlines.outbox() == events
    assert len(await hotlines.rows(hotline_nonces)) == 1
    # The same id with another body is no retry: a replay.
    other = work_order(hotlines, "GD-20261102-002")
    body = refusal(
        await post(hotline, hotlines, "work-orders", other, message_id="msg_retried_message"), 409, "replayed_nonce"
    )
    assert "webhook-id" in body["message"]
    assert len(await hotlines.rows(reports)) == 1


async def test_secrets_rotate_without_downtime(hotlines: ServiceUnderTest, hotline: httpx.AsyncClient) -> None:
    for n, secret in enumerate((OLD, NEW)):
        signer = Signer(Scheme.STANDARD_WEBHOOKS, (secret,))
        response = await post(
            hotline,
            hotlines,
            "work-orders",
            work_order(hotlines, f"GD-{n}"),
            message_id=f"msg_rotation_{n:06d}",
            signer=signer,
        )
        assert response.status_code == 201, response.text
    retired = Signer(Scheme.STANDARD_WEBHOOKS, (RETIRED,))
    refusal(
        await post(hotline, hotlines, "work-orders", work_order(hotlines, "GD-9"), signer=retired), 401, "bad_signature"
    )
    assert len(await hotlines.rows(reports)) == 2


async def test_an_app_key_hotline_signs_with_sm3_and_each_nonce_is_used_once(
    hotlines: ServiceUnderTest, hotline: httpx.AsyncClient
) -> None:
    order = work_order(hotlines, "12319-0001")
    raw = json.dumps(order).encode()
    headers = {"content-type": "application/json", **sign(SIGNERS["12319"], "m-1", hotlines.clock.now(), raw)}
    first = await hotline.post("/intake/hotline/12319/work-orders", content=raw, headers=headers)
    assert first.status_code == 201, first.text
    assert (await hotlines.row(reports, UUID(first.json()["id"])))["reporter_id"] == "12319"
    replayed = await hotline.post("/intake/hotline/12319/work-orders", content=raw, headers=headers)
    body = refusal(replayed, 409, "replayed_nonce")
    assert "X-Nonce" in body["message"]
    # The hotline's own resend has a nonce of its own: the work order number answers it.
    resent = await post(hotline, hotlines, "work-orders", order, hotline_id="12319")
    assert (resent.status_code, resent.json()["id"]) == (200, first.json()["id"])


@pytest.mark.parametrize(
    ("hotline_id", "change", "status", "code", "says"),
    [
        ("99999", {}, 401, "unknown_hotline", "no hotline"),
        ("12345", {"drop": "webhook-signature"}, 401, "missing_signature_headers", "webhook-signature"),
        ("12345", {"drop": "webhook-id"}, 401, "missing_signature_headers", "webhook-id"),
        ("12345", {"webhook-signature": "v1,AAAA"}, 401, "bad_signature", "webhook-signature"),
        ("12345", {"age": timedelta(minutes=6)}, 401, "stale_timestamp", "webhook-timestamp"),
        ("12345", {"age": -timedelta(minutes=6)}, 401, "stale_timestamp", "webhook-timestamp"),
        ("12345", {"tamper": True}, 401, "bad_signature", "webhook-signature"),
        ("12319", {"x-app-key": "ak-another"}, 401, "bad_signature", "app key"),
        ("12319", {"drop": "x-nonce"}, 401, "missing_signature_headers", "x-nonce"),
        ("12345", {"content-type": "text/plain"}, 415, "http_415", "JSON"),
    ],
)
async def test_every_refusal_says_why_and_creates_nothing(
    hotlines: ServiceUnderTest,
    hotline: httpx.AsyncClient,
    staff: httpx.AsyncClient,
    hotline_id: str,
    change: dict[str, Any],
    status: int,
    code: str,
    says: str,
) -> None:
    raw = json.dumps(work_order(hotlines)).encode()
    at = hotlines.clock.now() - change.pop("age", timedelta(0))
    headers = {
        "content-type": "application/json",
        **sign(SIGNERS.get(hotline_id, SIGNERS["12345"]), "msg_refused_one", at, raw),
    }
    headers.pop(change.pop("drop", ""), None)
    if change.pop("tamper", False):
        raw = raw.replace(b"GD-20261102-001", b"GD-20261102-666")
    headers.update(change)
    response = await hotline.post(f"/intake/hotline/{hotline_id}/work-orders", content=raw, headers=headers)
    body = refusal(response, status, code)
    assert says in body["message"]
    for secret in (OLD.value, NEW.value, APP_SECRET.value):
        assert secret not in response.text
    await nothing_created(hotlines, staff)


@pytest.mark.parametrize(
    ("body", "where"),
    [
        (b"{not json", ["body"]),
        (b"[]", ["body"]),
        (json.dumps({"external_ref": "GD-1"}).encode(), ["body", "category_code"]),
        (json.dumps({"contact": {"phone": "call me maybe"}}).encode(), ["body", "contact", "phone"]),
    ],
)
async def test_a_malformed_body_signed_properly_is_a_422_and_creates_nothing(
    hotlines: ServiceUnderTest, hotline: httpx.AsyncClient, staff: httpx.AsyncClient, body: bytes, where: list[Any]
) -> None:
    if b"contact" in body:
        body = json.dumps(work_order(hotlines, contact={"phone": "call me maybe"})).encode()
    answer = refusal(await post(hotline, hotlines, "work-orders", body), 422, "invalid_request")
    assert where in [error["loc"] for error in answer["details"]]
    await nothing_created(hotlines, staff)


async def test_a_work_order_outside_the_city_is_refused_and_its_nonce_not_taken(
    hotlines: ServiceUnderTest, hotline: httpx.AsyncClient, staff: httpx.AsyncClient
) -> None:
    outside = work_order(hotlines, location={"lon": 0.0, "lat": 0.0})
    refusal(await post(hotline, hotlines, "work-orders", outside), 422, "invalid_input")
    await nothing_created(hotlines, staff)
    # The hotline corrects it and sends it again under the same id: a new request, taken.
    fixed = await post(hotline, hotlines, "work-orders", work_order(hotlines))
    assert fixed.status_code == 201


async def test_a_body_over_the_limit_is_a_413_and_creates_nothing(
    hotlines: ServiceUnderTest, hotline: httpx.AsyncClient, staff: httpx.AsyncClient
) -> None:
    huge = work_order(hotlines, description="井" * hotlines.ctx.settings.max_body_bytes)
    refusal(await post(hotline, hotlines, "work-orders", huge), 413, "request_too_large")
    await nothing_created(hotlines, staff)


async def test_a_content_type_sent_twice_is_refused_before_the_body_is_read(
    hotlines: ServiceUnderTest, hotline: httpx.AsyncClient, staff: httpx.AsyncClient
) -> None:
    # JSON first (what the route checks), multipart last (the larger limit): read two ways, a
    # stranger's body far over the JSON limit would be read in full before any signature check.
    raw = json.dumps(work_order(hotlines, description="井" * hotlines.ctx.settings.max_body_bytes)).encode()
    signed = sign(SIGNERS["12345"], "msg_0002_twice", hotlines.clock.now(), raw)
    headers = [
        ("content-type", "application/json"),
        ("content-type", "multipart/form-data; boundary=x"),
        *signed.items(),
    ]
    response = await hotline.post("/intake/hotline/12345/work-orders", content=raw, headers=headers)
    refusal(response, 400, "header_repeated")
    await nothing_created(hotlines, staff)


async def test_the_signed_routes_ask_for_no_token_and_the_bearer_route_still_does(hotlines: ServiceUnderTest) -> None:
    (spec,) = load_specs(["intake"])
    service = FastAPI()
    service.include_router(spec.router)
    app = FastAPI()
    app.mount("/intake", service)
    guarded_routes = routes_needing_a_caller(app)

    def needs_a_caller(path: str) -> bool:
        return any(method == "POST" and pattern.match(path) for method, pattern in guarded_routes)

    assert needs_a_caller("/intake/hotline/work-orders")
    assert not needs_a_caller("/intake/hotline/12345/work-orders")
    assert not needs_a_caller("/intake/hotline/12345/callbacks")


async def test_the_citizens_contact_is_kept_apart_and_shown_nowhere(
    hotlines: ServiceUnderTest, hotline: httpx.AsyncClient, staff: httpx.AsyncClient
) -> None:
    created = await post(hotline, hotlines, "work-orders", work_order(hotlines))
    report_id = UUID(created.json()["id"])
    (contact,) = await hotlines.rows(report_contacts)
    assert (contact["report_id"], contact["name"], contact["phone"]) == (report_id, "王女士", PHONE)
    await filed_and_closed(hotlines, report_id)
    said = [
        created.text,
        (await post(hotline, hotlines, "work-orders", work_order(hotlines), message_id="msg_resent_order_")).text,
        (await staff.get(f"/intake/reports/{report_id}")).text,
        (await staff.get(f"/intake/cases/{report_id}")).text,
        (await staff.get(f"/intake/cases/{report_id}/timeline")).text,
        (await staff.get("/intake/cases")).text,
        (await staff.get("/intake/reports", params={"status": "filed"})).text,
        (await staff.get("/intake/export/reports")).text,
        *(json.dumps(event.data.model_dump(mode="json"), ensure_ascii=False) for event in await hotlines.outbox()),
        *(json.dumps([str(v) for v in row.values()], ensure_ascii=False) for row in await hotlines.rows(reports)),
    ]
    assert any("井盖缺失" in text for text in said)  # the texts are the real ones
    assert [text for text in said if PHONE in text or "王女士" in text] == []


async def test_a_contact_is_forgotten_once_its_retention_has_passed(
    hotlines: ServiceUnderTest, hotline: httpx.AsyncClient, staff: httpx.AsyncClient
) -> None:
    created = await post(hotline, hotlines, "work-orders", work_order(hotlines))
    kept = timedelta(days=hotlines.ctx.settings.contact_retention_days)
    hotlines.clock.advance(kept - timedelta(minutes=1))
    assert await forget_contacts(hotlines.ctx) == 0
    assert len(await hotlines.rows(report_contacts)) == 1
    hotlines.clock.advance(timedelta(minutes=2))
    assert await forget_contacts(hotlines.ctx) == 1
    assert await hotlines.rows(report_contacts) == []
    # The work order itself stays.
    assert (await staff.get(f"/intake/reports/{created.json()['id']}")).status_code == 200


async def test_a_bearer_account_the_city_names_reports_as_its_hotline(
    hotlines: ServiceUnderTest, staff: httpx.AsyncClient
) -> None:
    as_account = principal(Role.HOTLINE, "hotline")
    order = {key: value for key, value in work_order(hotlines).items() if key != "contact"}
    async with served(hotlines, as_account) as account:
        created = await account.post("/intake/hotline/work-orders", json=order)
        assert created.status_code == 201, created.text
        report_id = created.json()["id"]
        assert (await hotlines.row(reports, UUID(report_id)))["reporter_id"] == "12345"
        assert (await account.get(f"/intake/reports/{report_id}")).status_code == 200
    async with served(hotlines, principal(Role.HOTLINE, "hotline-12319")) as another:
        assert (await another.get(f"/intake/reports/{report_id}")).status_code == 404


# --- callbacks (回访) ----------------------------------------------------------------------------


async def filed_and_closed(sut: ServiceUnderTest, report_id: UUID) -> None:
    """The inspector confirms the work order, and the case file hears that its case closed."""
    await verify_report(sut.ctx, inspector("insp-001"), report_id, confirmed=True, note=None, photos=[])
    await sut.deliver(CaseClosed(closed_by="shiftlead", on_time=True), report_id, source="closure")


async def a_closed_case(sut: ServiceUnderTest, client: httpx.AsyncClient) -> UUID:
    created = await post(client, sut, "work-orders", work_order(sut), message_id="msg_the_work_order")
    report_id = UUID(created.json()["id"])
    await filed_and_closed(sut, report_id)
    await sut.emitted()
    return report_id


CALLBACK = {"work_order": "GD-20261102-001", "verdict": "unsatisfied", "note": "井盖还是松的"}


async def test_a_callback_on_a_closed_case_is_recorded_and_told(
    hotlines: ServiceUnderTest, hotline: httpx.AsyncClient, staff: httpx.AsyncClient
) -> None:
    case_id = await a_closed_case(hotlines, hotline)
    response = await post(hotline, hotlines, "callbacks", CALLBACK, message_id="msg_the_callback_")
    assert response.status_code == 201, response.text
    recorded = response.json()
    assert (recorded["case_id"], recorded["hotline_id"], recorded["verdict"]) == (str(case_id), "12345", "unsatisfied")
    (event,) = await hotlines.emitted()
    assert (event.type, event.subject) == ("case.callback_recorded", str(case_id))
    assert event.data == CallbackRecorded(
        hotline_id="12345", work_order="GD-20261102-001", verdict=CallbackVerdict.UNSATISFIED, note="井盖还是松的"
    )
    # The case file shows it, the hotline as who acted and the note as why.
    await hotlines.deliver_events([event])
    step = (await staff.get(f"/intake/cases/{case_id}/timeline")).json()[-1]
    assert (step["event_type"], step["actor"], step["reason"]) == ("case.callback_recorded", "12345", "井盖还是松的")
    lines = [json.loads(line) for line in (await staff.get("/intake/export/reports")).text.splitlines()]
    assert [(line["callback_verdict"], line["callback_at"]) for line in lines] == [
        ("unsatisfied", hotlines.clock.now().isoformat().replace("+00:00", "Z"))
    ]


async def test_the_export_carries_the_latest_verdict_and_none_without_one(
    hotlines: ServiceUnderTest, hotline: httpx.AsyncClient, staff: httpx.AsyncClient
) -> None:
    case_id = await a_closed_case(hotlines, hotline)
    await post(hotline, hotlines, "work-orders", work_order(hotlines, "GD-2", location={"lon": 0.0, "lat": 0.0}))
    first = await post(hotline, hotlines, "callbacks", CALLBACK, message_id="msg_first_callback")
    hotlines.clock.advance(timedelta(hours=1))
    satisfied = {**CALLBACK, "verdict": "basically_satisfied"}
    second = await post(hotline, hotlines, "callbacks", satisfied, message_id="msg_second_callback")
    assert (first.status_code, second.status_code) == (201, 201)
    lines = [json.loads(line) for line in (await staff.get("/intake/export/reports")).text.splitlines()]
    assert [(line["id"], line["callback_verdict"]) for line in lines] == [(str(case_id), "basically_satisfied")]


async def test_a_callback_retried_or_resent_under_its_id_is_recorded_once(
    hotlines: ServiceUnderTest, hotline: httpx.AsyncClient
) -> None:
    await a_closed_case(hotlines, hotline)
    first = await post(hotline, hotlines, "callbacks", CALLBACK, message_id="msg_the_callback_")
    hotlines.clock.advance(timedelta(minutes=2))
    retry = await post(hotline, hotlines, "callbacks", CALLBACK, message_id="msg_the_callback_")
    # Hours later the nonce is long pruned; the callback still knows its id.
    hotlines.clock.advance(timedelta(hours=5))
    late = await post(hotline, hotlines, "callbacks", CALLBACK, message_id="msg_the_callback_")
    assert [r.status_code for r in (first, retry, late)] == [201, 200, 200]
    assert first.json() == retry.json() == late.json()
    assert len(await hotlines.rows(callbacks)) == 1
    assert [event.type for event in await hotlines.emitted()] == ["case.callback_recorded"]
    assert len(await hotlines.rows(hotline_nonces)) == 1  # the late one's; the first two pruned
    changed = {**CALLBACK, "verdict": "satisfied"}
    refusal(await post(hotline, hotlines, "callbacks", changed, message_id="msg_the_callback_"), 409, "replayed_nonce")


async def test_a_callback_resent_under_a_new_nonce_is_one_callback_by_its_callback_id(
    hotlines: ServiceUnderTest, hotline: httpx.AsyncClient
) -> None:
    # An app-key sender must sign each attempt with a new nonce: its retry after a lost answer is
    # known by the hotline's own number for the callback, not by the nonce.
    await a_closed_case(hotlines, hotline)
    numbered = {**CALLBACK, "callback_id": "HF-20261102-7"}
    first = await post(hotline, hotlines, "callbacks", numbered, message_id="msg_first_attempt")
    again = await post(hotline, hotlines, "callbacks", numbered, message_id="msg_second_attempt")
    assert [r.status_code for r in (first, again)] == [201, 200]
    assert first.json() == again.json()
    assert first.json()["callback_id"] == "HF-20261102-7"
    assert len(await hotlines.rows(callbacks)) == 1
    assert [event.type for event in await hotlines.emitted()] == ["case.callback_recorded"]
    other = {**numbered, "verdict": "satisfied"}
    refusal(await post(hotline, hotlines, "callbacks", other, message_id="msg_third_attempt"), 409, "replayed_nonce")
    assert len(await hotlines.rows(callbacks)) == 1


async def test_a_callback_for_a_work_order_not_the_hotlines_is_a_404(
    hotlines: ServiceUnderTest, hotline: httpx.AsyncClient
) -> None:
    await a_closed_case(hotlines, hotline)
    unknown = {**CALLBACK, "work_order": "GD-nobody-sent"}
    assert "no work order" in refusal(await post(hotline, hotlines, "callbacks", unknown), 404, "not_found")["message"]
    # 12319 did not send GD-20261102-001: 12345 did.
    refusal(await post(hotline, hotlines, "callbacks", CALLBACK, hotline_id="12319"), 404, "not_found")
    assert await hotlines.rows(callbacks) == []
    assert await hotlines.emitted() == []


async def test_a_callback_for_a_case_not_closed_is_a_409_and_leaves_nothing(
    hotlines: ServiceUnderTest, hotline: httpx.AsyncClient
) -> None:
    created = await post(hotline, hotlines, "work-orders", work_order(hotlines), message_id="msg_the_work_order")
    report_id = UUID(created.json()["id"])
    await hotlines.emitted()
    body = refusal(
        await post(hotline, hotlines, "callbacks", CALLBACK, message_id="msg_too_early_one"), 409, "illegal_transition"
    )
    assert "never filed" in body["message"]
    await verify_report(hotlines.ctx, inspector("insp-001"), report_id, confirmed=True, note=None, photos=[])
    await hotlines.emitted()
    body = refusal(
        await post(hotline, hotlines, "callbacks", CALLBACK, message_id="msg_too_early_two"), 409, "illegal_transition"
    )
    assert body["details"] == {"action": "record a callback for", "current_state": "filed"}
    assert await hotlines.rows(callbacks) == []
    assert [row["nonce"] for row in await hotlines.rows(hotline_nonces)] == ["msg_the_work_order"]
    assert await hotlines.emitted() == []


async def test_a_reopened_case_is_no_longer_closed_in_the_case_file(
    hotlines: ServiceUnderTest, hotline: httpx.AsyncClient, staff: httpx.AsyncClient
) -> None:
    case_id = await a_closed_case(hotlines, hotline)
    await hotlines.deliver(CaseReopened(department_id=None, reason="回访不满意"), case_id, source="closure")
    case = (await staff.get(f"/intake/cases/{case_id}")).json()
    assert (case["status"], case["closed_at"], case["on_time"]) == ("rework", None, None)
    refusal(await post(hotline, hotlines, "callbacks", CALLBACK), 409, "illegal_transition")
