"""The case file's machinery: every event of every service lands in the case's timeline, and the
case's row follows the lifecycle (``intake.domain.follow``) so the command center and duplicate
detection see it.

A batch is applied in three statements or so rather than two or three per event: this consumer
reads every event of every service. Event by event (a batch that failed), it is the same code on
a batch of one.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any
from uuid import UUID

from sqlalchemy import select

from intake import domain
from intake.models import cases, timeline
from shared.db.rows import Rows
from shared.events.envelope import Event
from shared.messaging.store import Transaction

CASES = Rows(cases, "case")


async def apply_batch(tx: Transaction, events: Sequence[Event]) -> None:
    """Apply ``events`` to the case file: their timeline rows, then their cases' rows."""
    await tx.session.execute(timeline.insert(), [row for event in events for row in _timeline_rows(event)])
    touching = [event for event in events if domain.is_case_row_event(event.data)]
    if not touching:
        return  # reports and filings only: their rows were written with them
    states = await _case_states(tx, {UUID(event.subject) for event in touching})
    for case_id, changes in sorted(_changes(states, touching).items()):
        await CASES.update(tx, case_id, **changes)


async def apply_one(tx: Transaction, event: Event) -> None:
    """Apply one event to the case file (a batch of one)."""
    await apply_batch(tx, [event])


def _timeline_rows(event: Event) -> list[dict[str, Any]]:
    """The timeline rows of an event, one per case whose timeline it joins."""
    step = domain.timeline_step(UUID(event.subject), event.data)
    entry = {
        "event_id": event.id,
        "at": event.time,
        "event_type": event.type,
        "service": event.source.rsplit("/", 1)[-1],
        "actor": step.actor,
        "reason": step.reason,
        "details": step.details,
    }
    return [{"case_id": case_id, **entry} for case_id in step.case_ids]


async def _case_states(tx: Transaction, case_ids: Iterable[UUID]) -> dict[UUID, domain.CaseState]:
    """The state of the cases among ``case_ids`` (a report that never became a case has none)."""
    result = await tx.session.execute(
        select(cases.c.id, cases.c.status, cases.c.status_before_suspension).where(cases.c.id.in_(list(case_ids)))
    )
    return {
        row.id: domain.CaseState(
            domain.CaseStatus(row.status),
            None if row.status_before_suspension is None else domain.CaseStatus(row.status_before_suspension),
        )
        for row in result
    }


def _changes(states: dict[UUID, domain.CaseState], events: Sequence[Event]) -> dict[UUID, dict[str, Any]]:
    """The changes ``events`` make to each case's row, in order: each event sees the case as the
    events before it in the batch left it."""
    pending: dict[UUID, dict[str, Any]] = {}
    for event in events:
        case_id = UUID(event.subject)
        state = states.get(case_id)
        if state is None:
            continue
        states[case_id], changes = domain.follow(state, event.data, event.time)
        if changes:
            pending.setdefault(case_id, {}).update(changes)
    return pending
