"""The closure service's HTTP routes: inspectors' check tasks, and cancellation."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.engine import RowMapping

from closure import handlers
from closure.domain import ClosureStatus
from closure.models import cases
from shared.auth import Principal, Role, require
from shared.context import ServiceContext, service_context
from shared.photos_api import check_photos_exist

router = APIRouter(tags=["closure"])

Context = Annotated[ServiceContext, Depends(service_context)]
Inspector = Annotated[Principal, Depends(require(Role.INSPECTOR))]
Digest = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class CheckIn(BaseModel):
    """The inspector's verdict on site (核查)."""

    model_config = ConfigDict(extra="forbid")

    passed: bool
    note: str | None = Field(default=None, max_length=1000)
    photos: list[Digest] = Field(default_factory=list, max_length=9)


class ReasonIn(BaseModel):
    """Why."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=1000)


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
    handled_at: datetime | None
    handling_result: str | None
    check_deadline: datetime | None
    checks: int
    closed_at: datetime | None
    on_time: bool | None


def _out(row: RowMapping) -> ClosureCaseOut:
    return ClosureCaseOut.model_validate(dict(row))


@router.get("/checks", summary="The calling inspector's open check tasks")
async def my_checks(ctx: Context, inspector: Inspector) -> list[ClosureCaseOut]:
    """Nearest check deadline first."""
    query = (
        select(cases)
        .where(cases.c.inspector_id == inspector.inspector_id, cases.c.status == ClosureStatus.CHECKING)
        .order_by(cases.c.check_deadline)
    )
    async with ctx.store.engine.connect() as connection:
        return [_out(row) for row in (await connection.execute(query)).mappings()]


@router.post("/cases/{case_id}/check", summary="Answer a check task: passed closes, failed sends back for rework")
async def check(case_id: UUID, body: CheckIn, ctx: Context, inspector: Inspector) -> ClosureCaseOut:
    """Only the cell's inspector, only while a check is open; 409 otherwise."""
    await check_photos_exist(ctx, body.photos)
    return _out(await handlers.check(ctx, inspector, case_id, passed=body.passed, note=body.note, photos=body.photos))


@router.post("/cases/{case_id}/cancel", summary="Void a case (作废)")
async def cancel(
    case_id: UUID, body: ReasonIn, ctx: Context, lead: Annotated[Principal, Depends(require(Role.SHIFT_LEAD))]
) -> ClosureCaseOut:
    """A shift lead only; 409 once closed or cancelled."""
    return _out(await handlers.cancel(ctx, lead, case_id, body.reason))


@router.get("/cases/{case_id}", summary="Closure's view of a case")
async def get_case(
    case_id: UUID,
    ctx: Context,
    _staff: Annotated[Principal, Depends(require(Role.OPERATOR, Role.DISPATCHER, Role.SHIFT_LEAD))],
) -> ClosureCaseOut:
    """Its check and closure."""
    return _out(await handlers.get_case(ctx, case_id))
