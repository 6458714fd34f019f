"""A citizen app through Open311, end to end on both backends: it finds the endpoint, posts a
request form-encoded as a phone app sends it, follows its token to a service request number once
the grid inspector has confirmed the problem on site, and watches the request go through dispatch,
the department's handling and the inspector's check to closed, in ``GET requests/{id}`` and in
``servicerequestupdates``, in both formats.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any
from xml.etree import ElementTree as ET

import httpx
import pytest
import pytest_asyncio

from intake.domain import CaseStatus
from intake.models import metadata
from intake.open311 import keys
from intake.open311.service_requests import STATUS_NOTES
from shared.core.settings import Settings
from shared.db.engine import create_engine
from shared.messaging.store import ServiceStore
from tests.e2e.harness import PNG, Harness, city_settings, running_city

pytestmark = pytest.mark.asyncio(loop_scope="module")

STREET_VENDING = "02-05-01"  # routed to the street office of the place, working time
STREET_OFFICE, STREET_USER = "office-990102001", "dept-street"
EMAIL, PHONE = "wang.fang@example.cn", "13900139000"


class CitizenApp:
    """A phone app that speaks Open311 to the city: no account, its API key in the form."""

    def __init__(self, city: Harness, key: str) -> None:
        self.city = city
        self.key = key

    async def get(self, path: str, **params: str) -> httpx.Response:
        response = await self.city.client.get(f"/open311/v2/{path}", params=params)
        assert response.status_code == 200, f"{path}: {response.status_code} {response.text}"
        return response

    async def until(self, path: str, holds: Callable[[Any], bool], timeout_s: float = 30) -> Any:
        """The JSON at ``path`` once ``holds`` (the case file follows the other services' events)."""
        body: Any = None
        try:
            async with asyncio.timeout(timeout_s):
                while not holds(body := (await self.get(path)).json()):
                    await asyncio.sleep(0.05)
        except TimeoutError:
            raise AssertionError(f"{path} never satisfied the condition; last answer: {str(body)[:800]}") from None
        return body


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=["embedded", "postgres-kafka"])
async def app(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[CitizenApp]:
    """A citizen app of a running city, with a key issued to "Street Fix"."""
    folder = tmp_path_factory.mktemp(request.param)
    async with running_city(request.param, folder) as city:
        yield CitizenApp(city, await issued_key(city_settings(request.param, folder), city))


async def issued_key(settings: Settings, city: Harness) -> str:
    """A key issued as the command line issues one, on the city's intake database."""
    engine = create_engine(settings.database_url("intake"))
    try:
        store = ServiceStore("intake", engine, metadata, clock=city.clock, case_events_topic=settings.topic_case_events)
        _, key = await keys.issue(store, "Street Fix")
    finally:
        await engine.dispose()
    return key


def xml_records(response: httpx.Response, root: str, item: str) -> list[dict[str, str | None]]:
    assert response.headers["content-type"] == "text/xml; charset=utf-8"
    document = ET.fromstring(response.content)
    assert document.tag == root
    assert {child.tag for child in document} <= {item}
    return [{field.tag: field.text for field in child} for child in document]


def notes_say(status: CaseStatus) -> Callable[[Any], bool]:
    """Whether a request's ``status_notes`` tell of the case's ``status``."""
    return lambda body: body[0]["status_notes"] == STATUS_NOTES[status]


def steps(updates: list[dict[str, Any]], number: str) -> list[tuple[str, str]]:
    return [(update["status"], update["description"]) for update in updates if update["service_request_id"] == number]


async def test_a_citizen_app_follows_its_request_from_the_form_to_closed(app: CitizenApp) -> None:
    city = app.city
    discovery = (await app.get("discovery.json")).json()
    assert [endpoint["url"].endswith("/open311/v2") for endpoint in discovery["endpoints"]] == [True]

    spot = city.fresh_spot()
    form = {
        "api_key": app.key,
        "jurisdiction_id": city.city.id,
        "service_code": STREET_VENDING,
        "lat": str(spot["lat"]),
        "long": str(spot["lon"]),
        "description": "Stalls block the pavement at the school gate",
        "email": EMAIL,
        "phone": PHONE,
    }
    posted = await city.client.post("/open311/v2/requests.json", data=form)
    assert posted.status_code == 200, posted.text
    assert posted.headers["content-type"] == "application/json; charset=utf-8"
    (answer,) = posted.json()
    token = answer["token"]
    assert "service_request_id" not in answer
    assert (await app.get(f"tokens/{token}.json")).json() == [{"service_request_id": None, "token": token}]

    # The grid inspector goes to look and confirms: the report is filed, a service request.
    verified = await city.post("inspector1", f"/intake/reports/{token}/verification", {"confirmed": True})
    number = verified["case_number"]
    assert xml_records(await app.get(f"tokens/{token}.xml"), "service_requests", "request") == [
        {"service_request_id": number, "token": token}
    ]

    dispatched = await app.until(f"requests/{number}.json", lambda body: body[0]["agency_responsible"] is not None)
    (request,) = dispatched
    assert (request["service_request_id"], request["status"], request["service_code"]) == (
        number,
        "open",
        STREET_VENDING,
    )
    assert request["agency_responsible"] == city.city.department(STREET_OFFICE).name
    assert request["description"] == "Stalls block the pavement at the school gate"
    assert request["expected_datetime"] is not None
    assert datetime.fromisoformat(request["expected_datetime"]) > datetime.fromisoformat(request["requested_datetime"])
    assert request["requested_datetime"].endswith("+08:00")
    assert request["status_notes"] == STATUS_NOTES[CaseStatus.DISPATCHED]

    await city.case_status(token, "dispatched")
    await city.eventually(STREET_USER, "/handling/inbox", lambda body: any(t["id"] == token for t in body))
    await city.post(STREET_USER, f"/handling/cases/{token}/accept")
    await app.until(f"requests/{number}.json", notes_say(CaseStatus.ACCEPTED))
    await city.call(
        STREET_USER,
        "POST",
        f"/handling/cases/{token}/report",
        data={"result": "stalls moved to the market"},
        files=[("photos", ("after.png", PNG, "image/png"))],
    )
    await city.eventually("inspector1", "/closure/checks", lambda body: any(c["id"] == token for c in body))
    (checking,) = await app.until(f"requests/{number}.json", notes_say(CaseStatus.CHECKING))
    assert checking["status"] == "open"
    await city.post("inspector1", f"/closure/cases/{token}/check", {"passed": True, "note": "clear"})
    case = await city.case_status(token, "closed")

    (closed,) = await app.until(f"requests/{number}.json", lambda body: body[0]["status"] == "closed")
    assert closed["status_notes"] == STATUS_NOTES[CaseStatus.CLOSED]
    assert closed["agency_responsible"] == city.city.department(STREET_OFFICE).name
    assert closed["expected_datetime"] == request["expected_datetime"]
    assert datetime.fromisoformat(closed["updated_datetime"]) == datetime.fromisoformat(case["closed_at"])
    (as_xml,) = xml_records(await app.get(f"requests/{number}.xml"), "service_requests", "request")
    assert (as_xml["service_request_id"], as_xml["status"]) == (number, "closed")
    assert as_xml["agency_responsible"] == closed["agency_responsible"]
    assert as_xml["expected_datetime"] == closed["expected_datetime"]
    assert as_xml["updated_datetime"] == closed["updated_datetime"]
    listed = (await app.get("requests.json", service_request_id=number)).json()
    assert listed == [closed]

    updates = await app.until(
        "servicerequestupdates.json", lambda body: ("closed", "已结案 · Closed") in steps(body or [], number)
    )
    street_office = city.city.department(STREET_OFFICE)
    assert steps(updates, number) == [
        ("open", "监督员现场核实 · Confirmed on site by the grid inspector"),
        ("open", "已立案 · Filed"),
        ("open", f"已派遣至{street_office.name} · Dispatched to {street_office.name_en}"),
        ("open", f"{street_office.name}已签收 · Accepted by {street_office.name_en}"),
        ("open", f"{street_office.name}已处置 · Handled by {street_office.name_en}: stalls moved to the market"),
        ("open", "监督员核查中 · Being checked on site by the grid inspector"),
        ("open", "核查通过 · Checked on site: fixed"),
        ("closed", "已结案 · Closed"),
    ]
    as_xml_updates = xml_records(
        await app.get("servicerequestupdates.xml"), "service_request_updates", "request_update"
    )
    assert steps(as_xml_updates, number) == steps(updates, number)

    # Nothing of the citizen anywhere the app, or anyone, can read.
    said = [
        posted.text,
        (await app.get(f"requests/{number}.xml")).text,
        (await app.get("servicerequestupdates.json")).text,
        (await app.get("requests.json")).text,
    ]
    assert not [text for text in said if EMAIL in text or PHONE in text]
