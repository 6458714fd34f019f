"""How the indicator stream keeps what it knows: the compact state of every case and the counters
per scope and period bucket, read and written a whole batch at a time.

A batch touches thousands of counter rows, so on PostgreSQL each write is one statement over
column arrays (``unnest``); SQLite, for the embedded city, takes an ``INSERT ... ON CONFLICT``
with many rows. The rows are always written in key order: instances sharing the city-wide rows
wait for each other's locks, never deadlock.
"""

from __future__ import annotations

from collections.abc import Iterable
from uuid import UUID

from sqlalchemy import delete, select, text
from sqlalchemy.dialects import sqlite

from assessment.domain import COUNTERS, CaseState, RowKey
from assessment.models import case_states, counters, positions
from shared.messaging.store import ServiceStore, Transaction

STREAM_CONSUMER = "assessment.indicators"
"""The tracked consumer's name: its positions in the log are stored under it."""


async def load_states(tx: Transaction, case_ids: Iterable[UUID]) -> dict[UUID, CaseState]:
    """The stored states of those of ``case_ids`` the stream has seen before."""
    rows = await tx.connection.execute(
        select(case_states.c.case_id, case_states.c.state).where(case_states.c.case_id.in_(list(case_ids)))
    )
    return {case_id: CaseState.from_json(state) for case_id, state in rows}


async def add_to_counters(tx: Transaction, rows: dict[RowKey, list[int]]) -> None:
    """Add each vector of ``rows`` to its counter row (created at zero when missing)."""
    if not rows:
        return
    if tx.on_postgresql:
        kinds, ids, periods, starts = zip(*rows, strict=True)
        parameters: dict[str, object] = {"kinds": list(kinds), "ids": list(ids), "periods": list(periods)}
        # Numbers and dates travel as array literals: bound as arrays, asyncpg checks every element
        # for nesting, which cost more than the database's work on the rows.
        columns = zip(("starts", *COUNTERS), (starts, *zip(*rows.values(), strict=True)), strict=True)
        parameters.update({name: f"{{{','.join(map(str, column))}}}" for name, column in columns})
        await tx.connection.execute(_ADD_TO_COUNTERS, parameters)
        return
    ordered = sorted(rows.items())
    insert = sqlite.insert(counters)
    statement = insert.on_conflict_do_update(
        index_elements=["scope_kind", "scope_id", "period_kind", "period_start"],
        set_={name: counters.c[name] + insert.excluded[name] for name in COUNTERS},
    )
    values_list = [
        {
            "scope_kind": kind,
            "scope_id": scope_id,
            "period_kind": period_kind,
            "period_start": start,
            **dict(zip(COUNTERS, vector, strict=True)),
        }
        for (kind, scope_id, period_kind, start), vector in ordered
    ]
    await tx.connection.execute(statement, values_list)


async def save_states(tx: Transaction, states: dict[UUID, CaseState]) -> None:
    """Store the new state of each case of ``states`` (inserted or replaced)."""
    if not states:
        return
    ordered = sorted(states.items())
    if tx.on_postgresql:
        await tx.connection.execute(
            _SAVE_STATES,
            {"ids": [case_id for case_id, _ in ordered], "states": [state.to_text() for _, state in ordered]},
        )
        return
    insert = sqlite.insert(case_states)
    statement = insert.on_conflict_do_update(index_elements=["case_id"], set_={"state": insert.excluded.state})
    rows = [{"case_id": case_id, "state": state.to_json()} for case_id, state in ordered]
    await tx.connection.execute(statement, rows)


# The rows are sorted here, by the database: the key order that keeps instances from deadlocking.
_ADD_TO_COUNTERS = text(
    f"""
    INSERT INTO counters (scope_kind, scope_id, period_kind, period_start, {", ".join(COUNTERS)})
    SELECT * FROM unnest(
        CAST(:kinds AS text[]), CAST(:ids AS text[]), CAST(:periods AS text[]), CAST(CAST(:starts AS text) AS date[]),
        {", ".join(f"CAST(CAST(:{name} AS text) AS bigint[])" for name in COUNTERS)}
    ) AS change ORDER BY 1, 2, 3, 4
    ON CONFLICT (scope_kind, scope_id, period_kind, period_start) DO UPDATE SET
        {", ".join(f"{name} = counters.{name} + excluded.{name}" for name in COUNTERS)}
    """
)
_SAVE_STATES = text(
    """
    INSERT INTO case_states (case_id, state)
    SELECT * FROM unnest(CAST(:ids AS uuid[]), CAST(:states AS json[])) AS saved ORDER BY 1
    ON CONFLICT (case_id) DO UPDATE SET state = excluded.state
    """
)


async def forget_everything(store: ServiceStore) -> None:
    """Empty the stream's state, counters and positions, so the next run replays the whole log."""
    async with store.transaction() as tx:
        if tx.on_postgresql:
            # Deleting millions of rows would leave them all to vacuum, under the replay's writes.
            await tx.connection.execute(text("TRUNCATE counters, case_states"))
        else:
            for table in (counters, case_states):
                await tx.connection.execute(delete(table))
        await tx.connection.execute(delete(positions).where(positions.c.consumer == STREAM_CONSUMER))
