"""Open311's write side over HTTP on the embedded store: a citizen app's form-encoded ``POST
requests`` becomes a public report waiting for the inspector's verification and is answered with a
token, which ``tokens/{token}`` turns into the case number once filed; every refusal is the spec's
error in the format asked for and leaves nothing behind (read back through the staff's API); a
key's requests are counted against its limit; the contact fields are kept apart and shown nowhere.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from uuid import UUID
from xml.etree import ElementTree as ET

import httpx
import pytest

from intake.domain import RejectionReason
from intake.handlers import NewReport, receive_report, reject_report, verify_report
from intake.models import api_keys, report_contacts, reports
from intake.open311 import keys
from intake.open311.submit import RequestForm
from shared.core.auth import Role
from shared.core.errors import NotFound
from shared.events.catalogue import ReportReceived, ReportSource, VerificationRequested
from tests.service.conftest import ServiceUnderTest, point_in, principal
from tests.service.http import served, served_mounts
from tests.service.intake.conftest import CELL, URGENT, inspector

SHIFT_LEAD = principal(Role.SHIFT_LEAD, "shiftlead")
OPERATOR = principal(Role.OPERATOR, "operator")
CONTACT = {
    "email": "li.lei@example.cn",
    "device_id": "device-5f3a9c",
    "account_id": "acct-778812",
    "first_name": "Meiling",
    "last_name": "Zhaoqian",
    "phone": "+86 138 0013 8000",
}
FORMATS = ["json", "xml"]


@pytest.fixture
async def app(intake: ServiceUnderTest) -> AsyncIterator[httpx.AsyncClient]:
    """A citizen app's client: no token, only its API key in the form."""
    async with served_mounts(intake) as client:
        yield client


@pytest.fixture
async def staff(intake: ServiceUnderTest) -> AsyncIterator[httpx.AsyncClient]:
    async with served(intake, SHIFT_LEAD) as client:
        yield client


@pytest.fixture
async def api_key(intake: ServiceUnderTest) -> str:
    """A key issued to the application "Street Fix"."""
    _, key = await keys.issue(intake.store, "Street Fix")
    return key


def request_form(sut: ServiceUnderTest, api_key: str | None, /, **changes: str | None) -> dict[str, str]:
    """What a phone app sends: the key, the service, the point, a description, the citizen's
    contact; ``changes`` replace fields (None leaves one out)."""
    lon, lat = point_in(sut.ctx.city, CELL)
    form: dict[str, str | None] = {
        "api_key": api_key,
        "jurisdiction_id": sut.ctx.city.id,
        "service_code": URGENT,
        "lat": str(lat),
        "long": str(lon),
        "description": "A manhole cover is missing on the pavement",
        "media_url": "https://photos.example.cn/p/8812.jpg",
        **CONTACT,
        **changes,
    }
    return {name: value for name, value in form.items() if value is not None}


def answered(response: httpx.Response, fmt: str) -> list[dict[str, str | None]]:
    """The records of a ``<service_requests>`` document, or of its JSON array; XML's empty
    element read as JSON's null."""
    assert response.status_code == 200, response.text
    if fmt == "json":
        assert response.headers["content-type"] == "application/json; charset=utf-8"
        records: list[dict[str, str | None]] = response.json()
        return records
    assert response.headers["content-type"] == "text/xml; charset=utf-8"
    root = ET.fromstring(response.content)
    assert root.tag == "service_requests"
    assert all(child.tag == "request" for child in root)
    return [{field.tag: field.text for field in child} for child in root]


def open311_errors(response: httpx.Response, fmt: str, status: int) -> list[str]:
    """The descriptions of the spec's error body (``[{"code", "description"}]`` or
    ``<errors><error><code/><description/>``), each coded with the HTTP status."""
    assert response.status_code == status, response.text
    if fmt == "json":
        body = response.json()
        assert all(list(error) == ["code", "description"] for error in body), body
        assert {error["code"] for error in body} == {status}
        return [error["description"] for error in body]
    root = ET.fromstring(response.content)
    assert root.tag == "errors"
    assert [[field.tag for field in error] for error in root] == [["code", "description"]] * len(root)
    assert {error.findtext("code") for error in root} == {str(status)}
    return [error.findtext("description") or "" for error in root]


async def nothing_created(sut: ServiceUnderTest, staff: httpx.AsyncClient) -> None:
    """No report in any queue and no case (read through the API), no contact, no event."""
    for status in ("verifying", "awaiting_review", "filed", "rejected", "merged"):
        listed = await staff.get("/intake/reports", params={"status": status})
        assert listed.status_code == 200
        assert listed.json() == [], status
    assert (await staff.get("/intake/cases")).json()["items"] == []
    assert await sut.rows(report_contacts) == []
    assert await sut.outbox() == []


# --- posting a request ---------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
async def test_a_form_post_is_a_public_report_waiting_for_verification_answered_with_a_token(
    intake: ServiceUnderTest, app: httpx.AsyncClient, staff: httpx.AsyncClient, api_key: str, fmt: str
) -> None:
    response = await app.post(f"/open311/v2/requests.{fmt}", data=request_form(intake, api_key))
    (posted,) = answered(response, fmt)
    assert list(posted) == ["token", "service_notice"]
    token = posted["token"]
    assert token is not None
    assert "An inspector verifies the report on site by 2026-11-02T09:10+08:00" in (posted["service_notice"] or "")
    report = (await staff.get(f"/intake/reports/{token}")).json()
    assert (report["status"], report["source"], report["category_code"]) == ("verifying", "public", URGENT)
    assert report["description"] == "A manhole cover is missing on the pavement"
    assert report["verifier_id"] == "insp-001"
    row = await intake.row(reports, UUID(token))
    assert (row["reporter_id"], row["media_url"]) == ("open311:Street Fix", "https://photos.example.cn/p/8812.jpg")
    received, requested = await intake.payloads()
    assert isinstance(received, ReportReceived)
    assert (received.source, received.reporter_id) == (ReportSource.PUBLIC, "open311:Street Fix")
    assert isinstance(requested, VerificationRequested)


async def test_multipart_is_taken_too(intake: ServiceUnderTest, app: httpx.AsyncClient, api_key: str) -> None:
    form = request_form(intake, api_key)
    # Every field as its own part, as a browser's FormData sends it.
    parts = {name: (None, value) for name, value in form.items()}
    response = await app.post("/open311/v2/requests.json", files=parts)
    (posted,) = answered(response, "json")
    assert (await intake.row(reports, UUID(str(posted["token"]))))["status"] == "verifying"


async def test_the_contact_is_kept_apart_and_shown_nowhere(
    intake: ServiceUnderTest, app: httpx.AsyncClient, staff: httpx.AsyncClient, api_key: str
) -> None:
    posted = await app.post("/open311/v2/requests.json", data=request_form(intake, api_key))
    token = posted.json()[0]["token"]
    (contact,) = await intake.rows(report_contacts)
    assert dict(contact) == {
        "report_id": UUID(token),
        "name": "Meiling Zhaoqian",
        "phone": "+86 138 0013 8000",
        "email": "li.lei@example.cn",
        "device_id": "device-5f3a9c",
        "account_id": "acct-778812",
    }
    await verify_report(intake.ctx, inspector("insp-001"), UUID(token), confirmed=True, note=None, photos=[])
    said = [
        posted.text,
        (await app.get(f"/open311/v2/tokens/{token}.xml")).text,
        (await staff.get(f"/intake/reports/{token}")).text,
        (await staff.get(f"/intake/cases/{token}")).text,
        (await staff.get(f"/intake/cases/{token}/timeline")).text,
        (await staff.get("/intake/export/reports")).text,
        *(json.dumps(event.data.model_dump(mode="json"), ensure_ascii=False) for event in await intake.outbox()),
        *(json.dumps([str(v) for v in row.values()], ensure_ascii=False) for row in await intake.rows(reports)),
    ]
    said.append(repr(RequestForm.model_validate(request_form(intake, api_key))))
    assert any("A manhole cover is missing" in text for text in said)  # the texts are the real ones
    assert [text for text in said if any(value in text for value in CONTACT.values())] == []


async def test_a_report_joining_an_open_request_is_answered_with_its_service_request_id(
    intake: ServiceUnderTest, app: httpx.AsyncClient, api_key: str
) -> None:
    first = await app.post("/open311/v2/requests.json", data=request_form(intake, api_key))
    token = UUID(first.json()[0]["token"])
    filed = await verify_report(intake.ctx, inspector("insp-001"), token, confirmed=True, note=None, photos=[])
    again = await app.post("/open311/v2/requests.xml", data=request_form(intake, api_key, description="still open"))
    (joined,) = answered(again, "xml")
    assert list(joined) == ["service_request_id", "service_notice"]
    assert joined["service_request_id"] == filed["case_number"]
    assert f"is service request {filed['case_number']}" in (joined["service_notice"] or "")


# --- tokens --------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
async def test_a_token_answers_the_case_number_once_the_report_is_filed(
    intake: ServiceUnderTest, app: httpx.AsyncClient, api_key: str, fmt: str
) -> None:
    token = (await app.post("/open311/v2/requests.json", data=request_form(intake, api_key))).json()[0]["token"]
    waiting = answered(await app.get(f"/open311/v2/tokens/{token}.{fmt}"), fmt)
    assert waiting == [{"service_request_id": None, "token": token}]
    filed = await verify_report(intake.ctx, inspector("insp-001"), UUID(token), confirmed=True, note=None, photos=[])
    asked = await app.get(f"/open311/v2/tokens/{token}.{fmt}", params={"jurisdiction_id": intake.ctx.city.id})
    assert answered(asked, fmt) == [{"service_request_id": filed["case_number"], "token": token}]


@pytest.mark.parametrize("fmt", FORMATS)
async def test_a_report_not_accepted_is_no_service_request(
    intake: ServiceUnderTest, app: httpx.AsyncClient, api_key: str, fmt: str
) -> None:
    token = (await app.post("/open311/v2/requests.json", data=request_form(intake, api_key))).json()[0]["token"]
    await reject_report(intake.ctx, OPERATOR, UUID(token), RejectionReason.OUT_OF_SCOPE, "a private courtyard")
    (said,) = open311_errors(await app.get(f"/open311/v2/tokens/{token}.{fmt}"), fmt, 404)
    assert said == f"token {token}: the report was not accepted as a service request"
    assert "courtyard" not in said


@pytest.mark.parametrize("fmt", FORMATS)
async def test_tokens_nobody_was_given_are_not_found(
    intake: ServiceUnderTest, app: httpx.AsyncClient, api_key: str, fmt: str
) -> None:
    lon, lat = point_in(intake.ctx.city, CELL)
    web_report, _ = await receive_report(
        intake.ctx, NewReport(ReportSource.PUBLIC, URGENT, "sent on the city's own page", lon, lat, reporter_id=None)
    )
    for token in (str(web_report["id"]), "5f0e8b1c-0000-4000-8000-000000000000", "not-a-token"):
        assert open311_errors(await app.get(f"/open311/v2/tokens/{token}.{fmt}"), fmt, 404) == [f"no token {token}"]
    token = (await app.post("/open311/v2/requests.json", data=request_form(intake, api_key))).json()[0]["token"]
    elsewhere = await app.get(f"/open311/v2/tokens/{token}.{fmt}", params={"jurisdiction_id": "sfgov.org"})
    assert open311_errors(elsewhere, fmt, 404) == [
        f"jurisdiction_id sfgov.org not found: this server's is {intake.ctx.city.id}"
    ]


# --- refusals ------------------------------------------------------------------------------------

# What is wrong with a request, the status the spec gives it and what the answer says.
REFUSALS: list[tuple[str, dict[str, str | None], int, list[str]]] = [
    ("no key", {"api_key": None}, 403, ["api_key is required to post a service request"]),
    ("an empty key", {"api_key": ""}, 403, ["api_key is required to post a service request"]),
    ("a key nobody was issued", {"api_key": "x" * 43}, 403, ["api_key is not valid"]),
    ("another city", {"jurisdiction_id": "sfgov.org"}, 404, ["jurisdiction_id sfgov.org not found"]),
    ("no service", {"service_code": None}, 400, ["service_code is required"]),
    ("an unknown service", {"service_code": "99-99-99"}, 404, ["service_code 99-99-99 is not one of the city's"]),
    (
        "a point outside the city",
        {"lat": "39.9042", "long": "116.4074"},
        400,
        ["lat 39.9042, long 116.4074 is outside"],
    ),
    ("no point", {"lat": None, "long": None}, 400, ["lat and long (WGS-84) are required"]),
    ("half a point", {"long": None}, 400, ["lat and long are sent together"]),
    (
        "an address alone",
        {"lat": None, "long": None, "address_string": "5 Wenhua Road"},
        400,
        ["address_string alone cannot be placed: this city has no geocoder"],
    ),
    (
        "an address id alone",
        {"lat": None, "long": None, "address_id": "545483"},
        400,
        ["address_id alone cannot be placed"],
    ),
    ("a latitude that is no number", {"lat": "north"}, 400, ["lat: Input should be a valid number"]),
    ("a latitude off the globe", {"lat": "91"}, 400, ["lat: Input should be less than or equal to 90"]),
    ("a latitude that is no place", {"lat": "nan"}, 400, ["lat: Input should be a finite number"]),
    (
        "a description over 4,000 characters",
        {"description": "x" * 4001},
        400,
        ["description: at most 4000 characters"],
    ),
    ("a description with a control character", {"description": "a\x00b"}, 400, ["description: Value error"]),
    ("a phone that is not one", {"phone": "call me"}, 400, ["phone: String should match pattern"]),
    ("media that is not a web address", {"media_url": "file:///etc/passwd"}, 400, ["media_url: String should match"]),
    ("an attribute the service lacks", {"attribute[DEPTH]": "2"}, 400, ["attribute DEPTH: service 01-01-04 defines"]),
    ("a list attribute it lacks", {"attribute[SIDES][]": "north"}, 400, ["attribute SIDES: service 01-01-04 defines"]),
    ("a malformed attribute", {"attribute[DEPTH": "2"}, 400, ["attribute[DEPTH: an attribute is sent as"]),
]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(("case", "changes", "status", "said"), REFUSALS, ids=[r[0] for r in REFUSALS])
async def test_a_refused_request_answers_the_specs_error_and_creates_nothing(
    intake: ServiceUnderTest,
    app: httpx.AsyncClient,
    staff: httpx.AsyncClient,
    api_key: str,
    fmt: str,
    case: str,
    changes: dict[str, str | None],
    status: int,
    said: list[str],
) -> None:
    response = await app.post(f"/open311/v2/requests.{fmt}", data=request_form(intake, api_key, **changes))
    descriptions = open311_errors(response, fmt, status)
    assert len(descriptions) == len(said), descriptions
    for description, beginning in zip(descriptions, said, strict=True):
        assert description.startswith(beginning), (case, description)
    assert not any(value in response.text for value in CONTACT.values())
    await nothing_created(intake, staff)


@pytest.mark.parametrize("fmt", FORMATS)
async def test_every_problem_of_the_fields_is_named_in_one_answer(
    intake: ServiceUnderTest, app: httpx.AsyncClient, staff: httpx.AsyncClient, api_key: str, fmt: str
) -> None:
    form = request_form(intake, api_key, description="x" * 4001, email="nobody", phone="call me")
    descriptions = open311_errors(await app.post(f"/open311/v2/requests.{fmt}", data=form), fmt, 400)
    assert [text.partition(":")[0] for text in descriptions] == ["description", "email", "phone"]
    await nothing_created(intake, staff)


@pytest.mark.parametrize("fmt", FORMATS)
async def test_a_revoked_key_is_refused(
    intake: ServiceUnderTest, app: httpx.AsyncClient, staff: httpx.AsyncClient, fmt: str
) -> None:
    issued, key = await keys.issue(intake.store, "Old App")
    await keys.revoke(intake.store, issued.id)
    response = await app.post(f"/open311/v2/requests.{fmt}", data=request_form(intake, key))
    assert open311_errors(response, fmt, 403) == ["api_key has been revoked"]
    await nothing_created(intake, staff)


async def test_a_body_that_is_not_a_form_is_refused(
    intake: ServiceUnderTest, app: httpx.AsyncClient, staff: httpx.AsyncClient, api_key: str
) -> None:
    as_json = await app.post("/open311/v2/requests.json", json=request_form(intake, api_key))
    (said,) = open311_errors(as_json, "json", 400)
    assert said.startswith("send the request form-encoded")
    with_a_file = await app.post(
        "/open311/v2/requests.xml", data=request_form(intake, api_key), files={"photo": ("p.jpg", b"\xff\xd8")}
    )
    assert open311_errors(with_a_file, "xml", 400)[0].startswith("the form cannot be read")
    twice = await app.post(
        "/open311/v2/requests.json",
        content=f"api_key={api_key}&service_code=01-01-04&service_code=02-05-01",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert open311_errors(twice, "json", 400) == ["service_code is given 2 times; give it once"]
    await nothing_created(intake, staff)


# --- the key's rate limit ------------------------------------------------------------------------


async def test_a_key_over_its_limit_waits_for_the_window(
    intake: ServiceUnderTest, app: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A window of a second instead of a minute: the same rule, tested without waiting a minute.
    monkeypatch.setattr(keys, "WINDOW_SECONDS", 1)
    _, key = await keys.issue(intake.store, "Busy App", per_minute=2)
    _, other = await keys.issue(intake.store, "Quiet App", per_minute=2)
    for _ in range(2):
        answered(await app.post("/open311/v2/requests.json", data=request_form(intake, key)), "json")
    for fmt in FORMATS:
        over = await app.post(f"/open311/v2/requests.{fmt}", data=request_form(intake, key))
        assert open311_errors(over, fmt, 429)[0].startswith("too many service requests with this api_key")
        assert over.headers["retry-after"] == "1"
    assert len(await intake.rows(reports)) == 2
    answered(await app.post("/open311/v2/requests.json", data=request_form(intake, other)), "json")
    await asyncio.sleep(1.05)
    answered(await app.post("/open311/v2/requests.json", data=request_form(intake, key)), "json")
    assert len(await intake.rows(reports)) == 4


# --- keys ----------------------------------------------------------------------------------------


async def test_a_key_is_kept_as_its_digest_only(intake: ServiceUnderTest) -> None:
    issued, key = await keys.issue(intake.store, "Street Fix", per_minute=30)
    (row,) = await intake.rows(api_keys)
    assert len(key) == 43  # 256 bits, URL-safe base64
    assert row["key_sha256"] == keys.digest(key) != key
    assert key not in json.dumps([str(value) for value in row.values()])
    assert (issued.application, issued.per_minute, issued.revoked_at) == ("Street Fix", 30, None)
    with pytest.raises(NotFound):
        await keys.revoke(intake.store, UUID("5f0e8b1c-0000-4000-8000-000000000000"))
