"""The assessment service's HTTP routes: indicators, rankings, bulletins, a live feed, an export.

Every answer is read from counters (one row per scope and period bucket), never from cases, so
its cost does not grow with the city's history.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response, StreamingResponse
from fastapi.sse import EventSourceResponse, ServerSentEvent
from pydantic import BaseModel, Field, create_model

from assessment import bulletin, domain, queries
from assessment.queries import Period
from assessment.stream import STREAM_CONSUMER
from shared.city.indicators import CITY, COUNTERS, DERIVED, INDICATORS, RANKED_KINDS, SCOPE_KINDS
from shared.core.auth import Principal
from shared.core.errors import InvalidInput, NotFound
from shared.service.context import ServiceContext
from shared.web.auth import require
from shared.web.bodies import FIRST_DAY, LAST_DAY, ServedDate, Text
from shared.web.context import Context

router = APIRouter(tags=["assessment"])

Reader = Annotated[Principal, Depends(require(*queries.READERS))]
Lead = Annotated[Principal, Depends(require(*queries.LEADS))]

if TYPE_CHECKING:
    ScopeKind = str
    RankedKind = str
    MappedKind = str
    Indicator = str
else:
    # Made from the one list of names, so the schema's enums and the 422 for an unknown name
    # follow it.
    ScopeKind = Literal[SCOPE_KINDS]
    RankedKind = Literal[RANKED_KINDS]
    MappedKind = Literal[bulletin.MAPPED_KINDS]
    Indicator = Literal[INDICATORS]
PeriodName = Literal["day", "week", "month", "range"]
# A scope's id goes into the counters' query as sent: PostgreSQL cannot hold a NUL in text at all
# (an error, not an empty answer), so control characters are refused as in free text.
ScopeId = Annotated[Text, Query(max_length=64)]


@dataclass(frozen=True)
class PeriodQuery:
    """The period a request names, as its query gave it: read by the routes that take a period,
    turned into one by ``period`` inside the route (after its own checks of who may read)."""

    name: str
    day: date | None
    start: date | None
    end: date | None

    def period(self, ctx: ServiceContext) -> Period:
        return queries.period_asked(ctx, self.name, self.day, self.start, self.end)


def _period_query(
    period: PeriodName = "month",
    day: Annotated[
        ServedDate | None, Query(alias="date", description="any day inside the period (default today)")
    ] = None,
    start: Annotated[ServedDate | None, Query(alias="from")] = None,
    end: Annotated[ServedDate | None, Query(alias="to")] = None,
) -> PeriodQuery:
    return PeriodQuery(period, day, start, end)


Asked = Annotated[PeriodQuery, Depends(_period_query)]


class PeriodOut(BaseModel):
    """A period as answered: its kind (day, week, month, range) and its first and last days."""

    kind: str
    start: date
    end: date


class ScopeOut(BaseModel):
    """What the figures are of: a scope's kind, its id and its name for people."""

    kind: str
    id: str
    name: str


# A scope's figures, as keyed maps: a scope has only the indicators its kind has (a department no
# filing and no on-time dispatch, which come before any department has the case).
Counters = Annotated[
    dict[str, int], Field(description="the base counters the scope has, by name (assessment/INDICATORS.md)")
]
Derived = Annotated[
    dict[str, float | int | None],
    Field(description="the indicators derived from them, by name: `due` and the rates, null for a rate over nothing"),
]


class IndicatorsOut(BaseModel):
    """Every indicator of one scope in one period."""

    scope: ScopeOut
    period: PeriodOut
    counters: Counters
    indicators: Derived


class RankedOut(BaseModel):
    """One scope's place in a ranking: equal values share a rank; a scope without a value (a rate
    over nothing) comes last, unranked (``rank`` null)."""

    rank: int | None
    scope_id: str
    name: str
    value: float | int | None
    counters: Counters
    indicators: Derived


class RankingOut(BaseModel):
    """Scopes of one kind ordered by one indicator in one period."""

    scope_kind: str
    indicator: str
    period: PeriodOut
    ranking: list[RankedOut]


if TYPE_CHECKING:
    FiguresOut = BaseModel
    BreakdownOut = BaseModel
else:
    # Every base counter and derived indicator as a field of its own, made from the one list of
    # names, as the bulletin answers them (side by side, not in two maps).
    _FIGURES: dict[str, Any] = dict.fromkeys(COUNTERS, (int, ...)) | dict.fromkeys(DERIVED, (float | int | None, ...))
    FiguresOut = create_model("FiguresOut", __doc__="Every base counter and every derived indicator.", **_FIGURES)
    BreakdownOut = create_model(
        "BreakdownOut",
        __doc__="The figures of one source (inspector, hotline, public, video) or family (components, events).",
        id=(str, ...),
        name=(str, ...),
        **_FIGURES,
    )


class TopCategoryOut(BaseModel):
    """One of the month's most reported categories."""

    code: str
    name: str
    reports: int
    filed: int


class BacklogOut(BaseModel):
    """A department's overdue open cases, of every month up to the bulletin's."""

    department_id: str
    name: str
    overdue_open: int


class BulletinOut(BaseModel):
    """The monthly bulletin (月度通报) as cities publish it."""

    city: str
    period: PeriodOut
    totals: FiguresOut
    by_source: list[BreakdownOut]
    by_family: list[BreakdownOut]
    top_categories: list[TopCategoryOut]
    department_ranking: list[RankedOut] = Field(description="by on-time closure rate")
    district_ranking: list[RankedOut] = Field(description="by on-time closure rate")
    overdue_backlog: list[BacklogOut]


class StreamOut(BaseModel):
    """How far the assessment stream has applied the case event log."""

    consumer: str
    positions: dict[str, int] = Field(description="`topic/partition`: the offset of the next event to apply")


async def _answer(ctx: ServiceContext, scope_kind: str, scope_id: str, period: Period) -> IndicatorsOut:
    counters, indicators = domain.figures(scope_kind, await queries.indicators(ctx, scope_kind, scope_id, period))
    return IndicatorsOut(
        scope=ScopeOut(kind=scope_kind, id=scope_id, name=bulletin.name_of(ctx.city, scope_kind, scope_id)),
        period=_period_out(period),
        counters=counters,
        indicators=indicators,
    )


def _period_out(period: Period) -> PeriodOut:
    return PeriodOut(kind=period.kind, start=period.start, end=period.end)


@router.get("/indicators", summary="Every indicator of one scope in one period (day, week, month or a range)")
async def get_indicators(
    ctx: Context,
    reader: Reader,
    asked: Asked,
    scope_kind: ScopeKind = "city",
    scope_id: ScopeId = CITY,
) -> IndicatorsOut:
    queries.ensure_may_read(reader, scope_kind, scope_id)
    period = asked.period(ctx)  # a period that cannot be served is refused (422) whatever the scope
    await _ensure_known(ctx, scope_kind, scope_id)
    return await _answer(ctx, scope_kind, scope_id, period)


async def _ensure_known(ctx: ServiceContext, scope_kind: str, scope_id: str) -> None:
    """``NotFound`` for a scope the city does not name and the stream never counted: a mistyped id
    would otherwise read as a scope where nothing happened. A scope the city no longer names (a
    district merged away) keeps its counters, and is answered."""
    if bulletin.city_knows(ctx.city, scope_kind, scope_id) or await queries.has_counters(ctx, scope_kind, scope_id):
        return
    # The city-wide scope has one id, which a newcomer guesses wrong (the city's code, its name).
    hint = f" (the city-wide scope's id is {CITY!r})" if scope_kind == "city" else ""
    raise NotFound(
        f"no {scope_kind} {scope_id!r} in {ctx.city.name}{hint}", {"scope_kind": scope_kind, "scope_id": scope_id}
    )


@router.get(
    "/rankings",
    summary="Departments, districts, streets or inspectors ranked by any indicator they have",
    description="A department is not ranked by on-time dispatch (the command center's figure) nor by filing: 422.",
)
async def get_ranking(
    ctx: Context,
    _reader: Reader,
    asked: Asked,
    scope_kind: RankedKind = "department",
    indicator: Indicator = "on_time_closure_rate",
    order: Literal["desc", "asc"] = "desc",
    limit: Annotated[int, Query(ge=1, le=5000)] = 100,
) -> RankingOut:
    chosen = asked.period(ctx)
    by_scope = await queries.scopes_of_kind(ctx, scope_kind, chosen)
    rows = bulletin.ranked(ctx.city, scope_kind, by_scope, indicator, descending=order == "desc")
    return RankingOut(
        scope_kind=scope_kind,
        indicator=indicator,
        period=_period_out(chosen),
        ranking=[RankedOut.model_validate(row) for row in rows[:limit]],
    )


class IndicatorMapOut(BaseModel):
    """One indicator of every scope of a kind: every scope the city has, then any other the
    counters name; ``null`` where the indicator has no denominator (a rate over nothing)."""

    scope_kind: str
    indicator: str
    period: PeriodOut
    values: dict[str, float | int | None]


@router.get(
    "/map",
    summary="One indicator of every cell, community, street, district, department or inspector in one call",
    description="For colouring a map or filling a table. Readable by whoever may read the rankings; a department"
    " has no on-time dispatch nor filing figures: 422.",
)
async def get_map(
    ctx: Context,
    _reader: Reader,
    asked: Asked,
    scope_kind: MappedKind = "district",
    indicator: Indicator = "on_time_closure_rate",
) -> IndicatorMapOut:
    chosen = asked.period(ctx)
    values = bulletin.mapped(ctx.city, scope_kind, await queries.scopes_of_kind(ctx, scope_kind, chosen), indicator)
    return IndicatorMapOut(
        scope_kind=scope_kind,
        indicator=indicator,
        period=_period_out(chosen),
        values=values,
    )


def _month(value: str) -> date:
    try:
        year, month = (int(part) for part in value.split("-"))
        first = date(year, month, 1)
    except ValueError:
        raise InvalidInput("a month is written YYYY-MM", {"month": value}) from None
    if not FIRST_DAY <= first <= LAST_DAY:
        raise InvalidInput(f"a month from {FIRST_DAY:%Y-%m} to {LAST_DAY:%Y-%m}", {"month": value})
    return first


Month = Annotated[str, Path(pattern=r"^\d{4}-\d{2}$", description="YYYY-MM", examples=["2026-11"])]


# Declared before the JSON route: both paths start alike and the first match wins.
@router.get(
    "/bulletins/{month}.xlsx",
    summary="The monthly bulletin as an Excel workbook",
    response_class=Response,
    responses={200: {"content": {bulletin.XLSX: {}}}},
)
async def get_bulletin_workbook(ctx: Context, _reader: Reader, month: Month) -> Response:
    content = bulletin.workbook(await bulletin.monthly_bulletin(ctx, _month(month)))
    return Response(
        content,
        media_type=bulletin.XLSX,
        headers={"Content-Disposition": f'attachment; filename="bulletin-{month}.xlsx"'},
    )


@router.get("/bulletins/{month}", summary="The monthly bulletin (月度通报) as JSON")
async def get_bulletin(ctx: Context, _reader: Reader, month: Month) -> BulletinOut:
    return BulletinOut.model_validate(await bulletin.monthly_bulletin(ctx, _month(month)))


async def _readable_scope(
    ctx: Context, reader: Reader, scope_kind: ScopeKind = "city", scope_id: ScopeId = CITY
) -> tuple[str, str]:
    """The scope a live feed asks for, refused (403, 404) before the stream starts: once a
    streamed answer has begun, its status can no longer say no."""
    queries.ensure_may_read(reader, scope_kind, scope_id)
    await _ensure_known(ctx, scope_kind, scope_id)
    return scope_kind, scope_id


@router.get(
    "/live", response_class=EventSourceResponse, summary="Server-Sent Events: the indicators whenever they change"
)
async def live_indicators(
    ctx: Context,
    scope: Annotated[tuple[str, str], Depends(_readable_scope)],
    request: Request,
    period: Literal["day", "week", "month"] = "day",
    interval: Annotated[float, Query(ge=0.2, le=60, description="seconds between looks at the counters")] = 1.0,
    count: Annotated[int | None, Query(ge=1, description="end the stream after this many events")] = None,
) -> AsyncIterator[ServerSentEvent]:
    scope_kind, scope_id = scope
    last: IndicatorsOut | None = None
    sequence = 0
    # Polling one counter row is cheap and sees the changes of every assessment instance alike.
    while not await request.is_disconnected():
        current = await _answer(ctx, scope_kind, scope_id, queries.period_asked(ctx, period))
        if current != last:
            sequence += 1
            yield ServerSentEvent(data=current, event="indicators", id=str(sequence))
            last = current
            if count is not None and sequence >= count:
                return
        await asyncio.sleep(interval)


@router.get("/stream", summary="How far the stream has applied the case event log, per partition")
async def stream_status(ctx: Context, _lead: Lead) -> StreamOut:
    return StreamOut(consumer=STREAM_CONSUMER, positions=await queries.stream_positions(ctx))


@router.get(
    "/export/counters",
    summary="Every counter row as NDJSON (for reconciliation and archives)",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/x-ndjson": {}}}},
)
async def export_counters(ctx: Context, _lead: Lead) -> StreamingResponse:
    async def lines() -> AsyncIterator[bytes]:
        async for line in queries.export_counters(ctx):
            yield (json.dumps(line, ensure_ascii=False) + "\n").encode()

    return StreamingResponse(lines(), media_type="application/x-ndjson")
