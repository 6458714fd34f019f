"""Parked outbox rows, and the outbox's health: what operators see, and how they send a row again.

The relay parks a row the bus keeps refusing for good (larger than its topic takes, its topic
missing or forbidden): it stops trying, and the later rows of the same topic and key (the same
case) wait behind it so they cannot overtake it; every other row flows. A parked row stays until
an operator deals with the cause (a topic created or allowed, a limit raised) and un-parks it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from sqlalchemy import ColumnElement, Exists, FromClause, exists, func, select, update

from shared.core.metrics import OUTBOX_BACKLOG_ROWS, OUTBOX_OLDEST_UNSENT_SECONDS, OUTBOX_PARKED_ROWS
from shared.messaging.store import ServiceStore


@dataclass(frozen=True, slots=True)
class OutboxHealth:
    """How one service's outbox stands."""

    parked: int
    # Rows waiting to be published, parked ones not counted (rows held behind them are).
    backlog: int
    # When the oldest of those was committed; None when none waits.
    oldest_waiting_since: datetime | None

    def oldest_waiting(self, now: datetime) -> timedelta:
        """How long the oldest waiting row has waited (zero when none waits)."""
        if self.oldest_waiting_since is None:
            return timedelta(0)
        return max(now - self.oldest_waiting_since, timedelta(0))


@dataclass(frozen=True, slots=True)
class ParkedRow:
    """A parked outbox row, for an operator."""

    seq: int
    message_id: UUID
    topic: str
    key: bytes | None
    size: int
    attempts: int
    created_at: datetime
    parked_at: datetime
    reason: str
    # Later rows of the same topic and key, waiting behind this one.
    held_behind: int


async def outbox_health(store: ServiceStore) -> OutboxHealth:
    """Parked rows, waiting rows and the oldest waiting row of ``store``'s outbox, in one query
    (each part read through its own partial index).
    """
    outbox = store.outbox
    waiting = (outbox.c.sent_at.is_(None), outbox.c.parked_at.is_(None))
    query = select(
        select(func.count()).select_from(outbox).where(outbox.c.parked_at.is_not(None)).scalar_subquery(),
        select(func.count()).select_from(outbox).where(*waiting).scalar_subquery(),
        select(outbox.c.created_at).where(*waiting).order_by(outbox.c.seq).limit(1).scalar_subquery(),
    )
    async with store.engine.connect() as connection:
        parked, backlog, oldest = (await connection.execute(query)).one()
    return OutboxHealth(parked=int(parked), backlog=int(backlog), oldest_waiting_since=oldest)


async def parked_rows(store: ServiceStore) -> list[ParkedRow]:
    """Every parked row of ``store``'s outbox, oldest first, with how many rows wait behind it."""
    outbox = store.outbox
    later = outbox.alias("later")
    held_behind = (
        select(func.count())
        .select_from(later)
        .where(later.c.sent_at.is_(None), *_same_case_after(later, outbox))
        .scalar_subquery()
    )
    query = (
        select(
            outbox.c.seq,
            outbox.c.message_id,
            outbox.c.topic,
            outbox.c.key,
            func.length(outbox.c.value),
            outbox.c.attempts,
            outbox.c.created_at,
            outbox.c.parked_at,
            outbox.c.park_reason,
            held_behind,
        )
        .where(outbox.c.parked_at.is_not(None))
        .order_by(outbox.c.seq)
    )
    async with store.engine.connect() as connection:
        rows = (await connection.execute(query)).all()
    return [
        ParkedRow(
            seq=row[0],
            message_id=row[1],
            topic=row[2],
            key=row[3],
            size=int(row[4]),
            attempts=row[5],
            created_at=row[6],
            parked_at=row[7],
            reason=row[8] or "",
            held_behind=int(row[9]),
        )
        for row in rows
    ]


async def unpark(store: ServiceStore, seqs: Sequence[int] | None = None) -> int:
    """Hand parked rows back to the relay with fresh attempts (all of them when ``seqs`` is
    None); the rows held behind them follow once they are published. The number un-parked.
    """
    outbox = store.outbox
    statement = update(outbox).where(outbox.c.parked_at.is_not(None))
    if seqs is not None:
        statement = statement.where(outbox.c.seq.in_(list(seqs)))
    async with store.writer.begin() as connection:
        result = await connection.execute(statement.values(parked_at=None, park_reason=None, attempts=0))
    return int(getattr(result, "rowcount", 0) or 0)


def held_by_a_parked_row(outbox: FromClause) -> Exists:
    """Whether an outbox row waits behind a parked row of its topic and key (its case).

    Rows without a key promise no order, so nothing holds them.
    """
    parked = outbox.alias("parked")
    return exists().where(parked.c.parked_at.is_not(None), *_same_case_after(outbox, parked))


def _same_case_after(row: FromClause, earlier: FromClause) -> tuple[ColumnElement[bool], ...]:
    return (row.c.topic == earlier.c.topic, row.c.key == earlier.c.key, row.c.seq > earlier.c.seq)


async def refresh_outbox_gauges(store: ServiceStore) -> None:
    """Read ``store``'s parked rows, backlog and oldest waiting row into the gauges."""
    health = await outbox_health(store)
    service = store.service
    OUTBOX_PARKED_ROWS.labels(service).set(health.parked)
    OUTBOX_BACKLOG_ROWS.labels(service).set(health.backlog)
    OUTBOX_OLDEST_UNSENT_SECONDS.labels(service).set(health.oldest_waiting(store.clock.now()).total_seconds())
