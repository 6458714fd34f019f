"""The stream over a real bus: ``assessment rebuild`` replays a damaged state into exactly the
recount on both backends, and instances sharing partitions count each event once.
"""

from __future__ import annotations

import asyncio
import warnings
from pathlib import Path

import pytest
from hypothesis.errors import NonInteractiveExampleWarning
from sqlalchemy import delete, update

from assessment.handlers import Stream
from assessment.models import counters, metadata, positions
from assessment.rebuild import prepare, rebuild, replay
from assessment.stream import STREAM_CONSUMER, forget_everything
from services.tools.cli import main
from services.tools.rebuild import MemberFailed
from services.tools.rebuild import rebuild as rebuild_in_processes
from shared.events.envelope import Event
from shared.messaging.binding import encode
from shared.messaging.store import ServiceStore
from shared.messaging.tracked import TrackedConsumer, TrackedConsumerSpec
from tests.backends.helpers import wait_until
from tests.backends.test_assessment_stream import CITY, Facts, histories, recount, stream_rows
from tests.conftest import Backend


def generated_cases(count: int) -> list[Facts]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NonInteractiveExampleWarning)
        return [histories().example() for _ in range(count)]


async def test_rebuild_replays_the_log_into_the_recount(backend: Backend) -> None:
    store = await backend.store("assessment", metadata)
    cases = generated_cases(40)
    events = [event for case in cases for event in case.events]
    await backend.bus.publish([encode(event, backend.case_events) for event in events])

    async def replay() -> int:
        result = await rebuild(
            store,
            backend.bus,
            CITY,
            topic=backend.case_events,
            dead_letter_topic=backend.dead_letter,
            batch_size=50,
        )
        return result.events

    assert await replay() == len(events)
    assert await stream_rows(store) == recount(cases)

    # Damage: rows lost, values corrupted. A second rebuild starts from nothing again.
    async with store.transaction() as tx:
        await tx.connection.execute(delete(counters).where(counters.c.scope_kind == "district"))
        await tx.connection.execute(update(counters).values(closed=counters.c.closed + 7))
    assert await stream_rows(store) != recount(cases)
    assert await replay() == len(events)
    assert await stream_rows(store) == recount(cases)


async def _published_for_members(backend: Backend) -> tuple[ServiceStore, list[Facts], list[Event]]:
    """The stream's store and 60 cases' events published: a log for a group of members (none on
    the embedded log, which one process reads)."""
    if backend.name == "embedded":
        pytest.skip("the embedded log runs one process: a group has one member there")
    store = await backend.store("assessment", metadata)
    cases = generated_cases(60)
    events = [event for case in cases for event in case.events]
    await backend.bus.publish([encode(event, backend.case_events) for event in events])
    return store, cases, events


@pytest.mark.parametrize("workers", [1, 2])
async def test_a_rebuild_in_processes_counts_each_event_once(backend: Backend, workers: int) -> None:
    """The command's replay, in this process (1) or in two member processes splitting the partitions
    of one replay, writing the city-wide counter rows both need in small batches: the counters
    equal the recount, and the events they report add up to the log (none counted by both).
    """
    store, cases, events = await _published_for_members(backend)
    settings = backend.settings.model_copy(
        update={
            "topic_case_events": backend.case_events,
            "topic_dead_letter": backend.dead_letter,
            "rebuild_batch_size": 7,
        }
    )

    result = await asyncio.to_thread(rebuild_in_processes, settings, workers)

    assert result.events == len(events)
    assert await stream_rows(store) == recount(cases)


async def test_members_of_one_replay_count_each_event_once(backend: Backend) -> None:
    """Two members joining one prepared replay: their shares add up to the log, however the group
    splits the partitions (one may take them all when it is done before the other joins, or hand
    one over part-way through a rebalance).
    """
    store, cases, events = await _published_for_members(backend)
    plan = await prepare(store, backend.bus, topic=backend.case_events)

    members = await asyncio.gather(
        *(replay(store, backend.bus, CITY, plan, dead_letter_topic=backend.dead_letter, batch_size=7) for _ in "ab")
    )

    assert sum(member.events for member in members) == len(events)
    assert await stream_rows(store) == recount(cases)


async def test_a_member_that_fails_fails_the_rebuild(backend: Backend, tmp_path: Path) -> None:
    if backend.name == "embedded":
        pytest.skip("the embedded log runs one process: a group has one member there")
    await backend.store("assessment", metadata)
    # The members, not the parent, read the city: theirs is the failure reported.
    settings = backend.settings.model_copy(
        update={"topic_case_events": backend.case_events, "city_dir": tmp_path / "no-city"}
    )

    with pytest.raises(MemberFailed, match=r"member [12] of 2 \(pid \d+\) failed with exit code 1"):
        await asyncio.to_thread(rebuild_in_processes, settings, 2)


def test_a_rebuild_needs_at_least_one_worker(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as refused:
        main(["assessment", "rebuild", "--workers", "0"])
    assert refused.value.code == 2
    assert "--workers: at least 1, not 0" in capsys.readouterr().err


def test_a_rebuild_in_several_processes_needs_production_mode(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as refused:
        main(["assessment", "rebuild", "--mode", "embedded", "--workers", "2"])
    assert refused.value.code == 2
    assert "--workers needs production mode" in capsys.readouterr().err


async def test_instances_sharing_the_partitions_count_each_event_once(backend: Backend) -> None:
    """Two assessment instances in one consumer group split (and, while the group rebalances,
    hand over) the partitions; the counters still equal the recount.
    """
    if backend.name == "embedded":
        pytest.skip("the embedded log runs one process: a group has one member there")
    store = await backend.store("assessment", metadata)
    cases = generated_cases(60)
    events = [event for case in cases for event in case.events]
    half = len(events) // 2
    await backend.bus.publish([encode(event, backend.case_events) for event in events[:half]])

    def member() -> TrackedConsumer:
        spec = TrackedConsumerSpec(STREAM_CONSUMER, [backend.case_events], Stream(CITY).apply)
        return TrackedConsumer(spec, store, backend.bus, positions, dead_letter_topic=backend.dead_letter, batch_size=7)

    first = member()
    ends = await backend.bus.end_offsets(backend.case_events)
    running = [asyncio.create_task(first.run())]
    try:
        await asyncio.sleep(1)
        running.append(asyncio.create_task(member().run()))  # joins mid-stream: a rebalance
        await backend.bus.publish([encode(event, backend.case_events) for event in events[half:]])
        ends = await backend.bus.end_offsets(backend.case_events)

        async def caught_up() -> bool:
            reached = await first.stored_positions(list(ends))
            return all(reached[position] >= end for position, end in ends.items())

        await wait_until(caught_up, timeout_s=60)
    finally:
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
    assert await stream_rows(store) == recount(cases)


async def test_a_running_instance_replays_when_its_state_is_emptied_under_it(backend: Backend) -> None:
    """The state is emptied (a rebuild began elsewhere) while an instance runs: at its next batch it
    finds itself ahead of the stored positions, seeks back and replays; twice in a row too.
    """
    store = await backend.store("assessment", metadata)
    cases = generated_cases(30)
    spec = TrackedConsumerSpec(STREAM_CONSUMER, [backend.case_events], Stream(CITY).apply)
    member = TrackedConsumer(spec, store, backend.bus, positions, dead_letter_topic=backend.dead_letter, batch_size=20)
    running = asyncio.create_task(member.run())

    async def caught_up() -> bool:
        ends = await backend.bus.end_offsets(backend.case_events)
        reached = await member.stored_positions(list(ends))
        return all(reached[position] >= end for position, end in ends.items()) and (
            await stream_rows(store) == recount(published)
        )

    published: list[Facts] = []
    try:
        for round_cases in (cases[:10], cases[10:20], cases[20:]):
            if published:
                await forget_everything(store)
            published += round_cases
            events = [event for case in round_cases for event in case.events]
            await backend.bus.publish([encode(event, backend.case_events) for event in events])
            await wait_until(caught_up, timeout_s=60)
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
    assert await stream_rows(store) == recount(cases)
