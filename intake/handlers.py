"""Intake's use cases: receive a report, verify it, file or reject it, merge duplicates; record
the citizen's verdict a hotline's callback gives (回访).

Each one loads what it needs, decides with ``intake.domain``, and saves its rows and events in one
transaction. Reads for the API are in ``intake.queries``.
"""

from __future__ import annotations

import math
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import bindparam, delete, literal, or_, select, update
from sqlalchemy.exc import IntegrityError

from intake import domain
from intake.models import callbacks, cases, hotline_nonces, report_contacts, reports
from intake.numbering import CaseNumber, CaseNumbers, period_of
from shared.city.model import Category
from shared.core.auth import Principal
from shared.core.errors import InvalidInput, NotFound
from shared.core.ids import new_id
from shared.db.driver import DriverStatement, Row
from shared.db.rows import Rows
from shared.events.catalogue import CallbackVerdict, GeoPoint, GridPlace, ReportReceived, ReportSource
from shared.integration.endpoints import Hotline
from shared.integration.signing import TOLERANCE, Scheme
from shared.messaging.store import Transaction
from shared.service.context import ServiceContext
from shared.service.deadlines import recompute_rows

_METRES_PER_DEGREE = 111_320.0
REPORTS = Rows(reports, "report")
CALLBACKS = Rows(callbacks, "callback")
# How long a signed request's nonce is kept: a request is fresh within TOLERANCE of its timestamp
# either way, so one taken now could come again, still fresh, until twice that from now.
NONCE_KEPT = 2 * TOLERANCE


@dataclass(frozen=True)
class Contact:
    """The citizen's contact a hotline gives with a work order, or an Open311 app with a request,
    kept apart from the report and shown nowhere (not even in a repr that might reach a log)."""

    name: str | None = field(default=None, repr=False)
    phone: str | None = field(default=None, repr=False)
    email: str | None = field(default=None, repr=False)
    device_id: str | None = field(default=None, repr=False)
    account_id: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class SignedNonce:
    """The nonce of a signed request (its ``webhook-id`` or ``X-Nonce``), taken in the transaction
    of what the request asks, so a refused request leaves no nonce and a replay creates nothing."""

    hotline_id: str
    scheme: Scheme
    nonce: str
    body_sha256: str


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
    contact: Contact | None = None
    media_url: str | None = None


async def receive_report(ctx: ServiceContext, new: NewReport, signed: SignedNonce | None = None) -> tuple[Row, bool]:
    """Take a report in; the report's row and whether it was new (False: a resend, or a signed
    request's retry).

    Inspector reports are filed at once, hotline and public reports go to verification, video
    detections wait for an operator; a duplicate of an open case is merged into it. A report a
    hotline signed takes its request's nonce in the same transaction: ``ReplayedNonce`` (409) for
    a replay, nothing created.
    """
    try:
        return await _receive(ctx, new, signed)
    except IntegrityError:
        if signed is not None:
            # A copy sent at the same time took the nonce (or the work order number) first: decided
            # again, this one is a retry, a resend or a replay like any other.
            return await _receive(ctx, new, signed)
        if new.client_ref is None:
            raise
        # Two copies of one resend raced: the first committed, so answer with its report.
        async with ctx.store.transaction() as tx:
            existing = await _by_client_ref(tx, new.reporter_id, new.client_ref)
        if existing is None:
            raise
        domain.ensure_resend_of(existing, _sent(new))
        return existing, False


async def _receive(ctx: ServiceContext, new: NewReport, signed: SignedNonce | None) -> tuple[Row, bool]:
    category = _category(ctx, new.category_code)
    place = _place(ctx, new.lon, new.lat)
    domain.ensure_may_self_handle(new.source, new.self_handled)
    files_at_once = domain.initial_status(new.source) is domain.ReportStatus.FILED
    async with _numbering(ctx, wanted=files_at_once) as number, ctx.store.transaction() as tx:
        if signed is not None:
            # A retry repeats the work order number too: the resend below answers it.
            await _take_nonce(ctx, tx, signed)
        if new.client_ref is not None and (new.reporter_id is None or signed is not None):
            # A reporter's resend is caught at the insert, by the unique (reporter, client_ref)
            # constraint (``receive_report`` answers it), which spares every report a query. Looked
            # for first: an anonymous resend (no reporter for the constraint to hold), and a
            # hotline's, whose signed retry must find its report after taking its nonce again.
            existing = await _by_client_ref(tx, new.reporter_id, new.client_ref)
            if existing is not None:
                domain.ensure_resend_of(existing, _sent(new))
                return existing, False
        row = _report_row(new, place, ctx.clock.now())
        tx.emit(ctx.event(_received(new, place), row["id"], at=row["received_at"]))
        duplicate = await _find_duplicate(ctx, tx, category.code, new.lon, new.lat)
        arrival = domain.decide_arrival(
            new.source, self_handled=new.self_handled, duplicate=duplicate, at=row["received_at"]
        )
        row.update(arrival.changes)
        saved = await _save_arrival(ctx, tx, row, arrival, category, number)
        if new.contact is not None:
            contact = asdict(new.contact)
            await tx.connection.execute(report_contacts.insert().values(report_id=row["id"], **contact))
        return saved, True


async def _save_arrival(
    ctx: ServiceContext,
    tx: Transaction,
    row: dict[str, Any],
    arrival: domain.Arrival,
    category: Category,
    number: CaseNumber | None,
) -> Row:
    """Write the new report as ``arrival`` decided: merged, filed, sent for verification, or left
    for review."""
    report_id = row["id"]
    if arrival.merged is not None:
        await tx.connection.execute(reports.insert(), row)
        tx.emit(ctx.event(arrival.merged, report_id, at=row["received_at"]))
        return await REPORTS.get(tx, report_id)
    if arrival.status is domain.ReportStatus.FILED:
        assert number is not None  # kept aside because the source files at once
        report = domain.Report.of(row)
        terms = _filing_terms(ctx, report, number, filed_by=row["reporter_id"] or "system")
        return await _save_filing(ctx, tx, domain.decide_filing(report, terms), number, insert_row=row)
    if arrival.status is domain.ReportStatus.VERIFYING:
        inspector = ctx.city.inspector_for(row["cell_id"])
        due = ctx.deadline(row["received_at"], category, "filing")
        changes, requested = domain.decide_verification_request(inspector.id, due)
        row.update(changes)
        tx.emit(ctx.event(requested, report_id))
    (saved,) = await _INSERT_REPORT.rows(tx.connection, row)
    return saved


async def verify_report(
    ctx: ServiceContext, inspector: Principal, report_id: UUID, *, confirmed: bool, note: str | None, photos: list[str]
) -> Row:
    """The inspector's on-site answer (核实): confirmed reports are filed, others rejected."""
    assert inspector.inspector_id is not None  # the route admits inspectors only
    async with _numbering(ctx, wanted=confirmed) as number, ctx.store.transaction() as tx:
        report = await _load(tx, report_id)
        verification = domain.decide_verification(
            report,
            inspector.inspector_id,
            confirmed=confirmed,
            note=note,
            photos=photos,
            decided_by=inspector.username,
            at=ctx.clock.now(),
        )
        tx.emit(ctx.event(verification.event, report_id))
        if verification.rejection is not None:
            return await _save_rejection(ctx, tx, report_id, verification.rejection)
        assert number is not None  # kept aside because the answer confirms
        terms = _filing_terms(ctx, report, number, filed_by=inspector.username)
        return await _save_filing(ctx, tx, domain.decide_filing(report, terms), number)


async def file_report(ctx: ServiceContext, operator: Principal, report_id: UUID) -> Row:
    """An operator files a report that was waiting for review or verification (立案)."""
    async with _numbering(ctx, wanted=True) as number, ctx.store.transaction() as tx:
        report = await _load(tx, report_id)
        assert number is not None
        filing = domain.decide_file(report, _filing_terms(ctx, report, number, filed_by=operator.username))
        return await _save_filing(ctx, tx, filing, number)


async def reject_report(
    ctx: ServiceContext, operator: Principal, report_id: UUID, reason_code: domain.RejectionReason, reason: str
) -> Row:
    """An operator declines to file a report (不予立案)."""
    async with ctx.store.transaction() as tx:
        report = await _load(tx, report_id)
        rejection = domain.decide_rejection(
            report, reason_code, reason, rejected_by=operator.username, at=ctx.clock.now()
        )
        return await _save_rejection(ctx, tx, report_id, rejection)


@dataclass(frozen=True)
class NewCallback:
    """A hotline's callback (回访) as it arrives: which work order, the citizen's verdict, a note."""

    work_order: str
    verdict: CallbackVerdict
    note: str | None = None
    callback_id: str | None = None


async def record_callback(
    ctx: ServiceContext, hotline: Hotline, callback: NewCallback, signed: SignedNonce
) -> tuple[Row, bool]:
    """Record the citizen's verdict on the closed case a hotline's work order became, and emit
    ``case.callback_recorded``; the callback's row and whether it was new (False: the same
    callback again, under its nonce).

    ``NotFound`` (404) for a work order this hotline never sent; ``IllegalTransition`` (409) for a
    work order that never became a case or a case not closed; ``ReplayedNonce`` (409) for a replay.
    """
    try:
        return await _record_callback(ctx, hotline, callback, signed)
    except IntegrityError:
        # A copy sent at the same time took the nonce first: decided again, it is a retry or a replay.
        return await _record_callback(ctx, hotline, callback, signed)


async def _record_callback(
    ctx: ServiceContext, hotline: Hotline, callback: NewCallback, signed: SignedNonce
) -> tuple[Row, bool]:
    async with ctx.store.transaction() as tx:
        await _take_nonce(ctx, tx, signed)
        # The same callback sent again: recognised by its nonce, also after the nonce was pruned
        # (a Standard Webhooks sender retries with one webhook-id for hours).
        # Under its own number too: an app-key sender signs each attempt with a new nonce.
        same = callbacks.c.nonce == signed.nonce
        if callback.callback_id is not None:
            same = or_(same, callbacks.c.callback_id == callback.callback_id)
        query = select(callbacks).where(callbacks.c.hotline_id == hotline.id, same)
        existing = (await tx.connection.execute(query)).mappings().first()
        if existing is not None:
            domain.ensure_callback_resend_of(existing, callback.work_order, callback.verdict, callback.note)
            return existing, False
        work_order_case = await _work_order_case(tx, hotline, callback.work_order)
        now = ctx.clock.now()
        decision = domain.decide_callback(
            work_order_case,
            hotline_id=hotline.id,
            work_order=callback.work_order,
            verdict=callback.verdict,
            note=callback.note,
            callback_id=callback.callback_id,
            nonce=signed.nonce,
            at=now,
        )
        row = {"id": new_id(), **decision.row}
        await tx.connection.execute(callbacks.insert().values(row))
        tx.emit(ctx.event(decision.event, work_order_case.report_id, at=now))
        return await CALLBACKS.get(tx, row["id"]), True


async def _work_order_case(tx: Transaction, hotline: Hotline, work_order: str) -> domain.WorkOrderCase:
    """The hotline's work order numbered ``work_order`` (the latest, were it sent under two keys)
    and its case; ``NotFound`` when the hotline sent none."""
    # Sent signed, or through the bearer route by the hotline's account (before or after the
    # city's integrations.yaml named the account: the reporter is the hotline's id since).
    senders = [hotline.id] if hotline.account is None else [hotline.id, hotline.account]
    query = (
        select(reports.c.id, reports.c.status, reports.c.merged_into, cases.c.status.label("case_status"))
        .select_from(reports.outerjoin(cases, cases.c.id == reports.c.id))
        .where(
            reports.c.reporter_id.in_(senders),
            reports.c.external_ref == work_order,
            reports.c.source == ReportSource.HOTLINE,
        )
        .order_by(reports.c.received_at.desc(), reports.c.id.desc())
        .limit(1)
    )
    row = (await tx.connection.execute(query)).mappings().first()
    if row is None:
        raise NotFound(f"hotline {hotline.id} sent no work order {work_order}", {"work_order": work_order})
    return domain.WorkOrderCase(
        report_id=row["id"],
        report_status=domain.ReportStatus(row["status"]),
        case_status=None if row["case_status"] is None else domain.CaseStatus(row["case_status"]),
        merged_into=row["merged_into"],
    )


async def _take_nonce(ctx: ServiceContext, tx: Transaction, signed: SignedNonce) -> None:
    """Take a signed request's nonce in ``tx``, unless the request is a retry of the one that took
    it (then the caller answers as it did then); ``ReplayedNonce`` for a replay. The hotline's
    nonces too old to come again are dropped on the way."""
    now = ctx.clock.now()
    await tx.connection.execute(
        delete(hotline_nonces).where(
            hotline_nonces.c.hotline_id == signed.hotline_id, hotline_nonces.c.seen_at < now - NONCE_KEPT
        )
    )
    seen = await tx.connection.execute(
        select(hotline_nonces.c.body_sha256).where(
            hotline_nonces.c.hotline_id == signed.hotline_id, hotline_nonces.c.nonce == signed.nonce
        )
    )
    if domain.is_retry(signed.scheme, seen.scalar(), signed.body_sha256):
        return
    await tx.connection.execute(
        hotline_nonces.insert().values(
            hotline_id=signed.hotline_id, nonce=signed.nonce, body_sha256=signed.body_sha256, seen_at=now
        )
    )


def _filing_terms(
    ctx: ServiceContext, report: domain.Report, number: CaseNumber, *, filed_by: str
) -> domain.FilingTerms:
    """What filing ``report`` takes from the city and its calendar, now."""
    category = _category(ctx, report.category_code)
    place = ctx.city.cell(report.cell_id).place
    now = ctx.clock.now()
    return domain.FilingTerms(
        case_number=number.text,
        category=category,
        place=place,
        inspector_id=ctx.city.inspector_for(place.cell_id).id,
        filing_deadline=ctx.deadline(report.received_at, category, "filing"),
        dispatch_deadline=ctx.deadline(now, category, "dispatch"),
        filed_by=filed_by,
        at=now,
    )


async def _save_filing(
    ctx: ServiceContext,
    tx: Transaction,
    filing: domain.Filing,
    number: CaseNumber,
    *,
    insert_row: dict[str, Any] | None = None,
) -> Row:
    """Write a filing: the report's row as it now stands. ``insert_row``: the report arrives
    filed, and one statement writes it whole."""
    saved: Row
    if insert_row is not None:
        # A resend fails here, on its client_ref, before the number can be committed.
        (saved,) = await _INSERT_REPORT.rows(tx.connection, {**insert_row, **filing.report_changes})
    else:
        statement = update(reports).where(reports.c.id == filing.case_id).values(filing.report_changes)
        saved = (await tx.connection.execute(statement.returning(*reports.c))).mappings().one()
    number.use()  # from here the number may be committed: never released
    await _INSERT_CASE.run(tx.connection, filing.case_row)
    tx.emit(ctx.event(filing.event, filing.case_id, at=filing.at))
    return saved


async def _save_rejection(ctx: ServiceContext, tx: Transaction, report_id: UUID, rejection: domain.Rejection) -> Row:
    await tx.connection.execute(update(reports).where(reports.c.id == report_id).values(rejection.changes))
    tx.emit(ctx.event(rejection.event, report_id))
    return await REPORTS.get(tx, report_id)


def _numbering(ctx: ServiceContext, *, wanted: bool) -> AbstractAsyncContextManager[CaseNumber | None]:
    """A case number kept aside (when ``wanted``) for the transaction inside this block; released
    unless a filing used it.
    """
    if not wanted:
        return nullcontext()
    return ctx.resources.get(CaseNumbers).kept_aside(period_of(ctx.clock.now(), ctx.city.timezone))


async def _load(tx: Transaction, report_id: UUID) -> domain.Report:
    """The report, locked for the rest of the transaction."""
    return domain.Report.of(await REPORTS.get(tx, report_id, for_update=True))


def _report_row(new: NewReport, place: GridPlace, now: datetime) -> dict[str, Any]:
    """The new report's row, before intake decides where it starts."""
    return {
        "id": new_id(),
        "source": new.source.value,
        "reporter_id": new.reporter_id,
        "client_ref": new.client_ref,
        "external_ref": new.external_ref,
        "category_code": new.category_code,
        "description": new.description,
        "lon": new.lon,
        "lat": new.lat,
        "cell_id": place.cell_id,
        "community_id": place.community_id,
        "street_id": place.street_id,
        "district_id": place.district_id,
        "photos": list(new.photos),
        "self_handled": new.self_handled,
        "media_url": new.media_url,
        "received_at": now,
    }


def _received(new: NewReport, place: GridPlace) -> ReportReceived:
    return ReportReceived(
        source=new.source,
        category_code=new.category_code,
        description=new.description,
        point=GeoPoint(lon=new.lon, lat=new.lat),
        place=place,
        reporter_id=new.reporter_id,
        external_ref=new.external_ref,
        photos=list(new.photos),
        self_handled=new.self_handled,
    )


async def _find_duplicate(
    ctx: ServiceContext, tx: Transaction, category_code: str, lon: float, lat: float
) -> tuple[domain.OpenCase, float] | None:
    rule = domain.DuplicateRule(
        radius_m=ctx.settings.duplicate_radius_m, window=timedelta(hours=ctx.settings.duplicate_window_hours)
    )
    # A bounding box narrows the candidates in SQL; the exact distance is the domain's call.
    dlat = rule.radius_m / _METRES_PER_DEGREE
    dlon = dlat / max(math.cos(math.radians(lat)), 0.01)
    rows = await _OPEN_CASES_NEAR.rows(
        tx.connection,
        {
            "category_code": category_code,
            "south": lat - dlat,
            "north": lat + dlat,
            "west": lon - dlon,
            "east": lon + dlon,
        },
    )
    candidates = [domain.OpenCase(str(r["id"]), r["category_code"], r["lon"], r["lat"], r["reported_at"]) for r in rows]
    return rule.find(category_code, lon, lat, ctx.clock.now(), candidates)


def _category(ctx: ServiceContext, code: str) -> Category:
    try:
        return ctx.city.category(code)
    except KeyError:
        raise InvalidInput(f"unknown category {code!r}", {"category_code": code}) from None


def _place(ctx: ServiceContext, lon: float, lat: float) -> GridPlace:
    """Where in the grid a point is; refused when outside the city's grid."""
    cell = ctx.city.locate(lon, lat)
    if cell is None:
        raise InvalidInput("the location is outside the city's grid", {"lon": lon, "lat": lat, "city": ctx.city.name})
    return cell.place


def _sent(new: NewReport) -> dict[str, Any]:
    """The fields of ``new`` a resend is compared on."""
    return {name: getattr(new, name) for name in domain.RESEND_FIELDS}


async def _by_client_ref(tx: Transaction, reporter_id: str | None, client_ref: str) -> Row | None:
    if reporter_id is None:
        found = await tx.connection.execute(_ANONYMOUS_RESEND, {"client_ref": client_ref})
    else:
        found = await tx.connection.execute(_RESEND, {"client_ref": client_ref, "reporter_id": reporter_id})
    return found.mappings().first()


# The statements of a filing, built once: building one per request (its bound values, its cache
# key) cost more CPU than running it (bench/README.md, "Intake near its floor").
# On PostgreSQL they run on the driver itself (``shared.db.driver``): a filing is a handful of
# statements, and SQLAlchemy's path cost more CPU than asyncpg's running them.
_INSERT_REPORT = DriverStatement(reports.insert().returning(*reports.c))
_INSERT_CASE = DriverStatement(cases.insert())
_OPEN_CASES_NEAR = DriverStatement(
    select(cases.c.id, cases.c.category_code, cases.c.lon, cases.c.lat, cases.c.reported_at).where(
        cases.c.category_code == bindparam("category_code"),
        # Each status its own parameter, not an IN list expanded at every run.
        cases.c.status.in_([literal(status.value) for status in sorted(domain.OPEN_CASE_STATUSES)]),
        cases.c.lat.between(bindparam("south"), bindparam("north")),
        cases.c.lon.between(bindparam("west"), bindparam("east")),
    )
)
_RESEND = select(reports).where(
    reports.c.client_ref == bindparam("client_ref"), reports.c.reporter_id == bindparam("reporter_id")
)
_ANONYMOUS_RESEND = select(reports).where(
    reports.c.client_ref == bindparam("client_ref"), reports.c.reporter_id.is_(None)
)


async def recompute_provisional_deadlines(ctx: ServiceContext) -> int:
    """Count again the due times of the verifications still waiting that were counted on a
    provisional calendar year, and tell each one that moved or became official as
    ``case.deadline_recomputed``; the number of those. (A filing deadline is judged when the case
    is filed, which is when it is set: none is still running.)"""

    async def recompute(tx: Transaction, report: Row) -> int:
        due = ctx.deadline(report["received_at"], _category(ctx, report["category_code"]), "filing")
        decision = domain.decide_verification_recompute(report, due)
        if decision is None:
            return 0
        changes, recomputed = decision
        await tx.connection.execute(update(reports).where(reports.c.id == report["id"]).values(changes))
        tx.emit(ctx.event(recomputed, report["id"]))
        return 1

    query = select(reports).where(
        reports.c.status == domain.ReportStatus.VERIFYING, reports.c.verification_due_provisional
    )
    return await recompute_rows(ctx, query, reports.c.id, recompute)


async def forget_contacts(ctx: ServiceContext, batch: int = 500) -> int:
    """Delete up to ``batch`` contacts kept longer than ``contact_retention_days`` after their
    report arrived; the number deleted."""
    before = ctx.clock.now() - timedelta(days=ctx.settings.contact_retention_days)
    expired = (
        select(report_contacts.c.report_id)
        .join(reports, reports.c.id == report_contacts.c.report_id)
        .where(reports.c.received_at < before)
        .limit(batch)
    )
    # Looked for on a reading connection: the timer asks every few seconds and nearly always finds
    # nothing, and on SQLite a write transaction would take the file's one writer's lock each time.
    async with ctx.store.engine.connect() as connection:
        ids = list((await connection.execute(expired)).scalars())
    if ids:
        async with ctx.store.transaction() as tx:
            # Deleting one already gone (another intake process was quicker) changes nothing.
            await tx.connection.execute(delete(report_contacts).where(report_contacts.c.report_id.in_(ids)))
    return len(ids)
