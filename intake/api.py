"""The intake service's HTTP routes (thin: parse, call a handler, format)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field, model_validator

from intake import delivery, handlers, queries
from intake.domain import CaseStatus, RejectionReason, ReportStatus
from intake.queries import STAFF
from shared.city.geo import Datum, to_wgs84
from shared.core.auth import Principal, Role
from shared.core.errors import NotFound
from shared.events.catalogue import CallbackVerdict, ReportSource
from shared.service.context import ServiceContext
from shared.web.auth import current_principal, require
from shared.web.bodies import PhotoDigest, ServedDate, Text
from shared.web.context import Context
from shared.web.export import After, ExportRecord, NDJSONResponse, export_responses, ndjson_export
from shared.web.limits import per_address
from shared.web.paging import MOST_PER_PAGE, NEXT_PAGE_LINK, PageAfter, paged
from shared.web.photos import ensure_photos_exist
from shared.web.signed import SignedBody, SignedByHotline, signed_request_docs

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


class ContactIn(BaseModel):
    """How to reach the citizen for the hotline's callback: kept apart from the report, and in no
    answer, event, export or timeline."""

    model_config = ConfigDict(extra="forbid")

    # Out of every repr: a report logged or shown in a traceback must not carry them.
    name: Text | None = Field(default=None, min_length=1, max_length=50, repr=False)
    phone: str | None = Field(default=None, max_length=32, pattern=r"^\+?[0-9][0-9 -]{2,30}$", repr=False)


class SignedWorkOrderIn(WorkOrderIn):
    """A work order the hotline signed: what its account would send, and the citizen's contact."""

    contact: ContactIn | None = None


class CallbackIn(BaseModel):
    """The result of the hotline's callback to the citizen (回访) on a closed case it handed over."""

    model_config = ConfigDict(extra="forbid")

    work_order: Text = Field(min_length=1, max_length=64, description="the hotline's work order number")
    verdict: CallbackVerdict
    note: Text | None = Field(default=None, max_length=1000)
    callback_id: Text | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="the hotline's own number for this callback: a resend under it is the same callback,"
        " whatever its nonce (an app-key sender signs each attempt with a new one)",
    )


class CallbackOut(BaseModel):
    """A callback as recorded."""

    id: UUID
    case_id: UUID
    hotline_id: str
    work_order: str
    verdict: CallbackVerdict
    note: str | None
    callback_id: str | None
    received_at: datetime


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
    # The latest verdict of the hotline's callbacks on the case (回访), and when it came: for the
    # batch recount of satisfaction.
    callback_verdict: CallbackVerdict | None
    callback_at: datetime | None


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
    ctx: ServiceContext,
    body: ReportIn,
    source: ReportSource,
    reporter_id: str | None,
    response: Response,
    signed: handlers.SignedNonce | None = None,
    **extra: Any,
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
        signed,
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
    """Goes to the cell's inspector for verification first. The work order number makes resends
    safe. An account the city's integrations.yaml names for a hotline reports as that hotline."""
    configured = ctx.integrations.hotline_of_account(hotline.username)
    body_ref = body.client_ref or body.external_ref
    return await _receive(
        ctx,
        body.model_copy(update={"client_ref": body_ref}),
        ReportSource.HOTLINE,
        hotline.username if configured is None else configured.id,
        response,
        external_ref=body.external_ref,
    )


def _nonce(signed: SignedBody) -> handlers.SignedNonce:
    return handlers.SignedNonce(signed.hotline.id, signed.signed.scheme, signed.signed.nonce, signed.body_sha256)


@router.post(
    "/hotline/{hotline_id}/work-orders",
    status_code=201,
    responses=_RESENT,
    summary="The hotline pushes a citizen complaint, signed (no token)",
    openapi_extra=signed_request_docs(SignedWorkOrderIn),
)
async def receive_signed_work_order(signed: SignedByHotline, response: Response, ctx: Context) -> ReportOut:
    """Signed as the city's integrations.yaml says for this hotline (Standard Webhooks, or app-key
    with HMAC-SHA256 or HMAC-SM3), checked before the body is read as JSON. Goes to the cell's
    inspector for verification first; the work order number makes resends safe, and a Standard
    Webhooks retry (the same webhook-id and body) is answered as the first time. The citizen's
    ``contact`` is kept apart and never answered back. 401: an unknown hotline, a missing or bad
    signature, a stale timestamp; 409: a replayed nonce."""
    body = signed.parsed(SignedWorkOrderIn)
    contact = None if body.contact is None else handlers.Contact(body.contact.name, body.contact.phone)
    return await _receive(
        ctx,
        body.model_copy(update={"client_ref": body.client_ref or body.external_ref}),
        ReportSource.HOTLINE,
        signed.hotline.id,
        response,
        _nonce(signed),
        external_ref=body.external_ref,
        contact=contact,
    )


@router.post(
    "/hotline/{hotline_id}/callbacks",
    status_code=201,
    responses={200: {"model": CallbackOut, "description": "Received before: the same callback"}},
    summary="The hotline pushes the citizen's verdict on a closed case (回访), signed (no token)",
    openapi_extra=signed_request_docs(CallbackIn),
)
async def receive_callback(signed: SignedByHotline, response: Response, ctx: Context) -> CallbackOut:
    """Signed as the work orders are. For a work order of this hotline (404 otherwise) whose case
    is closed (409 otherwise); the city's rules decide whether an unsatisfied verdict reopens it.
    The same callback sent again under its nonce (a Standard Webhooks retry) or its ``callback_id``
    (an app-key sender's retry, under a new nonce) answers 200."""
    body = signed.parsed(CallbackIn)
    row, created = await handlers.record_callback(
        ctx,
        signed.hotline,
        handlers.NewCallback(body.work_order, body.verdict, body.note, body.callback_id),
        _nonce(signed),
    )
    response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    return CallbackOut.model_validate(dict(row))


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


@router.get("/verifications", summary="The calling inspector's open verification tasks", responses=NEXT_PAGE_LINK)
async def my_verifications(
    request: Request,
    response: Response,
    ctx: Context,
    inspector: Annotated[Principal, Depends(require(Role.INSPECTOR))],
    after: PageAfter,
    limit: Annotated[int, Query(ge=1, le=MOST_PER_PAGE)] = MOST_PER_PAGE,
) -> list[ReportOut]:
    """Oldest first, in pages: a ``Link`` header names the next. A page holds all of an ordinary
    day's tasks by default, as the phone app reads the list whole; after a flood of hotline work
    orders, it holds the oldest and says where the rest are, never an unbounded answer."""
    page = await queries.verification_tasks(ctx, inspector, limit, after)
    return [_out(row) for row in paged(request, response, page)]


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


@router.get("/reports", summary="Reports by status (the operator's work queue)", responses=NEXT_PAGE_LINK)
async def list_reports(
    request: Request,
    response: Response,
    ctx: Context,
    _staff: Annotated[Principal, Depends(require(*STAFF))],
    after: PageAfter,
    status_: Annotated[ReportStatus, Query(alias="status")] = ReportStatus.AWAITING_REVIEW,
    limit: Annotated[int, Query(ge=1, le=MOST_PER_PAGE)] = 100,
) -> list[ReportOut]:
    """Oldest first (ties by id), in pages of ``limit``: a ``Link`` header names the next."""
    page = await queries.reports_by_status(ctx, status_, limit, after)
    return [_out(row) for row in paged(request, response, page)]


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


@router.get(
    "/cases",
    summary="Search the case file: by number, status, category, place, department, source, days",
    responses=NEXT_PAGE_LINK,
)
async def search_cases(
    request: Request,
    response: Response,
    ctx: Context,
    caller: Annotated[Principal, Depends(current_principal)],
    after: PageAfter,
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
    page = await queries.search_cases(ctx, caller, search, limit, after)
    return CasePageOut(
        items=[CaseOut.model_validate(dict(row)) for row in paged(request, response, page)],
        next=None if page.following is None else page.following.token(),
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


# --- deliveries to other systems (intake.delivery): what waits, what was given up on ---------

# An endpoint's name: ``hotline:<id>`` or ``department:<id>``.
_ENDPOINT_NAME = r"^(hotline|department):[0-9A-Za-z_.-]{1,64}$"
EndpointName = Annotated[str, Field(max_length=100, pattern=_ENDPOINT_NAME, examples=["hotline:12345"])]


class DeliveryOut(BaseModel):
    """A message for another system (a hotline, a department's system) and how its delivery stands."""

    id: UUID = Field(description="the message id: its Idempotency-Key (and webhook-id) on every attempt")
    endpoint: str
    case_id: UUID
    kind: str
    state: delivery.DeliveryState
    attempts: int
    created_at: datetime
    next_attempt_at: datetime = Field(description="when a pending message is due, unless one of its case is ahead")
    first_attempt_at: datetime | None
    last_attempt_at: datetime | None
    last_status: int | None
    last_error: str | None
    dead_at: datetime | None
    dead_reason: str | None
    discarded_at: datetime | None
    discarded_by: str | None = Field(description="the account (or, from the command line, the user) that discarded it")
    discard_reason: str | None


class RedriveIn(BaseModel):
    """Which dead messages to send again: of an endpoint, of a case, or by id (together: each narrows)."""

    model_config = ConfigDict(extra="forbid")

    endpoint: EndpointName | None = None
    case_id: UUID | None = None
    ids: list[UUID] = Field(default_factory=list, max_length=500)

    @model_validator(mode="after")
    def _names_something(self) -> RedriveIn:
        if self.endpoint is None and self.case_id is None and not self.ids:
            raise ValueError("name the dead messages to send again: endpoint, case_id or ids")
        return self

    def selection(self) -> delivery.Selection:
        """The deliveries the body names."""
        return delivery.Selection(self.endpoint, self.case_id, tuple(self.ids))


class DiscardIn(BaseModel):
    """Dead messages to give up on for good, named one by one, and why (kept with each)."""

    model_config = ConfigDict(extra="forbid")

    ids: list[UUID] = Field(min_length=1, max_length=500)
    reason: Text = Field(min_length=1, max_length=1000, examples=["the hotline closed this work order by phone"])


def _delivery_out(row: Mapping[Any, Any]) -> DeliveryOut:
    return DeliveryOut.model_validate({**row, "id": row["message_id"]})


@router.get(
    "/deliveries",
    summary="Messages for other systems still to deliver, given up on (dead), or discarded",
    responses=NEXT_PAGE_LINK,
)
async def list_deliveries(
    request: Request,
    response: Response,
    ctx: Context,
    _lead: Annotated[Principal, Depends(require(Role.SHIFT_LEAD))],
    after: PageAfter,
    state: Literal["pending", "dead", "discarded"] = "dead",
    endpoint: Annotated[EndpointName | None, Query()] = None,
    case_id: UUID | None = None,
    limit: Annotated[int, Query(ge=1, le=MOST_PER_PAGE)] = 100,
) -> list[DeliveryOut]:
    """Oldest first, in pages of ``limit`` (a ``Link`` header names the next). A dead message holds
    the later messages of its case to the same endpoint back until it is redriven or discarded."""
    selection = delivery.Selection(endpoint, case_id)
    page = await delivery.listed(ctx.store, delivery.DeliveryState(state), selection, limit, after)
    return [_delivery_out(row) for row in paged(request, response, page)]


@router.post("/deliveries/redrive", summary="Send dead messages again (the later ones of their cases follow)")
async def redrive_deliveries(
    body: RedriveIn, ctx: Context, _lead: Annotated[Principal, Depends(require(Role.SHIFT_LEAD))]
) -> list[DeliveryOut]:
    """Each dead message named gets a fresh set of attempts, the first at once; the messages
    redriven (none when nothing named was dead). 404 for an id that names no message."""
    unknown = await delivery.unknown_ids(ctx.store, body.ids)
    if unknown:
        raise NotFound("no message with these ids", {"ids": [str(message_id) for message_id in unknown]})
    return [_delivery_out(row) for row in await delivery.redrive(ctx.store, ctx.clock, body.selection())]


@router.post(
    "/deliveries/discard",
    summary="Give up on dead messages for good (the later ones of their cases go on)",
)
async def discard_deliveries(
    body: DiscardIn, ctx: Context, lead: Annotated[Principal, Depends(require(Role.SHIFT_LEAD))]
) -> list[DeliveryOut]:
    """For a message its endpoint will never take, which a redrive would only send to its death
    again. Each is marked discarded with the shift lead, the time and the reason, and never sent;
    the messages discarded. 404 for an id that names no message, 409 for one that is not dead
    (nothing is discarded then)."""
    discarded = await delivery.discard(ctx.store, ctx.clock, body.ids, lead.username, body.reason)
    return [_delivery_out(row) for row in discarded]
