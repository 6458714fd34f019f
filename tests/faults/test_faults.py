"""The fault suite: the city on PostgreSQL + Kafka, each service its own process, under a steady
load of reports and the work they make, struck by one fault at a time — a poison outbox row, a
process killed with -9 mid-batch (intake's relay between publishing a batch and marking it sent,
dispatch's consumer applying a batch, the assessment stream applying one, each with requests in
flight), the broker stopped and started, PostgreSQL restarted, PostgreSQL hung.

After each the city must be whole (``FaultCity.assert_whole``: every outbox sent, every group at
the end of the log, ``reconcile`` 0 differences, nothing lost nor doubled), and the clients must
have seen no 500 — a 503 only while a dependency was out, a refused connection only to a process
that was down (``tests/faults/load.py``).

The faults run in this order on one city (module scope); each test leaves it whole for the next.
The broker and PostgreSQL are left running however a test ends.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from shared.core.ids import new_id
from shared.core.settings import SERVICE_NAMES
from shared.messaging.bus import Message
from shared.messaging.bus.kafka import KafkaBus
from tests.faults import infra
from tests.faults.city import FaultCity, create_topics, dead_letter_topic, fault_city
from tests.faults.load import Progress

pytestmark = [
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.skipif(os.geteuid() != 0, reason="stops, restarts and hangs the local PostgreSQL: run as root"),
]

# How long the city may take to show it works again after a fault (cases closing through every
# service), and how much it must do meanwhile.
_RECOVERY_S = 90.0
_CASES_CLOSING = 3


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def running_city(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[FaultCity]:
    """The city, started once for the module, without its dead-letter topic."""
    async with fault_city(Path(tmp_path_factory.mktemp("faults"))) as running:
        yield running


@pytest.fixture(autouse=True)
def _fresh_referee(running_city: FaultCity) -> None:
    running_city.referee.failures.clear()


@pytest_asyncio.fixture(loop_scope="module")
async def city(running_city: FaultCity) -> FaultCity:
    """The city with its dead-letter topic (made by the poison test, first, or here when that
    one is not run)."""
    await create_topics(running_city.settings, [dead_letter_topic(running_city.settings)])
    return running_city


async def cases_close(city: FaultCity, progress: Progress, what: str) -> None:
    """Wait until a few more cases have closed: reports, dispatch, the department's work and the
    checks all flow (every service, every consumer)."""
    closed = progress.closed
    await city.load.until(lambda p: p.closed >= closed + _CASES_CLOSING, _RECOVERY_S, what)


async def test_a_poison_row_is_parked_while_later_events_flow(running_city: FaultCity) -> None:
    city = running_city
    settings = city.settings
    async with city.load.running() as progress:
        await cases_close(city, progress, "cases closing before the fault")
        # Two records that are not events, with one key: every consumer dead-letters both, and
        # the dead-letter topic does not exist. Each service's first dead letter is parked, the
        # second waits behind it (same topic and key), and every other event keeps flowing.
        bus = KafkaBus(settings.kafka_bootstrap_servers, client_id="faults-poison")
        await bus.start()
        try:
            key = f"poison-{new_id().hex}".encode()
            await bus.publish([Message(settings.topic_case_events, key, b"not an event", ()) for _ in range(2)])
        finally:
            await bus.close()
        await city.until_parked(dict.fromkeys(SERVICE_NAMES, 1), _RECOVERY_S)
        await cases_close(city, progress, "cases closing while the poison rows are parked")

    city.dead_letters_expected += 2 * len(SERVICE_NAMES)  # each service has one consumer group
    listing = await city.outbox_cli(["parked", *SERVICE_NAMES])
    for service in SERVICE_NAMES:
        assert f"{service}: 1 parked row(s)" in listing, listing
    assert listing.count("1 waiting behind it") == len(SERVICE_NAMES), listing
    assert listing.count("does not exist") == len(SERVICE_NAMES), listing
    # The operator makes the topic and hands the rows back: they go, with the ones behind them.
    await create_topics(settings, [dead_letter_topic(settings)])
    retried = await city.outbox_cli(*(["retry", service] for service in SERVICE_NAMES))
    for service in SERVICE_NAMES:
        assert f"{service}: 1 parked row(s) handed back to the relay" in retried, retried
    assert " 0 differences" in await city.assert_whole()
    assert city.referee.failures == []


@pytest.mark.parametrize(
    ("service", "moment"),
    [
        pytest.param("intake", "marking a published batch sent", id="the-relay-between-publishing-and-marking"),
        pytest.param("dispatch", "applying a batch", id="a-consumer-applying-a-batch"),
        pytest.param("assessment", "applying a batch", id="the-stream-applying-a-batch"),
    ],
)
async def test_a_process_killed_mid_batch_loses_nothing_and_counts_nothing_twice(
    city: FaultCity, service: str, moment: str
) -> None:
    async with city.load.running() as progress:
        await cases_close(city, progress, "cases closing before the fault")
        with city.referee.down(service):
            # A burst of reports keeps every relay and consumer busy; the process is killed at
            # the moment PostgreSQL shows one of its transactions at work (requests in flight to
            # intake are sent again: the same report, by its client_ref).
            burst = asyncio.create_task(city.load.burst(40))
            await city.kill(service, moment, _RECOVERY_S)
            await city.wait_ready()
            await burst
        await cases_close(city, progress, f"cases closing after {service} came back")
    assert " 0 differences" in await city.assert_whole()
    assert city.referee.failures == []


async def test_the_broker_stopped_and_started(city: FaultCity) -> None:
    async with city.load.running() as progress:
        await cases_close(city, progress, "cases closing before the fault")
        try:
            await infra.broker("down")
            # Writes never wait for the bus: reports are taken all the while, into the outboxes.
            reported = len(progress.reports)
            await city.load.until(
                lambda p: len(p.reports) >= reported + 40, _RECOVERY_S, "reports taken while the broker is down"
            )
        finally:
            await infra.broker("up")
        await city.wait_ready()
        await cases_close(city, progress, "cases closing after the broker came back")
    assert " 0 differences" in await city.assert_whole()
    assert city.referee.failures == []


async def test_postgresql_restarted(city: FaultCity) -> None:
    async with city.load.running() as progress:
        await cases_close(city, progress, "cases closing before the fault")
        with city.referee.outage():
            await infra.restart_postgres()
            await city.wait_ready()
        await cases_close(city, progress, "cases closing after the restart")
    assert " 0 differences" in await city.assert_whole()
    assert city.referee.failures == []


async def test_postgresql_hung_is_a_503_never_a_500(city: FaultCity) -> None:
    called = ("intake", "handling", "closure")  # the services the load's people call
    async with city.load.running() as progress:
        await cases_close(city, progress, "cases closing before the fault")
        with city.referee.outage():
            async with infra.postgres_hung():
                # Hung until every service called has answered 503 twice over: the calls the
                # freeze caught (the statement timeout), then calls made after those answers,
                # which find their connections broken and must log in again (the login's
                # timeout). A 500, or a call held past the client's patience, is a failure.
                frozen = time.monotonic()
                await city.load.until(
                    lambda _: all(city.referee.unavailable_again(service, frozen) for service in called),
                    infra.HANG_DEAD_MANS_SWITCH_S - 15,
                    "503s, again and again, from every service called while the database hangs",
                )
            await city.wait_ready()
        await cases_close(city, progress, "cases closing after the database answered again")
    assert " 0 differences" in await city.assert_whole()
    assert city.referee.failures == []
