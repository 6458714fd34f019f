"""``python -m services assessment rebuild [--workers N]``: the stream's replay (assessment/rebuild.py),
in this process or in N member processes.

With several members the replay is prepared once, here — the state emptied, the log's end noted, a
consumer group named — then each member, a process of its own (spawned: a fresh interpreter, nothing
shared but the database and the broker), joins the group and applies the partitions the group assigns
it, exactly as the stream's instances share theirs: the positions' row locks fence a partition that
changes hands, and the counters are written in key order, so members wait for each other rather than
deadlock. Every member stops once every partition has reached the end, whoever applied it.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
from collections.abc import AsyncIterator
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess

from assessment.models import metadata
from assessment.rebuild import MemberReplay, Replay, ReplayPlan, combined, prepare, replay
from assessment.rebuild import rebuild as rebuild_in_one
from services.runtime.runtime import build_bus, settle_heap
from services.tools.launcher import stop_with_parent
from shared.city.loader import load_city
from shared.city.model import City
from shared.core.clock import SystemClock
from shared.core.logs import configure_logging
from shared.core.settings import Settings
from shared.db.engine import create_engine
from shared.db.migrations import upgrade_to_head
from shared.messaging.bus import Bus
from shared.messaging.store import ServiceStore

SERVICE = "assessment"


class MemberFailed(RuntimeError):
    """A member process of the replay ended without finishing its share."""


def rebuild(settings: Settings, workers: int = 1) -> Replay:
    """Replay the case event log into fresh counters with ``workers`` members: 1 in this process,
    more (production mode: the embedded log has one reader) each in a process of its own.
    """
    if workers < 1:
        raise ValueError(f"a replay needs at least one member, not {workers}")
    if workers == 1:
        return asyncio.run(_rebuild_here(settings))
    plan = asyncio.run(_prepare(settings))
    return combined(_replay_in_processes(settings, plan, workers))


def _replay_in_processes(settings: Settings, plan: ReplayPlan, workers: int) -> list[MemberReplay]:
    context = multiprocessing.get_context("spawn")
    running: dict[Connection, tuple[int, BaseProcess]] = {}
    for number in range(1, workers + 1):
        receiving, sending = context.Pipe(duplex=False)
        member = context.Process(
            target=_member, args=(settings, plan, sending), name=f"assessment-rebuild-{number}", daemon=True
        )
        member.start()
        sending.close()
        running[receiving] = (number, member)
    done: list[MemberReplay] = []
    try:
        while running:
            for ready in wait(list(running)):
                assert isinstance(ready, Connection)
                number, process = running.pop(ready)
                try:
                    done.append(ready.recv())
                except EOFError:  # it ended without a result: its traceback is on standard error
                    process.join()
                    raise MemberFailed(
                        f"member {number} of {workers} (pid {process.pid}) failed with exit code {process.exitcode}"
                    ) from None
                process.join()
    finally:
        # One member failing fails the replay: the others are stopped rather than left to finish its share.
        for _, process in running.values():
            process.terminate()
            process.join()
    return done


def _member(settings: Settings, plan: ReplayPlan, results: Connection) -> None:
    """One member process: its share of the replay, sent back to the parent."""
    stop_with_parent()
    configure_logging(settings.log_format, settings.log_level, SERVICE)
    results.send(asyncio.run(_replay(settings, plan)))
    results.close()


async def _rebuild_here(settings: Settings) -> Replay:
    async with _connected(settings, migrate=True) as (store, bus):
        city = _city(settings)
        return await rebuild_in_one(
            store,
            bus,
            city,
            topic=settings.topic_case_events,
            dead_letter_topic=settings.topic_dead_letter,
            batch_size=settings.rebuild_batch_size,
        )


async def _prepare(settings: Settings) -> ReplayPlan:
    async with _connected(settings, migrate=True) as (store, bus):
        return await prepare(store, bus, topic=settings.topic_case_events)


async def _replay(settings: Settings, plan: ReplayPlan) -> MemberReplay:
    async with _connected(settings, migrate=False) as (store, bus):
        city = _city(settings)
        return await replay(
            store, bus, city, plan, dead_letter_topic=settings.topic_dead_letter, batch_size=settings.rebuild_batch_size
        )


def _city(settings: Settings) -> City:
    """The city the replay counts for, loaded before the process's heap is settled (``settle_heap``)."""
    city = load_city(settings.city_dir)
    settle_heap()
    return city


@contextlib.asynccontextmanager
async def _connected(settings: Settings, *, migrate: bool) -> AsyncIterator[tuple[ServiceStore, Bus]]:
    engine = create_engine(settings.database_url(SERVICE))
    bus = build_bus(
        settings,
        client_id=f"citycase-{SERVICE}-rebuild",
        fetch_bytes_per_partition=settings.rebuild_fetch_bytes_per_partition,
    )
    try:
        if migrate:
            await upgrade_to_head(SERVICE, engine)
        await bus.start()
        yield (
            ServiceStore(SERVICE, engine, metadata, clock=SystemClock(), case_events_topic=settings.topic_case_events),
            bus,
        )
    finally:
        await bus.close()
        await engine.dispose()
