"""The intake service's HTTP routes (thin: parse, call a handler, format)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Response, status
from pydantic import BaseModel, ConfigDict, Field

from intake import handlers, queries
from intake.domain import CaseStatus, RejectionReason, ReportStatus
from intake.queries import STAFF
from shared.city.geo import Datum, to_wgs84
from shared.core.auth import Principal, Role
from shared.events.catalogue import ReportSource
from shared.service.context import ServiceContext
from shared.web.auth import current_principal, require
from shared.web.bodies import PhotoDigest, ServedDate, Text
from shared.web.context import Context
from shared.web.export import After, ExportRecord, NDJSONResponse, export_responses, ndjson_export
from shared.web.limits import per_address
from shared.web.photos import ensure_photos_exist

router = APIRouter(tags=["intake"])


class Location(BaseModel):
    """A point as the phone reports it; GCJ-02 (Amap, Tencent) and BD-09 (Baidu) are converted."""

    model_config = ConfigDict(extra="forbid")

    lon: float = Field(ge=-180, le=180)
    lat: float = Field(ge=-90, le=90)
    datum: Datum = Datum.WGS84


class ReportIn(BaseModel):
    """A problem found in public space."""

    model_config = ConfigDict(extra="forbid")

    category_code: str = Field(min_length=1, max_length=32, examples=["01-01-04"])
    description: Text = Field(min_length=1, max_length=2000)
    location: Location
    photos: list[PhotoDigest] = Field(default_factory=list, max_length=9)
    client_ref: Text | None = Field(
        default=None, max_length=64, description="the app's own id for this report: resending it is safe"
    )


class InspectorReportIn(ReportIn):
    """A report from a grid inspector, who may also have fixed it on the spot (自行处置)."""

    self_handled: bool = False


class WorkOrderIn(ReportIn):
    """A citizen complaint pushed by the 12345/12319 hotline."""

    external_ref: Text = Field(min_length=1, max_length=64, description="the hotline's work order number")


class VerificationIn(BaseModel):
    """The inspector's answer after going to look (核实)."""

    model_config = ConfigDict(extra="forbid")

    confirmed: bool
    note: Text | None = Field(default=None, max_length=1000)
    photos: list[PhotoDigest] = Field(default_factory=list, max_length=9)


class RejectionIn(BaseModel):
    """Why the report is not filed (不予立案)."""

    model_config = ConfigDict(extra="forbid")

    reason_code: RejectionReason
    reason: Text = Field(min_length=1, max_length=1000)


class ReportOut(BaseModel):
    """A report and what became of it."""

    id: UUID
    status: ReportStatus
    source: ReportSource
    category_code: str
    description: str
    lon: float
    lat: float
    cell_id: str
    street_id: str
    district_id: str
    photos: list[str]
    received_at: datetime
    case_number: str | None
    verifier_id: str | None
    verification_due_at: datetime | None
    # Counted on a provisional calendar year; counted again when its official days are loaded.
    verification_due_provisional: bool
    merged_into: UUID | None
    rejection_code: str | None
    rejection_reason: str | None
    decided_by: str | None
    decided_at: datetime | None
    self_handled: bool
    external_ref: str | None


class CaseOut(BaseModel):
    """A case as the command center sees it."""

    id: UUID
    case_number: str
    status: CaseStatus
    category_code: str
    source: ReportSource
    lon: float
    lat: float
    cell_id: str
    street_id: str
    district_id: str
    reported_at: datetime
    filed_at: datetime
    department_id: str | None
    handling_deadline: datetime | None
    # Counted on a provisional calendar year; counted again when its official days are loaded.
    handling_deadline_provisional: bool
    closed_at: datetime | None
    on_time: bool | None


class ReportRecord(ExportRecord):
    """A report as the batch recount of the indicators reads it: where, what, from whom, and
    whether and when it became a case (立案) against which filing deadline.
    """

    case_number: str | None
    status: ReportStatus
    source: ReportSource
    category_code: str
    cell_id: str
    community_id: str
    street_id: str
    district_id: str
    self_handled: bool
    received_at: datetime
    filed_at: datetime | None
    filing_deadline: datetime | None
    merged_into: UUID | None


class TimelineEntry(BaseModel):
    """One step of a case: what happened, when, who did it and why."""

    at: datetime
    event_type: str
    service: str
    actor: str
    reason: str | None
    details: dict[str, Any]


def _out(row: Mapping[Any, Any]) -> ReportOut:
    return ReportOut.model_validate(dict(row))


async def _receive(
    ctx: ServiceContext, body: ReportIn, source: ReportSource, reporter_id: str | None, response: Response, **extra: Any
) -> ReportOut:
    await ensure_photos_exist(ctx, body.photos)
    lon, lat = to_wgs84(body.location.lon, body.location.lat, body.location.datum)
    row, created = await handlers.receive_report(
        ctx,
        handlers.NewReport(
            source=source,
            category_code=body.category_code,
            description=body.description,
            lon=lon,
            lat=lat,
            reporter_id=reporter_id,
            photos=tuple(body.photos),
            client_ref=body.client_ref,
            **extra,
        ),
    )
    response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    return _out(row)


# A report resent with its key (``client_ref``, a work order number) is answered 200 with the
# report as first received, 201 the first time.
_RESENT: dict[int | str, dict[str, Any]] = {
    200: {"model": ReportOut, "description": "Received before: the same report"}
}


@router.post(
    "/reports",
    status_code=201,
    responses=_RESENT,
    summary="An inspector reports a problem (filed at once when valid)",
)
async def report_as_inspector(
    body: InspectorReportIn,
    response: Response,
    ctx: Context,
    inspector: Annotated[Principal, Depends(require(Role.INSPECTOR))],
) -> ReportOut:
    """Filed at once; ``self_handled`` reports close on the spot. Resending the same
    ``client_ref`` answers 200 with the first report."""
    return await _receive(
        ctx, body, ReportSource.INSPECTOR, inspector.inspector_id, response, self_handled=body.self_handled
    )


@router.post(
    "/hotline/work-orders", status_code=201, responses=_RESENT, summary="The hotline pushes a citizen complaint"
)
async def receive_work_order(
    body: WorkOrderIn, response: Response, ctx: Context, hotline: Annotated[Principal, Depends(require(Role.HOTLINE))]
) -> ReportOut:
    """Goes to the cell's inspector for verification first. The work order number makes resends safe."""
    body_ref = body.client_ref or body.external_ref
    return await _receive(
        ctx,
        body.model_copy(update={"client_ref": body_ref}),
        ReportSource.HOTLINE,
        hotline.username,
        response,
        external_ref=body.external_ref,
    )


@router.post(
    "/public/reports",
    status_code=201,
    responses=_RESENT,
    summary="A citizen reports a problem (no account needed)",
    dependencies=[Depends(per_address(lambda rules: rules.public_reports_per_address, "public reports"))],
)
async def report_as_public(body: ReportIn, response: Response, ctx: Context) -> ReportOut:
    """Goes to the cell's inspector for verification first."""
    return await _receive(ctx, body, ReportSource.PUBLIC, None, response)


@router.post("/video/detections", status_code=201, responses=_RESENT, summary="Video detection reports a problem")
async def receive_detection(
    body: ReportIn, response: Response, ctx: Context, system: Annotated[Principal, Depends(require(Role.VIDEO))]
) -> ReportOut:
    """Waits for an operator to file or reject it (detections have false positives)."""
    return await _receive(ctx, body, ReportSource.VIDEO, system.username, response)


@router.get("/verifications", summary="The calling inspector's open verification tasks")
async def my_verifications(
    ctx: Context, inspector: Annotated[Principal, Depends(require(Role.INSPECTOR))]
) -> list[ReportOut]:
    """Oldest first."""
    return [_out(row) for row in await queries.verification_tasks(ctx, inspector)]


@router.post("/reports/{report_id}/verification", summary="The inspector answers a verification task")
async def verify(
    report_id: UUID,
    body: VerificationIn,
    ctx: Context,
    inspector: Annotated[Principal, Depends(require(Role.INSPECTOR))],
) -> ReportOut:
    """Confirmed: the report is filed. Not confirmed: it is rejected."""
    await ensure_photos_exist(ctx, body.photos)
    row = await handlers.verify_report(
        ctx, inspector, report_id, confirmed=body.confirmed, note=body.note, photos=body.photos
    )
    return _out(row)


@router.get("/reports", summary="Reports by status (the operator's work queue)")
async def list_reports(
    ctx: Context,
    _staff: Annotated[Principal, Depends(require(*STAFF))],
    status_: Annotated[ReportStatus, Query(alias="status")] = ReportStatus.AWAITING_REVIEW,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[ReportOut]:
    """Oldest first."""
    return [_out(row) for row in await queries.reports_by_status(ctx, status_, limit)]


@router.get("/reports/{report_id}", summary="One report")
async def get_report(
    report_id: UUID, ctx: Context, caller: Annotated[Principal, Depends(current_principal)]
) -> ReportOut:
    """Staff see every report; an inspector or a hotline system sees its own."""
    return _out(await queries.visible_report(ctx, report_id, caller))


@router.post("/reports/{report_id}/file", summary="An operator files a report (立案)")
async def file_report(
    report_id: UUID, ctx: Context, operator: Annotated[Principal, Depends(require(Role.OPERATOR, Role.SHIFT_LEAD))]
) -> ReportOut:
    """For reports waiting for review or verification; 409 otherwise."""
    return _out(await handlers.file_report(ctx, operator, report_id))


@router.post("/reports/{report_id}/reject", summary="An operator declines to file a report (不予立案)")
async def reject_report(
    report_id: UUID,
    body: RejectionIn,
    ctx: Context,
    operator: Annotated[Principal, Depends(require(Role.OPERATOR, Role.SHIFT_LEAD))],
) -> ReportOut:
    """For reports not yet filed; 409 otherwise."""
    return _out(await handlers.reject_report(ctx, operator, report_id, body.reason_code, body.reason))


def _record(row: Mapping[Any, Any]) -> ReportRecord:
    filed_at = row["decided_at"] if row["status"] == ReportStatus.FILED else None
    return ReportRecord.model_validate({**row, "filed_at": filed_at})


@router.get(
    "/export/reports",
    summary="Every report and what became of it, as NDJSON (for the batch recount of the indicators)",
    response_class=NDJSONResponse,
    responses=export_responses(ReportRecord),
)
async def export_reports(
    ctx: Context, _lead: Annotated[Principal, Depends(require(Role.SHIFT_LEAD))], after: After = None
) -> NDJSONResponse:
    """Streamed in id order, one report per line; the command center only."""

    async def page(after: UUID | None, limit: int) -> list[ReportRecord]:
        return [_record(row) for row in await queries.export_page(ctx, after, limit)]

    return await ndjson_export(page, after)


class CasePageOut(BaseModel):
    """A page of a case search, newest filed first."""

    items: list[CaseOut]
    next: str | None = Field(description="give it as ``after`` for the next page; null on the last page")


# Ids of the city's reference data (a category code, a district, a department): the city says
# which exist, this only keeps a request's text to the characters ids are made of.
_ID = r"^[0-9A-Za-z_.-]+$"


@router.get("/cases", summary="Search the case file: by number, status, category, place, department, source, days")
async def search_cases(
    ctx: Context,
    caller: Annotated[Principal, Depends(current_principal)],
    number: Annotated[
        str | None,
        Query(max_length=32, pattern=r"^[0-9A-Za-z-]+$", description="a case number, or its beginning"),
    ] = None,
    statuses: Annotated[
        list[CaseStatus] | None, Query(alias="status", max_length=len(CaseStatus), description="any of these")
    ] = None,
    category: Annotated[
        str | None, Query(max_length=32, pattern=_ID, description="a category's code, or a major class's")
    ] = None,
    district: Annotated[str | None, Query(max_length=32, pattern=_ID)] = None,
    department: Annotated[str | None, Query(max_length=64, pattern=_ID)] = None,
    source: ReportSource | None = None,
    filed_from: Annotated[ServedDate | None, Query(description="filed on this day (the city's) or later")] = None,
    filed_to: Annotated[ServedDate | None, Query(description="filed on this day (the city's) or before")] = None,
    after: Annotated[str | None, Query(max_length=200, description="the ``next`` of the page before")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> CasePageOut:
    """Newest filed first, in pages of ``limit``. Each caller finds the cases it may see one by
    one: departments their own, inspectors those in their cells, staff all. 422 for a category,
    district or department the city does not have."""
    search = queries.CaseSearch.of(
        ctx.city,
        number=number,
        statuses=statuses or (),
        category=category,
        district_id=district,
        department_id=department,
        source=source,
        filed_from=filed_from,
        filed_to=filed_to,
    )
    position = None if after is None else queries.CasePosition.of_token(after)
    rows, following = await queries.search_cases(ctx, caller, search, position, limit)
    return CasePageOut(
        items=[CaseOut.model_validate(dict(row)) for row in rows],
        next=None if following is None else following.token(),
    )


@router.get("/cases/{case_id}", summary="A case as the command center sees it")
async def get_case(case_id: UUID, ctx: Context, caller: Annotated[Principal, Depends(current_principal)]) -> CaseOut:
    """Departments see their own cases, inspectors those in their cells."""
    return CaseOut.model_validate(dict(await queries.visible_case(ctx, case_id, caller)))


@router.get("/cases/{case_id}/timeline", summary="Every step of a case: who, when and why")
async def get_timeline(
    case_id: UUID, ctx: Context, caller: Annotated[Principal, Depends(current_principal)]
) -> list[TimelineEntry]:
    """In the order the steps happened, from every service. Staff also see the steps of reports
    that never became cases (rejected, merged)."""
    return [TimelineEntry.model_validate(dict(row)) for row in await queries.visible_timeline(ctx, case_id, caller)]
