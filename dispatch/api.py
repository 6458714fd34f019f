"""The dispatch service's HTTP routes (thin: parse, call a handler or a query, format)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from dispatch import handlers, queries
from dispatch.domain import DispatchStatus
from shared.core.auth import Principal, Role
from shared.db.driver import Row
from shared.web.auth import current_principal, require
from shared.web.bodies import ReasonIn, Text
from shared.web.context import Context
from shared.web.export import After, ExportRecord, NDJSONResponse, export_responses, ndjson_export
from shared.web.paging import MOST_PER_PAGE, NEXT_PAGE_LINK, PageAfter, paged

router = APIRouter(tags=["dispatch"])

Dispatcher = Annotated[Principal, Depends(require(Role.DISPATCHER, Role.SHIFT_LEAD))]
ShiftLead = Annotated[Principal, Depends(require(Role.SHIFT_LEAD))]
Staff = Annotated[Principal, Depends(require(Role.OPERATOR, Role.DISPATCHER, Role.SHIFT_LEAD))]


class DispatchIn(BaseModel):
    """The department to send the case to."""

    model_config = ConfigDict(extra="forbid")

    department_id: str = Field(min_length=1, max_length=64)


class NoteIn(BaseModel):
    """What the notice says."""

    model_config = ConfigDict(extra="forbid")

    note: Text = Field(min_length=1, max_length=1000)


class DispatchCaseOut(BaseModel):
    """Dispatch's view of a case: who has it and by when."""

    id: UUID
    case_number: str
    category_code: str
    street_id: str
    district_id: str
    status: DispatchStatus
    department_id: str | None
    attempt: int
    rule_id: str | None
    dispatched_at: datetime | None
    accepted: bool
    handling_deadline: datetime | None
    # Counted on a provisional calendar year; counted again when its official days are loaded.
    handling_deadline_provisional: bool
    deadline_missed_at: datetime | None
    suspended_at: datetime | None
    extension_deadline: datetime | None
    extension_reason: str | None
    extension_requested_by: str | None
    supervision_level: int
    dispatch_deadline: datetime | None
    dispatch_deadline_provisional: bool


class AssignmentRecord(BaseModel):
    """One dispatch attempt (派遣) and, when dispatch accepted it, the department's return (回退)."""

    attempt: int
    department_id: str
    dispatched_at: datetime
    returned_at: datetime | None


class DispatchRecord(ExportRecord):
    """A case as the batch recount of the indicators reads it from dispatch: its dispatch
    deadline, every attempt, its current department (None after a return) and whether the
    handling deadline in force was reported missed (超期).
    """

    status: DispatchStatus
    department_id: str | None
    filed_at: datetime
    dispatch_deadline: datetime | None
    handling_deadline: datetime | None
    deadline_missed_at: datetime | None
    assignments: list[AssignmentRecord]


class DepartmentOut(BaseModel):
    """A department cases can be dispatched to."""

    id: str
    name: str
    kind: str


def _out(row: Row) -> DispatchCaseOut:
    return DispatchCaseOut.model_validate(dict(row))


@router.get(
    "/queue",
    summary="Cases waiting for a dispatcher: unclear ownership (权属不清) or returned",
    responses=NEXT_PAGE_LINK,
)
async def queue(
    request: Request,
    response: Response,
    ctx: Context,
    _staff: Staff,
    after: PageAfter,
    status: Annotated[DispatchStatus, Query()] = DispatchStatus.COORDINATION,
    limit: Annotated[int, Query(ge=1, le=MOST_PER_PAGE)] = 100,
) -> list[DispatchCaseOut]:
    """Oldest filed first (ties by id), in pages of ``limit``: a ``Link`` header names the next."""
    page = await queries.queue(ctx, status, limit, after)
    return [_out(row) for row in paged(request, response, page)]


@router.get("/extensions", summary="Extension requests waiting for the shift lead", responses=NEXT_PAGE_LINK)
async def pending_extensions(
    request: Request,
    response: Response,
    ctx: Context,
    _lead: ShiftLead,
    after: PageAfter,
    limit: Annotated[int, Query(ge=1, le=MOST_PER_PAGE)] = MOST_PER_PAGE,
) -> list[DispatchCaseOut]:
    """Earliest deadline first (ties by id), in pages: a ``Link`` header names the next. The
    requests of the whole city wait here for one shift lead, hundreds after a storm in a big
    city: a page holds all of an ordinary day's by default, never an unbounded answer."""
    page = await queries.pending_extensions(ctx, limit, after)
    return [_out(row) for row in paged(request, response, page)]


@router.get("/departments", summary="The departments cases can be dispatched to")
async def departments(ctx: Context, _caller: Annotated[Principal, Depends(current_principal)]) -> list[DepartmentOut]:
    """In the city's order."""
    return [DepartmentOut(id=d.id, name=d.name, kind=d.kind.value) for d in ctx.city.departments]


@router.get(
    "/export/cases",
    summary="Every case dispatch knows, with its dispatch attempts, as NDJSON (for the batch recount)",
    response_class=NDJSONResponse,
    responses=export_responses(DispatchRecord),
)
async def export_cases(ctx: Context, _lead: ShiftLead, after: After = None) -> NDJSONResponse:
    """Streamed in id order, one case per line (self-handled cases never reach dispatch); the
    command center only."""

    async def page(after: UUID | None, limit: int) -> list[DispatchRecord]:
        return [
            DispatchRecord.model_validate({**row, "assignments": attempts})
            for row, attempts in await queries.export_page(ctx, after, limit)
        ]

    return await ndjson_export(page, after)


@router.get("/cases/{case_id}", summary="Who has a case and by when")
async def get_case(case_id: UUID, ctx: Context, _staff: Staff) -> DispatchCaseOut:
    """Dispatch's view of one case."""
    return _out(await queries.get_case(ctx, case_id))


@router.post("/cases/{case_id}/dispatch", summary="Dispatch or re-dispatch a case by hand (派遣)")
async def dispatch(case_id: UUID, body: DispatchIn, ctx: Context, dispatcher: Dispatcher) -> DispatchCaseOut:
    """From the coordination queue, after a return, or to move a case not yet handled; 409 otherwise."""
    return _out(await handlers.dispatch_case(ctx, dispatcher, case_id, body.department_id))


@router.post("/cases/{case_id}/extension/approve", summary="Grant the pending extension (延期)")
async def approve_extension(case_id: UUID, ctx: Context, lead: ShiftLead) -> DispatchCaseOut:
    """The deadline moves to the date the department asked for."""
    return _out(await handlers.approve_extension(ctx, lead, case_id))


@router.post("/cases/{case_id}/extension/deny", summary="Refuse the pending extension")
async def deny_extension(case_id: UUID, body: ReasonIn, ctx: Context, lead: ShiftLead) -> DispatchCaseOut:
    """The deadline stands."""
    return _out(await handlers.deny_extension(ctx, lead, case_id, body.reason))


@router.post("/cases/{case_id}/suspend", summary="Suspend a case (挂账/缓办): its clock stops")
async def suspend(case_id: UUID, body: ReasonIn, ctx: Context, lead: ShiftLead) -> DispatchCaseOut:
    """Only a case with a department; 409 otherwise."""
    return _out(await handlers.suspend(ctx, lead, case_id, body.reason))


@router.post("/cases/{case_id}/resume", summary="Resume a suspended case")
async def resume(case_id: UUID, ctx: Context, lead: ShiftLead) -> DispatchCaseOut:
    """The deadline moves by the working time the case stood suspended."""
    return _out(await handlers.resume(ctx, lead, case_id))


@router.post("/cases/{case_id}/supervise", summary="Send a supervision notice (督办)")
async def supervise(case_id: UUID, body: NoteIn, ctx: Context, lead: ShiftLead) -> DispatchCaseOut:
    """Each notice raises the case's supervision level."""
    return _out(await handlers.supervise(ctx, lead, case_id, body.note))
