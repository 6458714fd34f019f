"""The closure service's HTTP routes: inspectors' check tasks, and cancellation."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from closure import handlers, queries
from closure.domain import ClosureStatus
from shared.core.auth import Principal, Role
from shared.db.driver import Row
from shared.web.auth import require
from shared.web.bodies import PhotoDigest, ReasonIn, Text
from shared.web.context import Context
from shared.web.export import After, ExportRecord, NDJSONResponse, export_responses, ndjson_export
from shared.web.paging import MOST_PER_PAGE, NEXT_PAGE_LINK, PageAfter, paged
from shared.web.photos import ensure_photos_exist

router = APIRouter(tags=["closure"])

Inspector = Annotated[Principal, Depends(require(Role.INSPECTOR))]


class CheckIn(BaseModel):
    """The inspector's verdict on site (核查)."""

    model_config = ConfigDict(extra="forbid")

    passed: bool
    note: Text | None = Field(default=None, max_length=1000)
    photos: list[PhotoDigest] = Field(default_factory=list, max_length=9)


class ClosureCaseOut(BaseModel):
    """Closure's view of a case."""

    id: UUID
    case_number: str
    category_code: str
    cell_id: str
    inspector_id: str
    status: ClosureStatus
    department_id: str | None
    handling_deadline: datetime | None
    # Deadlines counted on a provisional calendar year; counted again when its official days are loaded.
    handling_deadline_provisional: bool
    handled_at: datetime | None
    handling_result: str | None
    check_deadline: datetime | None
    check_deadline_provisional: bool
    check_missed_at: datetime | None
    checks: int
    closed_at: datetime | None
    on_time: bool | None
    reopens: int = Field(description="times an unsatisfied callback (回访) reopened the case for rework")


class ClosureRecord(ExportRecord):
    """A case as the batch recount of the indicators reads it from closure: its check tasks
    (核查), closure (结案) and the on-time verdict (按期), its reopens after an unsatisfied callback
    (回访), or its cancellation (作废).
    """

    status: ClosureStatus
    inspector_id: str
    department_id: str | None
    checks_requested: int
    checks: int = Field(description="check tasks answered (passed or failed)")
    check_missed_at: datetime | None = Field(description="when the open check task passed its deadline unanswered")
    checks_on_time: int
    checks_failed: int
    closed_at: datetime | None
    on_time: bool | None
    reopens: int = Field(description="times an unsatisfied callback (回访) reopened the case for rework (返工)")


def _out(row: Row) -> ClosureCaseOut:
    return ClosureCaseOut.model_validate(dict(row))


@router.get("/checks", summary="The calling inspector's open check tasks", responses=NEXT_PAGE_LINK)
async def my_checks(
    request: Request,
    response: Response,
    ctx: Context,
    inspector: Inspector,
    after: PageAfter,
    limit: Annotated[int, Query(ge=1, le=MOST_PER_PAGE)] = MOST_PER_PAGE,
) -> list[ClosureCaseOut]:
    """Nearest check deadline first (ties by id), in pages: a ``Link`` header names the next. A
    page holds all of an ordinary day's tasks by default, as the phone app reads the list whole;
    a backlog (a week away, a storm's worth of cases) comes in pages, most urgent first, never as
    one unbounded answer."""
    page = await queries.check_tasks(ctx, inspector, limit, after)
    return [_out(row) for row in paged(request, response, page)]


@router.post("/cases/{case_id}/check", summary="Answer a check task: passed closes, failed sends back for rework")
async def check(case_id: UUID, body: CheckIn, ctx: Context, inspector: Inspector) -> ClosureCaseOut:
    """Only the cell's inspector, only while a check is open; 409 otherwise."""
    await ensure_photos_exist(ctx, body.photos)
    return _out(await handlers.check(ctx, inspector, case_id, passed=body.passed, note=body.note, photos=body.photos))


@router.post("/cases/{case_id}/cancel", summary="Void a case (作废)")
async def cancel(
    case_id: UUID, body: ReasonIn, ctx: Context, lead: Annotated[Principal, Depends(require(Role.SHIFT_LEAD))]
) -> ClosureCaseOut:
    """A shift lead only; 409 once closed or cancelled."""
    return _out(await handlers.cancel(ctx, lead, case_id, body.reason))


@router.get(
    "/export/cases",
    summary="Every case as closure knows it, as NDJSON (for the batch recount of the indicators)",
    response_class=NDJSONResponse,
    responses=export_responses(ClosureRecord),
)
async def export_cases(
    ctx: Context, _lead: Annotated[Principal, Depends(require(Role.SHIFT_LEAD))], after: After = None
) -> NDJSONResponse:
    """Streamed in id order, one case per line; the command center only."""

    async def page(after: UUID | None, limit: int) -> list[ClosureRecord]:
        return [ClosureRecord.model_validate(dict(row)) for row in await queries.export_page(ctx, after, limit)]

    return await ndjson_export(page, after)


@router.get("/cases/{case_id}", summary="Closure's view of a case")
async def get_case(
    case_id: UUID,
    ctx: Context,
    _staff: Annotated[Principal, Depends(require(Role.OPERATOR, Role.DISPATCHER, Role.SHIFT_LEAD))],
) -> ClosureCaseOut:
    """Its check and closure."""
    return _out(await queries.get_case(ctx, case_id))
