"""What a client can send that must be refused clearly (422/409/403) and change nothing: dates the
calendar cannot serve, numbers passed as dates, control characters in text, a reused idempotency
key with another body; and the reads a system account may not make. Embedded mode: these are the
edges' rules, the same over both backends.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from tests.e2e.harness import PNG, Harness, running_city


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def city(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Harness]:
    path: Path = tmp_path_factory.mktemp("bad-input")
    async with running_city("embedded", path) as harness:
        yield harness


def code_of(body: dict[str, object]) -> object:
    return body.get("code")


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize(
    "query",
    [
        {"scope_kind": "city", "scope_id": "990100", "period": "month", "date": "9999-12-31"},
        {"scope_kind": "city", "scope_id": "990100", "period": "day", "date": "0"},
        {"scope_kind": "city", "scope_id": "990100", "period": "day", "date": "1999-12-31"},
        {"scope_kind": "city", "scope_id": "990100", "period": "range", "from": "2026-01-01", "to": "9999-01-01"},
    ],
)
async def test_dates_the_calendar_cannot_serve_are_refused(city: Harness, query: dict[str, str]) -> None:
    body = await city.get("shiftlead", "/assessment/indicators", expect=422, params=query)
    assert code_of(body) == "invalid_request"
    ranking = {
        "scope_kind": "department",
        "indicator": "closed",
        **{k: v for k, v in query.items() if "scope" not in k},
    }
    await city.get("shiftlead", "/assessment/rankings", expect=422, params=ranking)


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize("month", ["9999-12", "0000-01", "1999-12"])
async def test_bulletins_of_months_outside_the_calendar_are_refused(city: Harness, month: str) -> None:
    body = await city.get("shiftlead", f"/assessment/bulletins/{month}", expect=422)
    assert code_of(body) == "invalid_input"
    await city.get("shiftlead", f"/assessment/bulletins/{month}.xlsx", expect=422)


@pytest.mark.asyncio(loop_scope="module")
async def test_control_characters_in_text_are_refused_and_nothing_is_stored(city: Harness) -> None:
    before = await city.get("shiftlead", "/intake/reports", params={"status": "filed", "limit": 500})
    for text in ("nul\x00byte", "bell\x07", "escape\x1b[31m"):
        body = await city.post(
            "inspector1",
            "/intake/reports",
            {"category_code": "02-05-01", "description": text, "location": city.fresh_spot()},
            expect=422,
        )
        assert code_of(body) == "invalid_request"
    after = await city.get("shiftlead", "/intake/reports", params={"status": "filed", "limit": 500})
    assert after == before
    kept = await city.post(
        "inspector1",
        "/intake/reports",
        {"category_code": "02-05-01", "description": "two lines\nand a\ttab", "location": city.fresh_spot()},
        expect=201,
    )
    assert kept["description"] == "two lines\nand a\ttab"


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize("path", ["/assessment/indicators", "/assessment/live"])
async def test_control_characters_in_a_scope_id_are_refused(city: Harness, path: str) -> None:
    # The id goes into the counters' query: PostgreSQL cannot hold a NUL in text (an error there).
    query = {"scope_kind": "street", "scope_id": "990102001\x00", "count": "1"}
    body = await city.get("shiftlead", path, expect=422, params=query)
    assert body["details"][0]["loc"] == ["query", "scope_id"]


@pytest.mark.asyncio(loop_scope="module")
async def test_a_line_break_in_a_path_is_answered_by_the_app_under_its_prefix(city: Harness) -> None:
    # Open311's clients get Open311's errors (a list), whatever the path holds.
    answer = await city.client.get("/open311/v2/services/02-05-01%0A.json")
    assert answer.status_code == 404
    assert answer.json() == [{"code": 404, "description": "service_code 02-05-01\n not found"}]
    answer = await city.client.get("/open311/v2/services/02-05-01%0A.xml")
    assert answer.status_code == 404
    assert answer.headers["content-type"].startswith("text/xml")
    # And a service's callers its own: intake reads the id (the process alone would know no route).
    body = await city.get("shiftlead", "/intake/reports/a%0Ab", expect=422)
    assert body["details"][0]["loc"] == ["path", "report_id"]


@pytest.mark.asyncio(loop_scope="module")
async def test_an_extension_to_a_year_the_calendar_cannot_serve_is_refused(city: Harness) -> None:
    case = await city.report("02-05-01")
    department = "dept-street"
    await city.eventually(department, f"/handling/cases/{case['id']}", lambda c: c["status"] == "assigned")
    await city.post(department, f"/handling/cases/{case['id']}/accept")
    for deadline in ("9999-12-31T12:00:00+08:00", "2100-01-01T09:00:00+08:00"):
        ask = {"requested_deadline": deadline, "reason": "parts on order"}
        await city.post(department, f"/handling/cases/{case['id']}/extension", ask, expect=422)
    task = await city.get(department, f"/handling/cases/{case['id']}")
    assert task["extension_deadline"] is None


@pytest.mark.asyncio(loop_scope="module")
async def test_a_work_order_number_reused_for_another_complaint_is_a_conflict(city: Harness) -> None:
    order = {
        "category_code": "02-05-01",
        "description": "vendor blocking the pavement",
        "location": city.fresh_spot(),
        "external_ref": "12345-2026-000777",
    }
    first = await city.post("hotline", "/intake/hotline/work-orders", order, expect=201)
    again = await city.post("hotline", "/intake/hotline/work-orders", order, expect=200)
    assert again["id"] == first["id"]
    changed = {**order, "description": "a different complaint"}
    body = await city.post("hotline", "/intake/hotline/work-orders", changed, expect=409)
    assert code_of(body) == "idempotency_key_reused"
    assert (await city.get("hotline", f"/intake/reports/{first['id']}"))["description"] == order["description"]


@pytest.mark.asyncio(loop_scope="module")
async def test_system_accounts_and_departments_read_only_what_is_theirs(city: Harness) -> None:
    public = await city.post(
        None,
        "/intake/public/reports",
        {"category_code": "02-05-01", "description": "overflowing bin", "location": city.fresh_spot()},
        expect=201,
    )
    for user in ("hotline", "video", "dept-street"):
        await city.get(user, f"/intake/reports/{public['id']}", expect=404)
    filed = await city.report("02-05-01")
    for user in ("hotline", "video"):
        await city.get(user, f"/intake/cases/{filed['id']}", expect=403)
        await city.get(user, f"/intake/cases/{filed['id']}/timeline", expect=403)
    await city.get("shiftlead", f"/intake/reports/{public['id']}")


@pytest.mark.asyncio(loop_scope="module")
async def test_a_live_feed_of_a_scope_the_caller_may_not_read_is_refused_before_it_starts(city: Harness) -> None:
    token = await city.login("dept-street")
    headers = {"Authorization": f"Bearer {token}"}
    refused = {"scope_kind": "department", "scope_id": "co-power", "count": "1"}
    async with city.client.stream("GET", "/assessment/live", params=refused, headers=headers) as response:
        assert response.status_code == 403
        assert (await response.aread()).startswith(b"{")
    own = {"scope_kind": "department", "scope_id": "office-990102001", "count": "1"}
    async with city.client.stream("GET", "/assessment/live", params=own, headers=headers) as response:
        assert response.status_code == 200
        assert b"event: indicators" in await response.aread()


@pytest.mark.asyncio(loop_scope="module")
async def test_a_strangers_body_is_refused_before_it_is_read(city: Harness) -> None:
    read: list[int] = []

    async def body() -> AsyncIterator[bytes]:
        for _ in range(4):
            read.append(1)
            yield b"x" * 65536

    headers = {"Content-Type": "application/json", "Authorization": "Bearer forged.token.value"}
    response = await city.client.post("/intake/reports", content=body(), headers=headers)
    assert response.status_code == 401
    assert response.json()["message"] == "a valid bearer token is required"
    assert response.headers["www-authenticate"] == "Bearer"
    assert read == []
    # The anonymous public route is open, and reads what it is sent.
    response = await city.client.post(
        "/intake/public/reports", content=b"{}", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422


@pytest.mark.asyncio(loop_scope="module")
async def test_bodies_over_the_limit_are_refused(city: Harness) -> None:
    token = await city.login("inspector1")
    auth = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    declared = {**auth, "Content-Length": str(10**9)}

    async def nothing() -> AsyncIterator[bytes]:
        yield b""

    response = await city.client.post("/intake/reports", content=nothing(), headers=declared)
    assert (response.status_code, response.json()["code"]) == (413, "request_too_large")

    async def endless() -> AsyncIterator[bytes]:
        for _ in range(100):  # 6.4 MB, chunked: no Content-Length to refuse up front
            yield b" " * 65536

    response = await city.client.post("/intake/reports", content=endless(), headers=auth)
    assert (response.status_code, response.json()["code"]) == (413, "request_too_large")
    # A body within the limit still reaches the route.
    report = {"category_code": "02-05-01", "description": "fits", "location": city.fresh_spot()}
    response = await city.client.post("/intake/reports", json=report, headers={"Authorization": auth["Authorization"]})
    assert response.status_code == 201


@pytest.mark.asyncio(loop_scope="module")
async def test_a_photo_is_stored_only_when_it_decodes_and_is_served_as_what_it_is(city: Harness) -> None:
    token = {"Authorization": f"Bearer {await city.login('inspector1')}"}
    for name, data in (
        ("magic-only.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 64),
        ("truncated.png", PNG[: len(PNG) // 2]),
        ("script.jpg", b"\xff\xd8\xff<script>alert(1)</script>"),
    ):
        refused = await city.client.post("/intake/photos", headers=token, files=[("files", (name, data, "image/png"))])
        assert (refused.status_code, refused.json()["code"]) == (415, "unsupported_photo"), name
    stored = await city.client.post("/intake/photos", headers=token, files=[("files", ("ok.png", PNG, "image/png"))])
    assert stored.status_code == 201
    photo = await city.client.get(f"/intake/photos/{stored.json()[0]['digest']}", headers=token)
    assert photo.headers["content-type"] == "image/png"
    assert photo.headers["x-content-type-options"] == "nosniff"
    assert photo.content == PNG


@pytest.mark.asyncio(loop_scope="module")
async def test_every_answer_carries_the_security_headers(city: Harness) -> None:
    answers = [
        await city.client.get("/healthz"),
        await city.client.get("/intake/reports"),  # 401 from the route
        await city.client.post("/intake/reports", content=b"{}", headers={"Content-Type": "application/json"}),
        await city.client.get("/assessment/indicators", params={"date": "0"}),
    ]
    for answer in answers:
        assert answer.headers["x-content-type-options"] == "nosniff", answer.request.url
        assert answer.headers["x-frame-options"] == "DENY"
        assert answer.headers["referrer-policy"] == "no-referrer"


@pytest.mark.asyncio(loop_scope="module")
async def test_guessing_passwords_and_flooding_public_reports_meet_429s(tmp_path: Path) -> None:
    limits = {"rate_public_reports_per_address": "2/minute", "rate_login_failures_per_account": "3/15 minutes"}
    async with running_city("embedded", tmp_path, **limits) as city:
        for _ in range(3):
            wrong = await city.client.post("/auth/token", data={"username": "shiftlead", "password": "guess"})
            assert wrong.status_code == 401
        for password in ("guess", "demo-shift_lead"):  # locked out: even the right password waits
            locked = await city.client.post("/auth/token", data={"username": "shiftlead", "password": password})
            assert (locked.status_code, locked.json()["code"]) == (429, "too_many_requests")
            assert 1 <= int(locked.headers["retry-after"]) <= 15 * 60
        # Another account is not locked by the guesser.
        assert (
            await city.client.post("/auth/token", data={"username": "operator", "password": "demo-operator"})
        ).status_code == 200
        report = {"category_code": "02-05-01", "description": "bin overflowing"}
        for _ in range(2):
            await city.post(None, "/intake/public/reports", {**report, "location": city.fresh_spot()}, expect=201)
        flood = await city.client.post("/intake/public/reports", json={**report, "location": city.fresh_spot()})
        assert flood.status_code == 429
        assert int(flood.headers["retry-after"]) >= 1


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize("path", ["/assessment/indicators", "/assessment/live"])
async def test_a_scope_the_city_does_not_have_is_not_found(city: Harness, path: str) -> None:
    # A mistyped id would otherwise read as a scope where nothing happened: all zeros.
    body = await city.get("shiftlead", path, expect=404, params={"scope_kind": "district", "scope_id": "nowhere"})
    assert code_of(body) == "not_found"
    # The city-wide scope's id is guessed wrong most: the answer names it.
    body = await city.get("shiftlead", path, expect=404, params={"scope_kind": "city", "scope_id": "990100"})
    assert "'city'" in body["message"]
    # A scope the city has is answered, counted or not.
    known = {"scope_kind": "department", "scope_id": "bureau-landscape"}
    answer = await city.get("shiftlead", "/assessment/indicators", params=known)
    assert answer["scope"]["name"] == "演示市园林局"
