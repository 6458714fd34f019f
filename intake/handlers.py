"""Intake's use cases: receive a report, verify it, file or reject it, merge duplicates.

Each one loads what it needs, decides with ``intake.domain``, and saves its rows and events in one
transaction.
"""

from __future__ import annotations

import asyncio
import math
import weakref
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.dml import ReturningInsert, ReturningUpdate

from intake import domain
from intake.models import case_number_counters, cases, reports
from shared.city.model import Category
from shared.core.auth import Principal
from shared.core.errors import InvalidInput, OutOfScope
from shared.core.ids import new_id
from shared.db.rows import Rows
from shared.events.catalogue import (
    CaseFiled,
    GeoPoint,
    ReportMerged,
    ReportReceived,
    ReportRejected,
    ReportSource,
    ReportVerified,
    VerificationRequested,
)
from shared.messaging.store import ServiceStore, Transaction
from shared.service.context import ServiceContext

_METRES_PER_DEGREE = 111_320.0
REPORTS = Rows(reports, "report")


@dataclass(frozen=True)
class NewReport:
    """A report as it arrives, its location already in WGS-84."""

    source: ReportSource
    category_code: str
    description: str
    lon: float
    lat: float
    reporter_id: str | None
    photos: tuple[str, ...] = ()
    client_ref: str | None = None
    external_ref: str | None = None
    self_handled: bool = False


async def receive_report(ctx: ServiceContext, new: NewReport) -> tuple[RowMapping, bool]:
    """Take a report in; the report's row and whether it was new (False: a resend).

    Inspector reports are filed at once, hotline and public reports go to verification, video
    detections wait for an operator; a duplicate of an open case is merged into it.
    """
    try:
        return await _receive(ctx, new)
    except IntegrityError:
        if new.client_ref is None:
            raise
        # Two copies of one resend raced: the first committed, so answer with its report.
        async with ctx.store.transaction() as tx:
            existing = await _by_client_ref(tx, new.reporter_id, new.client_ref)
        if existing is None:
            raise
        return existing, False


async def _receive(ctx: ServiceContext, new: NewReport) -> tuple[RowMapping, bool]:
    category = _category(ctx, new.category_code)
    cell = ctx.city.locate(new.lon, new.lat)
    if cell is None:
        raise InvalidInput(
            "the location is outside the city's grid", {"lon": new.lon, "lat": new.lat, "city": ctx.city.name}
        )
    if new.self_handled and new.source is not ReportSource.INSPECTOR:
        raise InvalidInput("only an inspector on site can handle a problem themselves")
    now = ctx.clock.now()
    files_at_once = domain.initial_status(new.source) is domain.ReportStatus.FILED
    async with _numbering(ctx, wanted=files_at_once) as number, ctx.store.transaction() as tx:
        if new.client_ref is not None:
            existing = await _by_client_ref(tx, new.reporter_id, new.client_ref)
            if existing is not None:
                return existing, False
        report_id = new_id()
        place = cell.place
        row: dict[str, Any] = {
            "id": report_id,
            "source": new.source.value,
            "reporter_id": new.reporter_id,
            "client_ref": new.client_ref,
            "external_ref": new.external_ref,
            "category_code": category.code,
            "description": new.description,
            "lon": new.lon,
            "lat": new.lat,
            "cell_id": place.cell_id,
            "community_id": place.community_id,
            "street_id": place.street_id,
            "district_id": place.district_id,
            "photos": list(new.photos),
            "self_handled": new.self_handled,
            "received_at": now,
        }
        tx.emit(
            ctx.event(
                ReportReceived(
                    source=new.source,
                    category_code=category.code,
                    description=new.description,
                    point=GeoPoint(lon=new.lon, lat=new.lat),
                    place=place,
                    reporter_id=new.reporter_id,
                    external_ref=new.external_ref,
                    photos=list(new.photos),
                    self_handled=new.self_handled,
                ),
                report_id,
                at=now,
            )
        )
        duplicate = await _find_duplicate(ctx, tx, category.code, new.lon, new.lat)
        if duplicate is not None and not new.self_handled:
            case, distance = duplicate
            row.update(status=domain.ReportStatus.MERGED, merged_into=UUID(case.case_id), decided_at=now)
            await tx.session.execute(reports.insert().values(row))
            merged = ReportMerged(into_case_id=UUID(case.case_id), distance_m=round(distance, 1))
            tx.emit(ctx.event(merged, report_id, at=now))
            return await REPORTS.get(tx, report_id), True
        status = domain.initial_status(new.source)
        row["status"] = status
        if status is domain.ReportStatus.VERIFYING:
            inspector = ctx.city.inspector_for(place.cell_id)
            due = ctx.deadline(now, category, "filing")
            row.update(verifier_id=inspector.id, verification_due_at=due)
            tx.emit(ctx.event(VerificationRequested(inspector_id=inspector.id, due_at=due), report_id))
        if status is domain.ReportStatus.FILED:
            assert number is not None
            return await _file(ctx, tx, row, category, number, filed_by=new.reporter_id or "system", insert=True), True
        saved = await tx.session.execute(reports.insert().values(row).returning(*reports.c))
        return saved.mappings().one(), True


async def verify_report(
    ctx: ServiceContext, inspector: Principal, report_id: UUID, *, confirmed: bool, note: str | None, photos: list[str]
) -> RowMapping:
    """The inspector's on-site answer (核实): confirmed reports are filed, others rejected."""
    async with _numbering(ctx, wanted=confirmed) as number, ctx.store.transaction() as tx:
        report = await REPORTS.get(tx, report_id, for_update=True)
        if report["verifier_id"] != inspector.inspector_id:
            raise OutOfScope("this verification task belongs to another inspector")
        domain.check_can_verify(domain.ReportStatus(report["status"]))
        assert inspector.inspector_id is not None  # the route admits inspectors only
        tx.emit(
            ctx.event(
                ReportVerified(inspector_id=inspector.inspector_id, confirmed=confirmed, note=note, photos=photos),
                report_id,
            )
        )
        if number is not None:
            category = _category(ctx, report["category_code"])
            return await _file(ctx, tx, report, category, number, filed_by=inspector.username, insert=False)
        await _reject(
            ctx,
            tx,
            report_id,
            domain.RejectionReason.NOT_CONFIRMED,
            note or "not found on site",
            inspector.username,
        )
        return await REPORTS.get(tx, report_id)


async def file_report(ctx: ServiceContext, operator: Principal, report_id: UUID) -> RowMapping:
    """An operator files a report that was waiting for review or verification (立案)."""
    async with _numbering(ctx, wanted=True) as number, ctx.store.transaction() as tx:
        report = await REPORTS.get(tx, report_id, for_update=True)
        domain.check_can_file(domain.ReportStatus(report["status"]))
        assert number is not None
        category = _category(ctx, report["category_code"])
        return await _file(ctx, tx, report, category, number, filed_by=operator.username, insert=False)


async def reject_report(
    ctx: ServiceContext, operator: Principal, report_id: UUID, reason_code: domain.RejectionReason, reason: str
) -> RowMapping:
    """An operator declines to file a report (不予立案)."""
    async with ctx.store.transaction() as tx:
        report = await REPORTS.get(tx, report_id, for_update=True)
        domain.check_can_reject(domain.ReportStatus(report["status"]))
        await _reject(ctx, tx, report_id, reason_code, reason, operator.username)
        return await REPORTS.get(tx, report_id)


async def get_report(ctx: ServiceContext, report_id: UUID) -> RowMapping:
    """One report."""
    async with ctx.store.transaction() as tx:
        return await REPORTS.get(tx, report_id)


async def export_page(ctx: ServiceContext, after: UUID | None, limit: int) -> Sequence[RowMapping]:
    """Up to ``limit`` reports with ids after ``after``, in id order (a page of the export)."""
    return await REPORTS.page(ctx.store.engine, after, limit)


async def _file(
    ctx: ServiceContext,
    tx: Transaction,
    report: RowMapping | dict[str, Any],
    category: Category,
    case_number: CaseNumber,
    *,
    filed_by: str,
    insert: bool,
) -> RowMapping:
    """File the report as a case (立案): the report's row as it now stands. ``insert``: the report
    arrives filed, and one statement writes it whole.
    """
    report_id = report["id"]
    now = ctx.clock.now()
    number = case_number.use()
    place = ctx.city.cell(report["cell_id"]).place
    inspector = ctx.city.inspector_for(place.cell_id)
    filing_deadline = ctx.deadline(report["received_at"], category, "filing")
    dispatch_deadline = ctx.deadline(now, category, "dispatch")
    filing = {
        "status": domain.ReportStatus.FILED,
        "case_number": number,
        "decided_by": filed_by,
        "decided_at": now,
        "filing_deadline": filing_deadline,
    }
    statement: ReturningInsert[Any] | ReturningUpdate[Any] = (
        reports.insert().values({**report, **filing}).returning(*reports.c)
        if insert
        else update(reports).where(reports.c.id == report_id).values(filing).returning(*reports.c)
    )
    saved: RowMapping = (await tx.session.execute(statement)).mappings().one()
    await tx.session.execute(
        cases.insert().values(
            id=report_id,
            case_number=number,
            category_code=category.code,
            source=report["source"],
            lon=report["lon"],
            lat=report["lat"],
            cell_id=place.cell_id,
            street_id=place.street_id,
            district_id=place.district_id,
            status=domain.CaseStatus.FILED,
            reported_at=report["received_at"],
            filed_at=now,
            external_ref=report["external_ref"],
            updated_at=now,
        )
    )
    tx.emit(
        ctx.event(
            CaseFiled(
                case_number=number,
                category_code=category.code,
                family=category.family,
                source=ReportSource(report["source"]),
                place=place,
                filed_by=filed_by,
                reported_at=report["received_at"],
                filing_deadline=filing_deadline,
                dispatch_deadline=dispatch_deadline,
                inspector_id=inspector.id,
                self_handled=report["self_handled"],
                urgent=category.urgent,
            ),
            report_id,
            at=now,
        )
    )
    return saved


async def _reject(
    ctx: ServiceContext,
    tx: Transaction,
    report_id: UUID,
    reason_code: domain.RejectionReason,
    reason: str,
    rejected_by: str,
) -> None:
    await tx.session.execute(
        update(reports)
        .where(reports.c.id == report_id)
        .values(
            status=domain.ReportStatus.REJECTED,
            rejection_code=reason_code.value,
            rejection_reason=reason,
            decided_by=rejected_by,
            decided_at=ctx.clock.now(),
        )
    )
    tx.emit(ctx.event(ReportRejected(reason_code=reason_code.value, reason=reason, rejected_by=rejected_by), report_id))


async def _reserve_numbers(store: ServiceStore, period: str, count: int) -> int:
    """Move the month's counter on by ``count`` in a transaction of its own; the last number
    reserved. Insert-or-increment: two concurrent reservations never get the same numbers.
    """
    async with store.writer.begin() as connection:
        await connection.execute(
            store.insert_ignoring_duplicates(case_number_counters, "period").values(period=period, last=0)
        )
        result = await connection.execute(
            update(case_number_counters)
            .where(case_number_counters.c.period == period)
            .values(last=case_number_counters.c.last + count)
            .returning(case_number_counters.c.last)
        )
        return int(result.scalar_one())


@dataclass
class CaseNumber:
    """A number kept aside for a transaction that may file a case."""

    period: str
    sequence: int
    used: bool = False

    def use(self) -> str:
        """The case number, now taken by the filing."""
        self.used = True
        return domain.case_number(self.period, self.sequence)


class CaseNumbers:
    """Hands out a month's case numbers from blocks reserved ahead, before the filing's own
    transaction begins.

    Taken from the counter row inside the filing's transaction, a number kept the row locked until
    that transaction committed, so every filing waited for the one before: intake ran 60
    reports/s however many came. A block is reserved once per ``BLOCK`` filings, in a short
    transaction of its own (never nested in another, which could wait for a pool connection held
    by a filing that waits for the block). Numbers kept aside and not used are handed out again.
    The price: numbers follow filing order only within a process, and a process that stops
    leaves the rest of its block unused, as a database sequence would.
    """

    BLOCK = 50

    def __init__(self, store: ServiceStore) -> None:
        self.store = store
        self._free: dict[str, list[int]] = {}
        self._next: dict[str, int] = {}
        self._last: dict[str, int] = {}
        self._reserving = asyncio.Lock()

    async def take(self, period: str) -> CaseNumber:
        """The next number of ``period`` (YYYY-MM)."""
        async with self._reserving:
            free = self._free.get(period)
            if free:
                return CaseNumber(period, free.pop())
            if self._next.get(period, 1) > self._last.get(period, 0):
                last = await _reserve_numbers(self.store, period, self.BLOCK)
                self._next[period], self._last[period] = last - self.BLOCK + 1, last
            sequence = self._next[period]
            self._next[period] = sequence + 1
            return CaseNumber(period, sequence)

    def give_back(self, number: CaseNumber) -> None:
        """A number kept aside that no committed filing took."""
        self._free.setdefault(number.period, []).append(number.sequence)


@asynccontextmanager
async def _numbering(ctx: ServiceContext, *, wanted: bool) -> AsyncIterator[CaseNumber | None]:
    """A case number kept aside (when ``wanted``) for the transaction inside this block; given
    back unless a filing used it.
    """
    if not wanted:
        yield None
        return
    numbers = _case_numbers(ctx.store)
    number = await numbers.take(ctx.clock.now().astimezone(ZoneInfo(ctx.city.timezone)).strftime("%Y-%m"))
    try:
        yield number
    finally:
        # A number a filing used is never handed out again, even when its transaction failed:
        # the commit may have gone through before the error (a connection lost while
        # committing), and a second case with it would fail on the unique case number. A gap.
        if not number.used:
            numbers.give_back(number)


_numbers: weakref.WeakKeyDictionary[ServiceStore, CaseNumbers] = weakref.WeakKeyDictionary()


def _case_numbers(store: ServiceStore) -> CaseNumbers:
    numbers = _numbers.get(store)
    if numbers is None:
        numbers = _numbers[store] = CaseNumbers(store)
    return numbers


async def _find_duplicate(
    ctx: ServiceContext, tx: Transaction, category_code: str, lon: float, lat: float
) -> tuple[domain.OpenCase, float] | None:
    rule = domain.DuplicateRule(
        radius_m=ctx.settings.duplicate_radius_m, window=timedelta(hours=ctx.settings.duplicate_window_hours)
    )
    # A bounding box narrows the candidates in SQL; the exact distance is the domain's call.
    dlat = rule.radius_m / _METRES_PER_DEGREE
    dlon = dlat / max(math.cos(math.radians(lat)), 0.01)
    rows = await tx.session.execute(
        select(cases.c.id, cases.c.category_code, cases.c.lon, cases.c.lat, cases.c.reported_at).where(
            cases.c.category_code == category_code,
            cases.c.status.in_([s.value for s in domain.OPEN_CASE_STATUSES]),
            cases.c.lat.between(lat - dlat, lat + dlat),
            cases.c.lon.between(lon - dlon, lon + dlon),
        )
    )
    candidates = [domain.OpenCase(str(r.id), r.category_code, r.lon, r.lat, r.reported_at) for r in rows]
    return rule.find(category_code, lon, lat, ctx.clock.now(), candidates)


def _category(ctx: ServiceContext, code: str) -> Category:
    try:
        return ctx.city.category(code)
    except KeyError:
        raise InvalidInput(f"unknown category {code!r}", {"category_code": code}) from None


async def _by_client_ref(tx: Transaction, reporter_id: str | None, client_ref: str) -> RowMapping | None:
    query = select(reports).where(reports.c.client_ref == client_ref)
    query = query.where(
        reports.c.reporter_id.is_(None) if reporter_id is None else reports.c.reporter_id == reporter_id
    )
    return (await tx.session.execute(query)).mappings().first()
