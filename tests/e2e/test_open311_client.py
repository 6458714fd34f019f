"""A real Open311 client from PyPI, ``georeport`` (https://pypi.org/project/georeport/), reads a
live city on 127.0.0.1 as a citizen app or a 311 tool would: the services, a service's
definition, the requests by range, status, service and number, and one request, in JSON and in
XML (the client parses XML with xmltodict). The client is synchronous (``requests``): it runs in a
thread while the city serves in the test's event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import pytest_asyncio
import requests
from georeport import GeoReport

from services.runtime.local import serve
from shared.city.loader import load_city
from shared.core.clock import SimulatedClock
from tests.e2e.harness import PNG, START, Harness, city_settings

pytestmark = pytest.mark.asyncio(loop_scope="module")

STREET_VENDING = "02-05-01"  # routed to the street office of the place
STREET_USER = "dept-street"
FORMATS = ("json", "xml")


@dataclass(frozen=True)
class LiveCity:
    """The city's Open311 endpoint, its service codes, and a closed and an open request in it."""

    endpoint: str
    jurisdiction: str
    service_codes: list[str]
    closed: str
    open: str


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def city(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[LiveCity]:
    """An embedded city behind real HTTP, with a request taken to closure and one dispatched."""
    settings = city_settings("embedded", tmp_path_factory.mktemp("open311"))
    clock = SimulatedClock(START)
    async with serve(settings, clock) as url, httpx.AsyncClient(base_url=url, timeout=30) as client:
        harness = Harness(client, clock, load_city(settings.city_dir))
        await harness.eventually("shiftlead", "/readyz", lambda body: body.get("ready") is True)
        closed = await _closed_case(harness)
        opened = await harness.report(STREET_VENDING)
        await harness.case_status(opened["id"], "dispatched")
        codes = [category.code for category in harness.city.categories]
        yield LiveCity(f"{url}/open311/v2", harness.city.id, codes, closed, opened["case_number"])


async def _closed_case(city: Harness) -> str:
    report = await city.report(STREET_VENDING)
    await city.case_status(report["id"], "dispatched")
    await city.eventually(STREET_USER, "/handling/inbox", lambda body: any(t["id"] == report["id"] for t in body))
    await city.post(STREET_USER, f"/handling/cases/{report['id']}/accept")
    await city.call(
        STREET_USER,
        "POST",
        f"/handling/cases/{report['id']}/report",
        data={"result": "cleared"},
        files=[("photos", ("after.png", PNG, "image/png"))],
    )
    await city.eventually("inspector1", "/closure/checks", lambda body: any(c["id"] == report["id"] for c in body))
    await city.post("inspector1", f"/closure/cases/{report['id']}/check", {"passed": True, "note": "gone"})
    await city.case_status(report["id"], "closed")
    number: str = report["case_number"]
    return number


def client_of(city: LiveCity, fmt: str, jurisdiction: str | None = None) -> GeoReport:
    return GeoReport(city.endpoint, jurisdiction=jurisdiction or city.jurisdiction, output_format=fmt)


def as_list(found: Any) -> list[dict[str, Any]]:
    """The client's list: from XML, xmltodict makes a single element a dict, not a list of one."""
    return list(found) if isinstance(found, list) else [found]


@pytest.mark.parametrize("fmt", FORMATS)
async def test_the_client_reads_the_services(city: LiveCity, fmt: str) -> None:
    client = client_of(city, fmt)
    services = await asyncio.to_thread(client.get_service_list)
    assert [service["service_code"] for service in services] == city.service_codes
    vending = next(service for service in services if service["service_code"] == STREET_VENDING)
    assert vending["service_name"] == "流动摊贩"
    assert vending["type"] == "batch"
    assert str(vending["metadata"]).lower() == "false"
    definition = await asyncio.to_thread(client.get_service_definition, STREET_VENDING)
    assert definition["service_code"] == STREET_VENDING
    assert not definition["attributes"]  # [] in JSON, an empty element (None) in XML


@pytest.mark.parametrize("fmt", FORMATS)
async def test_the_client_reads_the_requests(city: LiveCity, fmt: str) -> None:
    client = client_of(city, fmt)
    found = as_list(await asyncio.to_thread(client.get_service_requests))
    assert [r["service_request_id"] for r in found] == [city.open, city.closed]
    assert {r["service_request_id"]: r["status"] for r in found} == {city.closed: "closed", city.open: "open"}
    assert all(r["requested_datetime"].endswith("+08:00") for r in found)

    by_status = as_list(await asyncio.to_thread(client.get_service_requests, status="closed"))
    assert [r["service_request_id"] for r in by_status] == [city.closed]
    in_range = as_list(
        await asyncio.to_thread(
            client.get_service_requests,
            service_code=STREET_VENDING,
            start_date="2026-11-16T00:00:00+08:00",
            end_date="2026-11-17T00:00:00+08:00",
        )
    )
    assert {r["service_request_id"] for r in in_range} == {city.closed, city.open}
    by_number = as_list(
        await asyncio.to_thread(client.get_service_requests, service_request_id=f"{city.closed},{city.open}")
    )
    assert {r["service_request_id"] for r in by_number} == {city.closed, city.open}

    one = await asyncio.to_thread(client.get_service_request, city.closed)
    assert one["service_request_id"] == city.closed
    assert one["status"] == "closed"
    assert one["agency_responsible"]  # the street office that handled it
    assert one["service_code"] == STREET_VENDING


def status_of(refused: pytest.ExceptionInfo[requests.HTTPError]) -> int:
    answer = refused.value.response
    assert answer is not None
    return answer.status_code


@pytest.mark.parametrize("fmt", FORMATS)
async def test_the_client_hears_the_spec_errors(city: LiveCity, fmt: str) -> None:
    elsewhere = client_of(city, fmt, jurisdiction="sfgov.org")
    with pytest.raises(requests.HTTPError) as refused:
        await asyncio.to_thread(elsewhere.get_service_list)
    assert status_of(refused) == 404
    client = client_of(city, fmt)
    with pytest.raises(requests.HTTPError) as refused:
        await asyncio.to_thread(client.get_service_request, "2026-11-999999")
    assert status_of(refused) == 404
    with pytest.raises(requests.HTTPError) as refused:
        await asyncio.to_thread(
            client.get_service_requests, start_date="2026-01-01T00:00:00Z", end_date="2026-11-01T00:00:00Z"
        )
    assert status_of(refused) == 400  # more than 90 days
