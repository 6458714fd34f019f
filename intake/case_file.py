"""The case file's machinery: every event of every service lands in the case's timeline, the case's
row follows the lifecycle (``intake.domain.follow``) so the command center and duplicate detection
see it, and what the case's hotline and departments are to hear of it (``intake.outbound``) goes
out on the integration topic in the same transaction.

A batch is applied in three statements or so rather than two or three per event: this consumer
reads every event of every service. What the messages need of the cases is read once per batch
(the work orders merged into the cases that close, reopen or are cancelled too), and only in a city
with somewhere to send them. Event by event (a batch that failed), it is the same code on a batch
of one.

The case file is made once as intake starts, before it serves: where intake refuses to start with
integrations it could not work with (``intake.delivery.check_integrations``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any
from uuid import UUID

from sqlalchemy import bindparam, exists, select

from intake import domain
from intake.delivery import check_integrations
from intake.models import cases, reports, timeline
from intake.outbound import INTERESTING, JOINED_HEAR, CaseFacts, Handling, Outbound, encoded
from shared.db.driver import DriverStatement, Row
from shared.db.rows import Rows
from shared.events.catalogue import CaseHandled, ReportMerged, ReportSource
from shared.events.envelope import Event
from shared.messaging.store import Transaction
from shared.service.context import ServiceContext

CASES = Rows(cases, "case")

# What the messages read of a report and its case (none yet until it is filed).
_FACTS = select(
    reports.c.id,
    reports.c.source,
    reports.c.reporter_id,
    reports.c.external_ref,
    reports.c.verifier_id,
    reports.c.category_code,
    reports.c.description,
    reports.c.lon,
    reports.c.lat,
    reports.c.cell_id,
    reports.c.community_id,
    reports.c.street_id,
    reports.c.district_id,
    reports.c.photos,
    reports.c.received_at,
    reports.c.case_number,
    reports.c.merged_into,
    cases.c.filed_at,
    cases.c.department_id,
    cases.c.handled_result,
    cases.c.handled_photos,
    cases.c.handled_at,
    cases.c.closed_at,
    cases.c.on_time,
).select_from(reports.outerjoin(cases, cases.c.id == reports.c.id))

# The batch's statements, built once and run on the driver: this consumer reads every event of
# every service, and a statement built per batch costs more CPU to build and key for the cache
# than to run.
_INSERT_TIMELINE = DriverStatement(timeline.insert())
_CASE_STATES = DriverStatement(
    select(cases.c.id, cases.c.status, cases.c.status_before_suspension).where(
        cases.c.id.in_(bindparam("ids", expanding=True))
    )
)
_FACTS_OF = DriverStatement(_FACTS.where(reports.c.id.in_(bindparam("ids", expanding=True))))
# The hotlines' work orders merged into the cases ``ids`` whose merge the case file has applied.
_JOINED = DriverStatement(
    _FACTS.where(
        reports.c.merged_into.in_(bindparam("ids", expanding=True)),
        reports.c.source == ReportSource.HOTLINE,
        exists().where(timeline.c.case_id == reports.c.id, timeline.c.event_type == ReportMerged.TYPE),
    ).order_by(reports.c.received_at, reports.c.id)
)


class CaseFile:
    """The case file's consumer, with the city's endpoints and the topic its messages go out on."""

    def __init__(self, ctx: ServiceContext) -> None:
        check_integrations(ctx)
        self.outbound = Outbound(ctx.integrations, ctx.city, ctx.settings.public_url)
        self.topic = ctx.settings.topic_integration
        self.source = ctx.source

    async def apply_batch(self, tx: Transaction, events: Sequence[Event]) -> None:
        """Apply ``events`` to the case file: their messages (from the cases and the timeline as
        they stood before the batch), their timeline rows, then their cases' rows."""
        await self._send_messages(tx, events)
        await _INSERT_TIMELINE.run_many(tx.connection, [row for event in events for row in _timeline_rows(event)])
        touching = [event for event in events if domain.is_case_row_event(event.data)]
        if not touching:
            return  # reports and filings only: their rows were written with them
        states = await _case_states(tx, {UUID(event.subject) for event in touching})
        for case_id, changes in sorted(_changes(states, touching).items()):
            await CASES.update(tx, case_id, **changes)

    async def apply_one(self, tx: Transaction, event: Event) -> None:
        """Apply one event to the case file (a batch of one)."""
        await self.apply_batch(tx, [event])

    async def _send_messages(self, tx: Transaction, events: Sequence[Event]) -> None:
        """Send what the batch's events tell hotlines and departments, event by event, each seeing
        its case as the events before it in the batch left it."""
        if not self.outbound.sends_anything:
            return
        relevant = [event for event in events if isinstance(event.data, INTERESTING)]
        if not relevant:
            return
        into = {event.data.into_case_id for event in relevant if isinstance(event.data, ReportMerged)}
        facts = await _facts(tx, {UUID(event.subject) for event in relevant} | into)
        joined = await _joined(tx, {UUID(event.subject) for event in relevant if isinstance(event.data, JOINED_HEAR)})
        for event in relevant:
            case_id = UUID(event.subject)
            known = facts.get(case_id)
            if known is None:
                continue  # an event about a report intake never had (none in a whole city)
            merged_into = None
            if isinstance(event.data, ReportMerged):
                merged_into = facts.get(event.data.into_case_id)
                # From now on it hears of the case it joined (its receipt goes out first).
                joined[event.data.into_case_id].append(known)
            for message in self.outbound.messages(event, known, merged_into, joined.get(case_id, ())):
                tx.send(
                    encoded(message, topic=self.topic, source=self.source, at=event.time),
                    message_id=message.message_id,
                )
            facts[case_id] = known.after(event.data, event.time)


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
    found = await _CASE_STATES.rows(tx.connection, {"ids": list(case_ids)})
    return {
        row["id"]: domain.CaseState(
            domain.CaseStatus(row["status"]),
            None if row["status_before_suspension"] is None else domain.CaseStatus(row["status_before_suspension"]),
        )
        for row in found
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
        if isinstance(event.data, CaseHandled):
            # Kept for the reply a hotline gets at closure (the event itself is long gone by then).
            changes.update(handled_result=event.data.result, handled_photos=event.data.photos, handled_at=event.time)
        if changes:
            pending.setdefault(case_id, {}).update(changes)
    return pending


async def _joined(tx: Transaction, case_ids: Iterable[UUID]) -> defaultdict[UUID, list[CaseFacts]]:
    """The hotlines' work orders merged into the cases among ``case_ids``, by case, whose merge the
    case file has applied: one read for the batch. (A merge the case file has yet to apply would
    make its reply come before its receipt; it hears of the case from its merge on.)"""
    found: defaultdict[UUID, list[CaseFacts]] = defaultdict(list)
    wanted = list(case_ids)
    if not wanted:
        return found
    for row in await _JOINED.rows(tx.connection, {"ids": wanted}):
        found[row["merged_into"]].append(_case_facts(row))
    return found


async def _facts(tx: Transaction, ids: Iterable[UUID]) -> dict[UUID, CaseFacts]:
    """What the messages need of the reports (and their cases) among ``ids``."""
    found = await _FACTS_OF.rows(tx.connection, {"ids": list(ids)})
    return {row["id"]: _case_facts(row) for row in found}


def _case_facts(row: Row) -> CaseFacts:
    handling = None
    if row["handled_at"] is not None:
        handling = Handling(row["handled_result"] or "", tuple(row["handled_photos"] or ()), row["handled_at"])
    return CaseFacts(
        id=row["id"],
        source=ReportSource(row["source"]),
        reporter_id=row["reporter_id"],
        external_ref=row["external_ref"],
        verifier_id=row["verifier_id"],
        category_code=row["category_code"],
        description=row["description"],
        lon=row["lon"],
        lat=row["lat"],
        cell_id=row["cell_id"],
        community_id=row["community_id"],
        street_id=row["street_id"],
        district_id=row["district_id"],
        photos=tuple(row["photos"]),
        received_at=row["received_at"],
        case_number=row["case_number"],
        filed_at=row["filed_at"],
        department_id=row["department_id"],
        handling=handling,
        closed_at=row["closed_at"],
        on_time=row["on_time"],
    )
