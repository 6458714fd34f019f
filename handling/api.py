"""The handling service's HTTP routes: a department's inbox and actions, scoped to it."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, File, Form, Query, Request, Response, UploadFile
from pydantic import BaseModel, ConfigDict, Field

from handling import handlers, queries
from handling.domain import TaskStatus
from shared.core.auth import Principal, Role
from shared.core.photos import PhotoTooLarge
from shared.db.driver import Row
from shared.web.auth import require
from shared.web.bodies import PhotoDigest, ReasonIn, ServedInstant, Text
from shared.web.context import Context
from shared.web.export import After, ExportRecord, NDJSONResponse, export_responses, ndjson_export
from shared.web.paging import MOST_PER_PAGE, NEXT_PAGE_LINK, PageAfter, paged
from shared.web.photos import ensure_photos_exist, read_photos

router = APIRouter(tags=["handling"])

DepartmentUser = Annotated[Principal, Depends(require(Role.DEPARTMENT))]


class ExtensionIn(BaseModel):
    """More time, until when and why."""

    model_config = ConfigDict(extra="forbid")

    requested_deadline: ServedInstant
    reason: Text = Field(min_length=1, max_length=1000)


class TaskOut(BaseModel):
    """A case as its department sees it."""

    id: UUID
    case_number: str | None
    category_code: str
    description: str
    lon: float
    lat: float
    cell_id: str
    street_id: str
    district_id: str
    report_photos: list[str]
    status: TaskStatus
    department_id: str | None
    dispatched_at: datetime | None
    handling_deadline: datetime | None
    # Counted on a provisional calendar year; counted again when its official days are loaded.
    handling_deadline_provisional: bool
    extension_deadline: datetime | None
    accepted_by: str | None
    result: str | None
    result_photos: list[str] | None
    handled_at: datetime | None
    rework_reason: str | None


class HandlingRecord(ExportRecord):
    """A case as the batch recount of the indicators reads it from handling: whether its
    department ever reported it handled (处置反馈).
    """

    status: TaskStatus
    department_id: str | None
    first_handled_at: datetime | None
    handled_at: datetime | None


def _out(row: Row) -> TaskOut:
    return TaskOut.model_validate(dict(row))


@router.get(
    "/inbox",
    summary="The department's cases still to act on, nearest deadline first",
    responses=NEXT_PAGE_LINK,
)
async def inbox(
    request: Request,
    response: Response,
    ctx: Context,
    user: DepartmentUser,
    after: PageAfter,
    status: Annotated[list[TaskStatus] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=MOST_PER_PAGE)] = 100,
) -> list[TaskOut]:
    """Only the caller's department's cases; nearest deadline first (ties by id), in pages of
    ``limit``: a ``Link`` header names the next."""
    page = await queries.inbox(ctx, user, status, limit, after)
    return [_out(row) for row in paged(request, response, page)]


@router.get(
    "/export/cases",
    summary="Every case as handling knows it, as NDJSON (for the batch recount of the indicators)",
    response_class=NDJSONResponse,
    responses=export_responses(HandlingRecord),
)
async def export_cases(
    ctx: Context, _lead: Annotated[Principal, Depends(require(Role.SHIFT_LEAD))], after: After = None
) -> NDJSONResponse:
    """Streamed in id order, one case per line (reports never filed too); the command center only."""

    async def page(after: UUID | None, limit: int) -> list[HandlingRecord]:
        return [HandlingRecord.model_validate(dict(row)) for row in await queries.export_page(ctx, after, limit)]

    return await ndjson_export(page, after)


@router.get("/cases/{case_id}", summary="One of the department's cases")
async def get_case(case_id: UUID, ctx: Context, user: DepartmentUser) -> TaskOut:
    """404 for a case that is not the department's."""
    return _out(await queries.own_case(ctx, user, case_id))


@router.post("/cases/{case_id}/accept", summary="Sign for a case (签收)")
async def accept(case_id: UUID, ctx: Context, user: DepartmentUser) -> TaskOut:
    """409 unless the case was just dispatched to the department."""
    return _out(await handlers.accept(ctx, user, case_id))


@router.post("/cases/{case_id}/return", summary="Send a case back as not the department's (回退)")
async def return_case(case_id: UUID, body: ReasonIn, ctx: Context, user: DepartmentUser) -> TaskOut:
    """A dispatcher re-dispatches it."""
    return _out(await handlers.return_case(ctx, user, case_id, body.reason))


@router.post("/cases/{case_id}/extension", summary="Ask for more time (申请延期)")
async def request_extension(case_id: UUID, body: ExtensionIn, ctx: Context, user: DepartmentUser) -> TaskOut:
    """The shift lead approves or denies it."""
    return _out(await handlers.request_extension(ctx, user, case_id, body.requested_deadline, body.reason))


@router.post("/cases/{case_id}/report", summary="Report the case handled, with photos (处置反馈)")
async def report_handled(
    case_id: UUID,
    ctx: Context,
    user: DepartmentUser,
    result: Annotated[Text, Form(min_length=1, max_length=2000)],
    photos: Annotated[list[UploadFile] | None, File(description="JPEG, PNG or WebP")] = None,
    photo: Annotated[
        list[PhotoDigest] | None,
        Form(description="the digest of a photo uploaded before (POST photos), the field once per photo"),
    ] = None,
) -> TaskOut:
    """Multipart: ``result``, and the photos as files (``photos``), as digests of photos already
    uploaded (``photo``), or both: the photos named by digest first, then the files. A browser
    has uploaded each photo to show it before the report is sent; naming it spares sending it
    again. At most the configured number of photos in all, each file under the size limit; a
    digest of no photo uploaded is refused, and nothing is stored."""
    named = photo or []
    files = photos or []
    if len(named) + len(files) > ctx.settings.max_photos:
        raise PhotoTooLarge(f"at most {ctx.settings.max_photos} photos per report, files and digests together")
    data = await read_photos(files, max_bytes=ctx.settings.max_photo_bytes, max_count=ctx.settings.max_photos)
    await queries.own_case(ctx, user, case_id)  # refuse before storing anything for a stranger
    await ensure_photos_exist(ctx, named)
    digests = [*named, *[await ctx.photos.put(photo) for photo in data]]
    return _out(await handlers.report_handled(ctx, user, case_id, result, digests))
