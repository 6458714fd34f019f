"""What assessment's use-case tests share: the service on a fresh store, its stream applying
batches through the service's own tracked consumer, and case histories to feed it.

The harness's ``deliver`` knows inbox consumers only; the stream is a tracked consumer, so a batch
goes to ``spec.tracked_consumers(ctx)[0].apply`` in a transaction, as the runtime would hand it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest

from assessment.app import SPEC
from assessment.models import case_states, counters
from shared.city.model import GridCell
from shared.core.ids import new_id
from shared.events.catalogue import (
    CallbackRecorded,
    CallbackVerdict,
    CaseCancelled,
    CaseClosed,
    CaseDispatched,
    CaseFiled,
    CaseHandled,
    CaseReopened,
    CaseReturned,
    CategoryFamily,
    CheckFailed,
    CheckPassed,
    CheckRequested,
    DeadlineKind,
    DeadlineMissed,
    EventPayload,
    ExtensionApproved,
    GeoPoint,
    ReportReceived,
    ReportSource,
)
from shared.events.envelope import Event
from tests.service.conftest import ServiceFactory, ServiceUnderTest

# Wednesday 2026-11-04 10:00 in Shanghai (UTC+8).
WEDNESDAY = datetime(2026, 11, 4, 2, 0, tzinfo=UTC)
CELL = "990102001001001"  # district 990102, patrolled by insp-001
OTHER_CELL = "990103001001001"  # district 990103
COMPONENT = "01-01-04"  # a manhole cover (部件)


@dataclass
class Assessment:
    """The assessment service under test, with its stream."""

    svc: ServiceUnderTest

    async def apply(self, events: Sequence[Event]) -> None:
        """One batch, applied by the service's tracked consumer in one transaction."""
        stream = SPEC.tracked_consumers(self.svc.ctx)[0]
        async with self.svc.store.transaction() as tx:
            await stream.apply(tx, events)

    async def states(self) -> dict[UUID, dict[str, object]]:
        """The stored state of every case, by case id."""
        return {row["case_id"]: dict(row["state"]) for row in await self.svc.rows(case_states)}

    async def counter_rows(self, **where: object) -> list[dict[str, object]]:
        """The counter rows matching ``where``, each with its non-zero counters only."""
        rows = await self.svc.rows(counters, **where)
        keys = ("scope_kind", "scope_id", "period_kind", "period_start")
        return [{**{k: row[k] for k in keys}, **{k: v for k, v in row.items() if k not in keys and v}} for row in rows]


@pytest.fixture
async def assessment(service_under_test: ServiceFactory) -> Assessment:
    """The assessment service on a fresh embedded store."""
    return Assessment(await service_under_test("assessment"))


@dataclass
class History:
    """One case's events as the lifecycle services publish them, built step by step."""

    cell: GridCell
    category: str = COMPONENT
    source: ReportSource = ReportSource.HOTLINE
    case_id: UUID = field(default_factory=new_id)
    events: list[Event] = field(default_factory=list)

    def _add(self, payload: EventPayload, at: datetime) -> Event:
        event = Event(id=new_id(), source="/citycase/test", subject=str(self.case_id), time=at, data=payload)
        self.events.append(event)
        return event

    def received(self, at: datetime) -> Event:
        """The report arrived (上报)."""
        payload = ReportReceived(
            source=self.source,
            category_code=self.category,
            description="a problem",
            point=GeoPoint(lon=113.0, lat=30.0),
            place=self.cell.place,
        )
        return self._add(payload, at)

    def filed(self, at: datetime, *, late: bool = False, self_handled: bool = False) -> Event:
        """Filed (立案); ``late``: after its filing deadline."""
        deadline = at - timedelta(minutes=1) if late else at + timedelta(minutes=10)
        payload = CaseFiled(
            case_number="2026-11-000001",
            category_code=self.category,
            family=CategoryFamily.COMPONENT,
            source=self.source,
            place=self.cell.place,
            filed_by="operator-1",
            reported_at=at,
            filing_deadline=deadline,
            dispatch_deadline=at + timedelta(hours=1),
            self_handled=self_handled,
        )
        return self._add(payload, at)

    def dispatched(self, department: str, at: datetime, attempt: int = 1) -> Event:
        """Sent to ``department`` (派遣)."""
        payload = CaseDispatched(
            department_id=department,
            dispatched_by="dispatcher-1",
            handling_deadline=at + timedelta(days=1),
            attempt=attempt,
        )
        return self._add(payload, at)

    def returned(self, department: str, at: datetime) -> Event:
        """Sent back by ``department`` (回退)."""
        return self._add(CaseReturned(department_id=department, returned_by="clerk", reason="not ours"), at)

    def handled(self, department: str, at: datetime) -> Event:
        """Reported handled (处置反馈)."""
        return self._add(CaseHandled(department_id=department, handled_by="clerk", result="done"), at)

    def checked(self, at: datetime, *, passed: bool, on_time: bool = True) -> list[Event]:
        """A check task (核查) and its answer."""
        deadline = at + timedelta(hours=1) if on_time else at - timedelta(hours=1)
        return [self.check_requested(at - timedelta(hours=2), deadline=deadline), self.answered(at, passed=passed)]

    def check_requested(self, at: datetime, *, deadline: datetime) -> Event:
        """A check task (核查) for the cell's inspector, due at ``deadline``."""
        return self._add(CheckRequested(inspector_id="insp-001", check_deadline=deadline), at)

    def answered(self, at: datetime, *, passed: bool) -> Event:
        """The inspector's answer to the check task."""
        answer: EventPayload = (
            CheckPassed(inspector_id="insp-001") if passed else CheckFailed(inspector_id="insp-001", reason="no")
        )
        return self._add(answer, at)

    def check_missed(self, at: datetime) -> Event:
        """The open check task passed its deadline unanswered (closure's check timer)."""
        deadline = next(e.data.check_deadline for e in reversed(self.events) if isinstance(e.data, CheckRequested))
        return self._add(DeadlineMissed(kind=DeadlineKind.CHECK, deadline=deadline), at)

    def missed(self, department: str, at: datetime) -> Event:
        """The handling deadline passed (超期)."""
        return self._add(DeadlineMissed(kind=DeadlineKind.HANDLING, deadline=at, department_id=department), at)

    def extended(self, at: datetime) -> Event:
        """More time granted (延期)."""
        payload = ExtensionApproved(approved_by="lead", handling_deadline=at + timedelta(days=2))
        return self._add(payload, at)

    def closed(self, at: datetime, *, on_time: bool = True) -> Event:
        """Closed (结案)."""
        return self._add(CaseClosed(closed_by="insp-001", on_time=on_time), at)

    def called_back(self, at: datetime, verdict: CallbackVerdict) -> Event:
        """The hotline called the citizen back (回访) and pushed the verdict."""
        payload = CallbackRecorded(hotline_id="12345", work_order="WO-1", verdict=verdict, note="a note")
        return self._add(payload, at)

    def reopened(self, department: str, at: datetime) -> Event:
        """Reopened for rework (返工) after an unsatisfied callback."""
        return self._add(CaseReopened(department_id=department, reason="not satisfied"), at)

    def cancelled(self, at: datetime) -> Event:
        """Voided (作废)."""
        return self._add(CaseCancelled(cancelled_by="lead", reason="void"), at)


def history(assessment: Assessment, cell_id: str = CELL, source: ReportSource = ReportSource.HOTLINE) -> History:
    """A new case in ``cell_id`` of the demo city, reported through ``source``."""
    return History(assessment.svc.ctx.city.cell(cell_id), source=source)
