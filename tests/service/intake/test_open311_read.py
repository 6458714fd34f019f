"""Open311's read side over HTTP on the embedded store, checked against the spec
(https://wiki.open311.org/GeoReport_v2, https://wiki.open311.org/Service_Discovery, FixMyStreet's
servicerequestupdates): every document in both formats, JSON against JSON Schemas written from
the spec's field lists, XML element by element (names, order, and the same values as the JSON);
dates with the city's offset, the statuses open and closed, and the spec's errors in both formats.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from xml.etree import ElementTree as ET

import httpx
import jsonschema
import pytest

from intake.handlers import NewReport, receive_report, verify_report
from shared.events.catalogue import (
    CaseAccepted,
    CaseCancelled,
    CaseClosed,
    CaseDispatched,
    CaseHandled,
    CheckPassed,
    CheckRequested,
    ReportSource,
)
from tests.service.conftest import MONDAY_0900, ServiceUnderTest, hours, point_in
from tests.service.http import served_mounts
from tests.service.intake.conftest import CELL, ORDINARY, OTHER_CELL, URGENT, inspector, send

V2 = "/open311/v2"
FORMATS = ("json", "xml")
DEPT = "bureau-urban"
DEADLINE = MONDAY_0900 + timedelta(days=1)
MEDIA = "https://photos.example.org/cover-17.jpg"
# Every date in the city's offset (Asia/Shanghai), to the second, as the spec's examples write them.
LOCAL_TIME = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+08:00$"
CONTENT_TYPES = {"json": "application/json; charset=utf-8", "xml": "text/xml; charset=utf-8"}

# --- the spec's field lists, in their order, and JSON Schemas written from them --------------------

SERVICE_FIELDS = ("service_code", "service_name", "description", "metadata", "type", "keywords", "group")
REQUEST_FIELDS = (
    "service_request_id",
    "status",
    "status_notes",
    "service_name",
    "service_code",
    "description",
    "agency_responsible",
    "service_notice",
    "requested_datetime",
    "updated_datetime",
    "expected_datetime",
    "address",
    "address_id",
    "zipcode",
    "lat",
    "long",
    "media_url",
)
UPDATE_FIELDS = ("update_id", "service_request_id", "status", "updated_datetime", "description", "media_url")
DISCOVERY_FIELDS = ("changeset", "contact", "key_service", "endpoints")
ENDPOINT_FIELDS = ("specification", "url", "changeset", "type", "formats")
ERROR_FIELDS = ("code", "description")

STRING = {"type": "string"}
TEXT = {"type": "string", "minLength": 1}
MAYBE_TEXT = {"type": ["string", "null"]}
LOCAL = {"type": "string", "pattern": LOCAL_TIME}
STATUS = {"enum": ["open", "closed"]}


def _record(properties: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": dict(properties),
        "required": list(properties),
        "additionalProperties": False,
    }


def _list_of(item: Mapping[str, Any], min_items: int = 0) -> dict[str, Any]:
    return {"type": "array", "items": item, "minItems": min_items}


SERVICES_SCHEMA = _list_of(
    _record(
        {
            "service_code": TEXT,
            "service_name": TEXT,
            "description": STRING,
            "metadata": {"type": "boolean"},
            "type": {"enum": ["realtime", "batch", "blackbox"]},
            "keywords": STRING,
            "group": STRING,
        }
    ),
    min_items=1,
)
DEFINITION_SCHEMA = _record(
    {
        "service_code": TEXT,
        "attributes": _list_of(
            _record(
                {
                    "variable": {"type": "boolean"},
                    "code": TEXT,
                    "datatype": {"enum": ["string", "number", "datetime", "text", "singlevaluelist", "multivaluelist"]},
                    "required": {"type": "boolean"},
                    "datatype_description": MAYBE_TEXT,
                    "order": {"type": "integer", "minimum": 1},
                    "description": STRING,
                    "values": _list_of(_record({"key": {"type": ["string", "number"]}, "name": STRING})),
                }
            )
        ),
    }
)
REQUESTS_SCHEMA = _list_of(
    _record(
        {
            "service_request_id": TEXT,
            "status": STATUS,
            "status_notes": MAYBE_TEXT,
            "service_name": MAYBE_TEXT,
            "service_code": TEXT,
            "description": MAYBE_TEXT,
            "agency_responsible": MAYBE_TEXT,
            "service_notice": MAYBE_TEXT,
            "requested_datetime": LOCAL,
            "updated_datetime": LOCAL,
            "expected_datetime": {"anyOf": [LOCAL, {"type": "null"}]},
            "address": MAYBE_TEXT,
            "address_id": MAYBE_TEXT,
            "zipcode": MAYBE_TEXT,
            "lat": {"type": "number", "minimum": -90, "maximum": 90},
            "long": {"type": "number", "minimum": -180, "maximum": 180},
            "media_url": MAYBE_TEXT,
        }
    )
)
UPDATES_SCHEMA = _list_of(
    _record(
        {
            "update_id": TEXT,
            "service_request_id": TEXT,
            "status": STATUS,
            "updated_datetime": LOCAL,
            "description": STRING,
            "media_url": MAYBE_TEXT,
        }
    )
)
DISCOVERY_SCHEMA = _record(
    {
        "changeset": TEXT,
        "contact": TEXT,
        "key_service": TEXT,
        "endpoints": _list_of(
            _record(
                {
                    "specification": {"const": "http://wiki.open311.org/GeoReport_v2"},
                    "url": TEXT,
                    "changeset": TEXT,
                    "type": {"enum": ["production", "test"]},
                    "formats": _list_of({"enum": ["text/xml", "application/json"]}, min_items=1),
                }
            ),
            min_items=1,
        ),
    }
)
ERRORS_SCHEMA = _list_of(_record({"code": {"type": ["integer", "string"]}, "description": TEXT}), min_items=1)


# --- a city with service requests in every state ------------------------------------------------


@dataclass(frozen=True)
class Requests:
    """The numbers of the city's service requests, and the ids of reports that are none."""

    closed: str  # a public report, verified, filed, dispatched, handled, checked and closed
    open: str  # an inspector's report, dispatched
    cancelled: str  # an inspector's report, voided
    pending: str  # a public report the inspector has not verified yet
    rejected: str  # a public report the inspector found nothing of


@pytest.fixture
async def city_requests(intake: ServiceUnderTest) -> Requests:
    async def flush() -> None:
        await intake.deliver_events(await intake.emitted())

    lon, lat = point_in(intake.ctx.city, CELL)
    public = NewReport(ReportSource.PUBLIC, URGENT, "井盖丢失 <danger> & more", lon, lat, None, media_url=MEDIA)
    received, _ = await receive_report(intake.ctx, public)
    await flush()
    intake.clock.advance(hours(1))
    verifier = inspector(received["verifier_id"])
    closed = await verify_report(intake.ctx, verifier, received["id"], confirmed=True, note="seen", photos=[])
    await flush()
    case_id = closed["id"]
    steps = [
        CaseDispatched(department_id=DEPT, dispatched_by="disp1", handling_deadline=DEADLINE, attempt=1),
        CaseAccepted(department_id=DEPT, accepted_by="clerk"),
        CaseHandled(department_id=DEPT, handled_by="clerk", result="replaced the cover"),
        CheckRequested(inspector_id=verifier.inspector_id or "", check_deadline=DEADLINE),
        CheckPassed(inspector_id=verifier.inspector_id or "", note="fine"),
        CaseClosed(closed_by="lead", on_time=True),
    ]
    for step in steps:
        intake.clock.advance(hours(1))
        await intake.deliver(step, case_id)

    intake.clock.advance(hours(1))
    opened = await send(intake, ReportSource.INSPECTOR, cell=OTHER_CELL, category=ORDINARY)
    await flush()
    await intake.deliver(
        CaseDispatched(department_id=DEPT, dispatched_by="disp1", handling_deadline=DEADLINE, attempt=1), opened["id"]
    )
    cancelled = await send(intake, ReportSource.INSPECTOR, cell=CELL, category=ORDINARY)
    await flush()
    await intake.deliver(CaseCancelled(cancelled_by="lead", reason="reported twice"), cancelled["id"])
    pending = await send(intake, ReportSource.PUBLIC, cell=OTHER_CELL, category="01-01-02")
    rejected = await send(intake, ReportSource.PUBLIC, cell=OTHER_CELL, category="01-01-03")
    await verify_report(
        intake.ctx, inspector(rejected["verifier_id"]), rejected["id"], confirmed=False, note="nothing", photos=[]
    )
    await flush()
    return Requests(
        closed=closed["case_number"],
        open=opened["case_number"],
        cancelled=cancelled["case_number"],
        pending=str(pending["id"]),
        rejected=str(rejected["id"]),
    )


@pytest.fixture
async def client(intake: ServiceUnderTest) -> AsyncIterator[httpx.AsyncClient]:
    async with served_mounts(intake) as client:
        yield client


async def read(client: httpx.AsyncClient, path: str, fmt: str, **params: str) -> httpx.Response:
    """``path`` in format ``fmt`` with the query ``params``: a 200, of the format's Content-Type."""
    answer = await client.get(f"{V2}/{path}.{fmt}", params=params)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == CONTENT_TYPES[fmt]
    return answer


def xml_root(answer: httpx.Response, root: str) -> ET.Element:
    """The XML document's root element, checked to be ``root`` after the spec's declaration."""
    assert answer.content.startswith(b'<?xml version="1.0" encoding="utf-8"?>\n')
    element = ET.fromstring(answer.content)
    assert element.tag == root
    assert not element.attrib
    return element


def same_as_json(element: ET.Element, value: Any) -> None:
    """The XML element says what the JSON value says: its text (null: an empty element, a boolean
    ``true``/``false``), or its children in the JSON object's order, or one child per array member."""
    if isinstance(value, dict):
        assert [child.tag for child in element] == list(value), element.tag
        for child, member in zip(element, value.values(), strict=True):
            same_as_json(child, member)
    elif isinstance(value, list):
        assert len(element) == len(value), element.tag
        for child, member in zip(element, value, strict=True):
            same_as_json(child, member)
    else:
        expected = None if value is None else str(value).lower() if isinstance(value, bool) else str(value)
        assert len(element) == 0, element.tag
        assert (element.text or None) == expected, element.tag


async def both_formats(
    client: httpx.AsyncClient,
    path: str,
    schema: Mapping[str, Any],
    root: str,
    fields: tuple[str, ...],
    item: str | None = None,
    **params: str,
) -> Any:
    """The document at ``path`` in JSON (valid against ``schema``, its records' keys ``fields`` in
    order) and in XML (``root``, of ``item`` elements when a list, the same values element by
    element); the JSON value."""
    value = (await read(client, path, "json", **params)).json()
    jsonschema.validate(value, schema)
    records = value if isinstance(value, list) else [value]
    assert all(tuple(record) == fields for record in records)
    element = xml_root(await read(client, path, "xml", **params), root)
    if item is not None:
        assert {child.tag for child in element} <= {item}
    same_as_json(element, value)
    return value


async def assert_error(
    client: httpx.AsyncClient, path: str, expected: int, words: str, *, fmt: str, method: str = "GET", **params: str
) -> None:
    """``path`` answers ``expected`` with Open311's error body, in ``fmt``, saying ``words``."""
    answer = await client.request(method, f"{V2}/{path}", params=params)
    assert answer.status_code == expected, answer.text
    assert answer.headers["content-type"] == CONTENT_TYPES[fmt]
    if fmt == "json":
        body = answer.json()
        jsonschema.validate(body, ERRORS_SCHEMA)
        assert [tuple(error) for error in body] == [ERROR_FIELDS] * len(body)
        assert body[0]["code"] == expected
        descriptions = " ".join(error["description"] for error in body)
    else:
        root = xml_root(answer, "errors")
        assert [error.tag for error in root] == ["error"] * len(root)
        assert all([field.tag for field in error] == list(ERROR_FIELDS) for error in root)
        assert root[0].findtext("code") == str(expected)
        descriptions = " ".join(error.findtext("description") or "" for error in root)
    assert words in descriptions, descriptions


# --- discovery and services ---------------------------------------------------------------------


async def test_discovery_names_the_endpoint_and_both_formats(client: httpx.AsyncClient) -> None:
    found = await both_formats(client, "discovery", DISCOVERY_SCHEMA, "discovery", DISCOVERY_FIELDS)
    (endpoint,) = found["endpoints"]
    assert tuple(endpoint) == ENDPOINT_FIELDS
    assert endpoint["url"] == "http://127.0.0.1:8000/open311/v2"
    assert endpoint["type"] == "test"  # a simulated clock: nothing here is acted upon for real
    assert endpoint["formats"] == ["text/xml", "application/json"]
    assert re.fullmatch(LOCAL_TIME, found["changeset"])
    xml = xml_root(await read(client, "discovery", "xml"), "discovery")
    formats = xml.find("endpoints/endpoint/formats")
    assert formats is not None
    assert [(f.tag, f.text) for f in formats] == [("format", "text/xml"), ("format", "application/json")]


async def test_the_services_are_the_city_categories(client: httpx.AsyncClient, intake: ServiceUnderTest) -> None:
    found = await both_formats(client, "services", SERVICES_SCHEMA, "services", SERVICE_FIELDS, "service")
    city = intake.ctx.city
    assert [s["service_code"] for s in found] == [c.code for c in city.categories]
    cover = next(s for s in found if s["service_code"] == URGENT)
    assert cover == {
        "service_code": URGENT,
        "service_name": "电力井盖",
        "description": "Power manhole cover (Public utilities); urgent, handled around the clock",
        "metadata": False,
        "type": "batch",
        "keywords": "Power manhole cover, Public utilities",
        "group": "公用设施",
    }


async def test_a_service_definition_has_no_attributes(client: httpx.AsyncClient) -> None:
    found = await both_formats(
        client, f"services/{URGENT}", DEFINITION_SCHEMA, "service_definition", ("service_code", "attributes")
    )
    assert found == {"service_code": URGENT, "attributes": []}


@pytest.mark.parametrize("fmt", FORMATS)
async def test_an_unknown_service_is_a_404(client: httpx.AsyncClient, fmt: str) -> None:
    await assert_error(client, f"services/09-09-09.{fmt}", 404, "service_code 09-09-09 not found", fmt=fmt)
    await assert_error(
        client, f"requests.{fmt}", 404, "service_code 09-09-09 not found", fmt=fmt, service_code="09-09-09"
    )


# --- service requests ---------------------------------------------------------------------------


async def test_the_requests_are_the_filed_cases(client: httpx.AsyncClient, city_requests: Requests) -> None:
    found = await both_formats(client, "requests", REQUESTS_SCHEMA, "service_requests", REQUEST_FIELDS, "request")
    # Most recently requested first; reports being verified or rejected are no service requests.
    assert [r["service_request_id"] for r in found] == [
        city_requests.cancelled,
        city_requests.open,
        city_requests.closed,
    ]
    statuses = {r["service_request_id"]: (r["status"], r["status_notes"]) for r in found}
    assert statuses == {
        city_requests.closed: ("closed", "已结案 · Closed: handled and checked on site"),
        city_requests.open: ("open", "已派遣，待部门签收 · Dispatched, to be accepted by the department"),
        city_requests.cancelled: ("closed", "已作废 · Cancelled"),
    }


async def test_a_request_in_full(client: httpx.AsyncClient, city_requests: Requests, intake: ServiceUnderTest) -> None:
    (found,) = await both_formats(
        client, f"requests/{city_requests.closed}", REQUESTS_SCHEMA, "service_requests", REQUEST_FIELDS, "request"
    )
    lon, lat = point_in(intake.ctx.city, CELL)
    cell = intake.ctx.city.cell(CELL)
    assert found == {
        "service_request_id": city_requests.closed,
        "status": "closed",
        "status_notes": "已结案 · Closed: handled and checked on site",
        "service_name": "电力井盖",
        "service_code": URGENT,
        "description": "井盖丢失 <danger> & more",
        "agency_responsible": "演示市城市管理局",
        "service_notice": "派遣后2小时内处置（全天候） · Handled within 2 hours of dispatch, around the clock",
        "requested_datetime": "2026-11-02T09:00:00+08:00",
        "updated_datetime": "2026-11-02T16:00:00+08:00",
        "expected_datetime": "2026-11-03T09:00:00+08:00",
        "address": f"{cell.name}, {intake.ctx.city.community(cell.community_id).name},"
        f" {intake.ctx.city.street(cell.street_id).name}, {intake.ctx.city.district(cell.district_id).name}, 演示市",
        "address_id": CELL,
        "zipcode": None,
        "lat": round(lat, 7),
        "long": round(lon, 7),
        "media_url": MEDIA,
    }
    # Escaped in XML, and read back as sent.
    request = xml_root(await read(client, f"requests/{city_requests.closed}", "xml"), "service_requests")
    assert request.findtext("request/description") == "井盖丢失 <danger> & more"


@pytest.mark.parametrize("fmt", FORMATS)
async def test_a_report_that_is_no_request_is_a_404(
    client: httpx.AsyncClient, city_requests: Requests, fmt: str
) -> None:
    await assert_error(client, f"requests/2026-11-999999.{fmt}", 404, "2026-11-999999 not found", fmt=fmt)
    await assert_error(client, f"requests/{city_requests.pending}.{fmt}", 404, "not found", fmt=fmt)


async def test_the_requests_by_status_service_and_number(client: httpx.AsyncClient, city_requests: Requests) -> None:
    async def numbers(**params: str) -> list[str]:
        found = await both_formats(
            client, "requests", REQUESTS_SCHEMA, "service_requests", REQUEST_FIELDS, "request", **params
        )
        return [r["service_request_id"] for r in found]

    assert await numbers(status="open") == [city_requests.open]
    assert await numbers(status="closed") == [city_requests.cancelled, city_requests.closed]
    assert await numbers(status="OPEN, closed") == [city_requests.cancelled, city_requests.open, city_requests.closed]
    assert await numbers(service_code=URGENT) == [city_requests.closed]
    assert await numbers(service_code=f"{ORDINARY},{URGENT}", status="open") == [city_requests.open]
    # Optional arguments left empty are not given.
    assert len(await numbers(status="", service_code="", start_date="", jurisdiction_id="")) == 3
    # service_request_id overrides the others; numbers the city does not have are left out.
    listed = f"{city_requests.closed}, 2026-11-999999,{city_requests.open}"
    assert await numbers(service_request_id=listed, status="open", service_code=URGENT) == [
        city_requests.open,
        city_requests.closed,
    ]


async def test_the_requests_reported_in_a_range(client: httpx.AsyncClient, city_requests: Requests) -> None:
    async def numbers(**params: str) -> list[str]:
        found = (await read(client, "requests", "json", **params)).json()
        return [r["service_request_id"] for r in found]

    everything = [city_requests.cancelled, city_requests.open, city_requests.closed]
    # The closed one was reported at 09:00 (+08:00), the others at 17:00 the same day.
    assert await numbers(start_date="2026-11-02T10:00:00+08:00") == everything[:2]
    assert await numbers(end_date="2026-11-02T02:00:00Z") == everything[2:]
    assert await numbers(start_date="2026-11-02", end_date="2026-11-02T09:00:00+08:00") == everything[2:]
    # An offset's "+" sent unencoded arrives as a space.
    assert await numbers(start_date="2026-11-02T10:00:00 08:00") == everything[:2]
    # 90 days at most, the first of them given: nothing yet.
    assert await numbers(start_date="2026-07-01T00:00:00Z") == []
    assert await numbers(start_date="2026-08-05T00:00:00Z", end_date="2026-11-03T00:00:00Z") == everything


@pytest.mark.parametrize("fmt", FORMATS)
async def test_bad_dates_are_400(client: httpx.AsyncClient, fmt: str) -> None:
    path = f"requests.{fmt}"
    await assert_error(
        client, path, 400, "start_date 'yesterday' is not a W3C date-time", fmt=fmt, start_date="yesterday"
    )
    await assert_error(client, path, 400, "is not a W3C date-time", fmt=fmt, end_date="2026-11-02T09:00:00")
    await assert_error(client, path, 400, "is not a W3C date-time", fmt=fmt, end_date="2026-02-30")
    await assert_error(
        client, path, 400, "may not span more than 90 days", fmt=fmt, start_date="2026-01-01", end_date="2026-06-01"
    )
    await assert_error(
        client, path, 400, "end_date is before start_date", fmt=fmt, start_date="2026-11-02", end_date="2026-11-01"
    )
    await assert_error(client, path, 400, "status pending: the statuses are open and closed", fmt=fmt, status="pending")
    # FastAPI's own refusal (a value too long) in the spec's shape, a 400 as the spec has it.
    await assert_error(client, path, 400, "start_date", fmt=fmt, start_date="2026-11-02T09:00:00+08:00" * 3)
    await assert_error(
        client,
        f"servicerequestupdates.{fmt}",
        400,
        "may not span",
        fmt=fmt,
        start_date="2026-01-01",
        end_date="2026-06-01",
    )


# --- updates ------------------------------------------------------------------------------------


async def test_the_updates_tell_each_step(client: httpx.AsyncClient, city_requests: Requests) -> None:
    found = await both_formats(
        client,
        "servicerequestupdates",
        UPDATES_SCHEMA,
        "service_request_updates",
        UPDATE_FIELDS,
        "request_update",
    )
    closed = [
        (u["updated_datetime"], u["status"], u["description"])
        for u in found
        if u["service_request_id"] == city_requests.closed
    ]
    assert closed == [
        ("2026-11-02T10:00:00+08:00", "open", "监督员现场核实 · Confirmed on site by the grid inspector"),
        ("2026-11-02T10:00:00+08:00", "open", "已立案 · Filed"),
        (
            "2026-11-02T11:00:00+08:00",
            "open",
            "已派遣至演示市城市管理局 · Dispatched to Demo City Urban Management Bureau",
        ),
        ("2026-11-02T12:00:00+08:00", "open", "演示市城市管理局已签收 · Accepted by Demo City Urban Management Bureau"),
        (
            "2026-11-02T13:00:00+08:00",
            "open",
            "演示市城市管理局已处置 · Handled by Demo City Urban Management Bureau: replaced the cover",
        ),
        ("2026-11-02T14:00:00+08:00", "open", "监督员核查中 · Being checked on site by the grid inspector"),
        ("2026-11-02T15:00:00+08:00", "open", "核查通过 · Checked on site: fixed"),
        ("2026-11-02T16:00:00+08:00", "closed", "已结案 · Closed"),
    ]
    cancelled = [(u["status"], u["description"]) for u in found if u["service_request_id"] == city_requests.cancelled]
    assert cancelled == [("open", "已立案 · Filed"), ("closed", "已作废 · Cancelled")]
    # Oldest first; each update once; none of a report that is no service request.
    assert [u["updated_datetime"] for u in found] == sorted(u["updated_datetime"] for u in found)
    assert len({u["update_id"] for u in found}) == len(found)
    assert {u["service_request_id"] for u in found} == {
        city_requests.closed,
        city_requests.open,
        city_requests.cancelled,
    }
    assert all(u["media_url"] is None for u in found)


async def test_the_updates_since_a_time(client: httpx.AsyncClient, city_requests: Requests) -> None:
    found = (await read(client, "servicerequestupdates", "json", start_date="2026-11-02T15:30:00+08:00")).json()
    assert [(u["service_request_id"], u["description"]) for u in found] == [
        (city_requests.closed, "已结案 · Closed"),
        (city_requests.open, "已立案 · Filed"),
        (city_requests.open, "已派遣至演示市城市管理局 · Dispatched to Demo City Urban Management Bureau"),
        (city_requests.cancelled, "已立案 · Filed"),
        (city_requests.cancelled, "已作废 · Cancelled"),
    ]
    until = (await read(client, "servicerequestupdates", "xml", end_date="2026-11-02T10:00:00+08:00")).content
    assert [u.findtext("description") for u in ET.fromstring(until)] == [
        "监督员现场核实 · Confirmed on site by the grid inspector",
        "已立案 · Filed",
    ]


# --- the mount's errors -------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
async def test_another_jurisdiction_is_a_404(client: httpx.AsyncClient, intake: ServiceUnderTest, fmt: str) -> None:
    for path in ("services", f"services/{URGENT}", "requests", "requests/2026-11-000001", "servicerequestupdates"):
        await assert_error(
            client, f"{path}.{fmt}", 404, "jurisdiction_id sfgov.org not found", fmt=fmt, jurisdiction_id="sfgov.org"
        )
    await read(client, "services", fmt, jurisdiction_id=intake.ctx.city.id)


async def test_a_format_the_server_does_not_speak_is_a_404_in_xml(client: httpx.AsyncClient) -> None:
    await assert_error(client, "services.csv", 404, "no format 'csv'", fmt="xml")
    await assert_error(client, f"requests/{URGENT}.html", 404, "no format 'html'", fmt="xml")
    await assert_error(client, "discovery.json.gz", 404, "no format", fmt="xml")


async def test_the_frameworks_own_errors_are_open311s(client: httpx.AsyncClient) -> None:
    await assert_error(client, "nothing.json", 404, "Not Found", fmt="json")
    await assert_error(client, "services", 404, "Not Found", fmt="xml")
    answer = await client.delete(f"{V2}/services.json")
    assert answer.status_code == 405
    assert answer.headers["allow"] == "GET"
    assert answer.json() == [{"code": 405, "description": "Method Not Allowed"}]
    await assert_error(client, "services.xml", 405, "Method Not Allowed", fmt="xml", method="PUT")
