"""The city's cases as Open311 service requests, and their steps as request updates.

A service request is a filed case: its ``service_request_id`` is the case number. A report that
is still being verified, or was rejected, is no service request (``tokens/{token}`` tells its
app what became of it), and a report merged into an open case is that case's request.

Fields and their order (what ``intake.open311.formats`` writes, element after element):

- a request, https://wiki.open311.org/GeoReport_v2 "GET Service Requests" (the same for "GET
  Service Request"): service_request_id, status, status_notes, service_name, service_code,
  description, agency_responsible, service_notice, requested_datetime, updated_datetime,
  expected_datetime, address, address_id, zipcode, lat, long, media_url;
- an update, FixMyStreet's extension
  https://github.com/mysociety/fixmystreet/wiki/Open311-FMS---Proposed-differences-to-Open311
  "Get Service Request Updates": update_id, service_request_id, status, updated_datetime,
  description, media_url.

Nothing of the citizen is in either: no contact (intake keeps it apart), no names of the staff
who acted, no inspectors' notes; the notes are the city's words for each step.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Select, select
from sqlalchemy.engine import RowMapping

from intake.domain import ENDED_CASE_STATUSES, CaseStatus
from intake.models import cases, reports, timeline
from shared.city.model import Category, City
from shared.events.catalogue import (
    CaseAccepted,
    CaseCancelled,
    CaseClosed,
    CaseDispatched,
    CaseFiled,
    CaseHandled,
    CaseQueuedForCoordination,
    CaseReopened,
    CaseResumed,
    CaseReturned,
    CaseSuspended,
    CheckFailed,
    CheckPassed,
    CheckRequested,
    ExtensionApproved,
    ReportVerified,
)
from shared.service.context import ServiceContext

# The spec's "Response Volume": at most 1000 requests an answer; the updates likewise.
MOST_PER_ANSWER = 1000

OPEN = "open"
CLOSED = "closed"

# What a case's status means to the citizen (中文 · English, as the console shows the city's terms).
STATUS_NOTES: Mapping[CaseStatus, str] = {
    CaseStatus.FILED: "已立案，待派遣 · Filed, to be dispatched",
    CaseStatus.COORDINATION: "已立案，权属待确定 · Filed; the department responsible is being determined",
    CaseStatus.DISPATCHED: "已派遣，待部门签收 · Dispatched, to be accepted by the department",
    CaseStatus.ACCEPTED: "部门已签收，处置中 · Accepted by the department, being handled",
    CaseStatus.RETURNED: "部门退回，待重新派遣 · Returned by the department, to be dispatched again",
    CaseStatus.SUSPENDED: "已挂起 · Suspended",
    CaseStatus.HANDLED: "部门已处置，待核查 · Handled by the department, to be checked on site",
    CaseStatus.CHECKING: "监督员核查中 · Being checked on site by the grid inspector",
    CaseStatus.REWORK: "核查未通过，返工中 · Not fixed on checking, being handled again",
    CaseStatus.CLOSED: "已结案 · Closed: handled and checked on site",
    CaseStatus.CANCELLED: "已作废 · Cancelled",
}

# The steps of a case a citizen is told of, by event type; the others (deadlines, supervision,
# extension requests, callbacks, merges) are the city's own business.
_CLOSING = frozenset({CaseClosed.TYPE, CaseCancelled.TYPE})
_STEPS: Mapping[str, str] = {
    ReportVerified.TYPE: "监督员现场核实 · Confirmed on site by the grid inspector",
    CaseFiled.TYPE: "已立案 · Filed",
    CaseQueuedForCoordination.TYPE: "权属待确定 · The department responsible is being determined",
    CaseDispatched.TYPE: "已派遣至{name} · Dispatched to {name_en}",
    CaseAccepted.TYPE: "{name}已签收 · Accepted by {name_en}",
    CaseReturned.TYPE: "{name}退回，待重新派遣 · Returned by {name_en}, to be dispatched again",
    ExtensionApproved.TYPE: "处置期限已延长 · More time granted for handling",
    CaseSuspended.TYPE: "已挂起 · Suspended",
    CaseResumed.TYPE: "已恢复处置 · Resumed",
    CaseHandled.TYPE: "{name}已处置 · Handled by {name_en}",
    CheckRequested.TYPE: "监督员核查中 · Being checked on site by the grid inspector",
    CheckPassed.TYPE: "核查通过 · Checked on site: fixed",
    CheckFailed.TYPE: "核查未通过，返工 · Not fixed on checking: sent back to the department",
    CaseReopened.TYPE: "重新处置 · Reopened: to be handled again",
    CaseClosed.TYPE: "已结案 · Closed",
    CaseCancelled.TYPE: "已作废 · Cancelled",
}

_REQUESTS = select(
    cases.c.case_number,
    cases.c.status,
    cases.c.category_code,
    cases.c.department_id,
    cases.c.reported_at,
    cases.c.updated_at,
    cases.c.closed_at,
    cases.c.handling_deadline,
    cases.c.cell_id,
    cases.c.lon,
    cases.c.lat,
    reports.c.description,
    reports.c.media_url,
).select_from(cases.join(reports, reports.c.id == cases.c.id))

_UPDATES = select(
    timeline.c.event_id,
    timeline.c.event_type,
    timeline.c.at,
    timeline.c.details,
    cases.c.case_number,
).select_from(timeline.join(cases, cases.c.id == timeline.c.case_id))


@dataclass(frozen=True)
class RequestSearch:
    """What ``GET requests`` asks for: by number, which overrides the rest (as the spec says), or
    reported within ``[start, end]`` and of the given services and Open311 statuses (all when
    empty)."""

    numbers: Sequence[str] = ()
    start: datetime | None = None
    end: datetime | None = None
    service_codes: Collection[str] = ()
    statuses: Collection[str] = ()

    def conditions(self) -> list[ColumnElement[bool]]:
        """The search as conditions on the case file's rows."""
        if self.numbers:
            return [cases.c.case_number.in_(sorted(set(self.numbers)))]
        found: list[ColumnElement[bool]] = []
        if self.start is not None:
            found.append(cases.c.reported_at >= self.start)
        if self.end is not None:
            found.append(cases.c.reported_at <= self.end)
        if self.service_codes:
            found.append(cases.c.category_code.in_(sorted(self.service_codes)))
        if set(self.statuses) == {CLOSED}:
            found.append(cases.c.status.in_(sorted(ENDED_CASE_STATUSES)))
        elif set(self.statuses) == {OPEN}:
            found.append(cases.c.status.not_in(sorted(ENDED_CASE_STATUSES)))
        return found


async def find_requests(ctx: ServiceContext, search: RequestSearch) -> list[dict[str, Any]]:
    """The service requests ``search`` finds, most recently requested first, at most
    ``MOST_PER_ANSWER``."""
    query = (
        _REQUESTS.where(*search.conditions())
        .order_by(cases.c.reported_at.desc(), cases.c.id.desc())
        .limit(MOST_PER_ANSWER)
    )
    return [service_request(ctx.city, row) for row in await _all(ctx, query)]


async def find_updates(ctx: ServiceContext, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """The updates of every service request that happened within ``[start, end]``, oldest first,
    at most ``MOST_PER_ANSWER``: a client with more to read asks again from the last one's time
    (and knows the ones it has by their ``update_id``)."""
    query = (
        _UPDATES.where(timeline.c.at >= start, timeline.c.at <= end, timeline.c.event_type.in_(sorted(_STEPS)))
        .order_by(timeline.c.at, timeline.c.seq)
        .limit(MOST_PER_ANSWER)
    )
    found = (request_update(ctx.city, row) for row in await _all(ctx, query))
    return [update for update in found if update is not None]


def service_request(city: City, row: Mapping[Any, Any]) -> dict[str, Any]:
    """A case file's row (with its report's description and media) as a service request, in the
    spec's order."""
    zone = ZoneInfo(city.timezone)
    status = CaseStatus(row["status"])
    category = _category(city, row["category_code"])
    department = _department_name(city, row["department_id"])
    # "For requests with status=closed, this will be the date the request was closed."
    updated = row["closed_at"] if status is CaseStatus.CLOSED and row["closed_at"] else row["updated_at"]
    return {
        "service_request_id": row["case_number"],
        "status": CLOSED if status in ENDED_CASE_STATUSES else OPEN,
        "status_notes": STATUS_NOTES[status],
        "service_name": None if category is None else category.name,
        "service_code": row["category_code"],
        "description": row["description"] or None,
        "agency_responsible": None if department is None else department[0],
        "service_notice": None if category is None else service_notice(category),
        "requested_datetime": row["reported_at"].astimezone(zone),
        "updated_datetime": updated.astimezone(zone),
        "expected_datetime": None if row["handling_deadline"] is None else row["handling_deadline"].astimezone(zone),
        "address": address(city, row["cell_id"]),
        "address_id": row["cell_id"],
        "zipcode": None,
        "lat": round(row["lat"], 7),
        "long": round(row["lon"], 7),
        "media_url": row["media_url"],
    }


def request_update(city: City, row: Mapping[Any, Any]) -> dict[str, Any] | None:
    """A step of a case's timeline as a request update, in the extension's order; None for a step
    the citizen is not told of (an inspector who found nothing: the report never became a case)."""
    details: Mapping[str, Any] = row["details"]
    if row["event_type"] == ReportVerified.TYPE and not details.get("confirmed"):
        return None
    name, name_en = _department_name(city, details.get("department_id")) or ("", "")
    description = _STEPS[row["event_type"]].format(name=name, name_en=name_en)
    if row["event_type"] == CaseHandled.TYPE and details.get("result"):
        # What the department did is what the citizen asked to hear: the hotline's reply says it too.
        description = f"{description}: {details['result']}"
    return {
        "update_id": str(row["event_id"]),
        "service_request_id": row["case_number"],
        "status": CLOSED if row["event_type"] in _CLOSING else OPEN,
        "updated_datetime": row["at"].astimezone(ZoneInfo(city.timezone)),
        "description": description,
        # The city's photos are for its staff (the photo routes need a caller): none is public.
        "media_url": None,
    }


def service_notice(category: Category) -> str:
    """What the city commits to for a service: the department's time to handle it once dispatched."""
    hours = f"{category.handling / 60:g}"
    if category.time_basis == "calendar":
        return f"派遣后{hours}小时内处置（全天候） · Handled within {hours} hours of dispatch, around the clock"
    return f"派遣后{hours}个工作小时内处置 · Handled within {hours} working hours of dispatch"


def address(city: City, cell_id: str) -> str:
    """Where a case is, from the most specific place to the most general as the spec asks: its
    grid cell, community, street, district and city."""
    try:
        cell = city.cell(cell_id)
        places = (
            cell.name,
            city.community(cell.community_id).name,
            city.street(cell.street_id).name,
            city.district(cell.district_id).name,
        )
    except KeyError:  # a cell a later version of the city's grid no longer has
        return f"{cell_id}, {city.name}"
    return ", ".join((*places, city.name))


def _category(city: City, code: str) -> Category | None:
    try:
        return city.category(code)
    except KeyError:  # a category the city has since dropped from its catalogue
        return None


def _department_name(city: City, department_id: str | None) -> tuple[str, str] | None:
    if department_id is None:
        return None
    try:
        department = city.department(department_id)
    except KeyError:
        return department_id, department_id
    return department.name, department.name_en


async def _all(ctx: ServiceContext, query: Select[Any]) -> Sequence[RowMapping]:
    async with ctx.store.engine.connect() as connection:
        rows: Sequence[RowMapping] = (await connection.execute(query)).mappings().all()
    return rows
