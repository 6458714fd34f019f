"""A row the bus refuses for good is parked, with its reason, while every other case flows; the
rows of its case wait behind it; what was stored is never published twice; a healthy batch is
still one publish. On both backends, plus readiness and the CLI on the embedded one.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import datetime
from pathlib import Path
from unittest.mock import patch
from uuid import UUID

import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory
from prometheus_client import REGISTRY
from sqlalchemy import Connection, func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from services.runtime.app import create_app
from services.tools.cli import main
from shared.core.clock import SystemClock
from shared.core.ids import new_id
from shared.core.settings import SERVICE_NAMES, Mode, Settings
from shared.db.engine import create_engine
from shared.db.migrations import alembic_config, upgrade_to_head
from shared.events.envelope import Event
from shared.messaging.binding import encode
from shared.messaging.bus import Message, PublishFailed, Record, TopicSpec
from shared.messaging.bus.kafka import KafkaBus
from shared.messaging.parking import outbox_health, parked_rows, refresh_outbox_gauges, unpark
from shared.messaging.relay import OutboxRelay
from shared.messaging.store import ServiceStore
from shared.messaging.tables import service_metadata
from tests.backends.helpers import cancelled, new_case_id, read_log, wait_until
from tests.backends.test_migrations import T0, downgrade
from tests.backends.test_service_app import serve, wait_ready
from tests.conftest import TEST_PARTITIONS, Backend, delete_topics


@pytest.fixture
async def topics(backend: Backend) -> AsyncIterator[Callable[[str, dict[str, str]], Awaitable[str]]]:
    """Makes extra topics for a test (removed from the broker afterwards)."""
    made: list[str] = []

    async def make(suffix: str, config: dict[str, str]) -> str:
        name = f"{backend.case_events}.{suffix}"
        await backend.bus.ensure_topics([TopicSpec(name, TEST_PARTITIONS, config)])
        made.append(name)
        return name

    yield make
    if isinstance(backend.bus, KafkaBus) and made:
        await delete_topics(backend.settings, made)


@pytest.mark.parametrize(
    ("topic_limit", "poison_bytes"),
    [
        # Kafka batches a record this small with the others of its partition: the broker refuses
        # them all, and only publishing them alone tells the poison from its neighbours.
        ("10000", 12_000),
        # Over Kafka's 1 MB default: the producer refuses it before sending.
        (None, 1_100_000),
    ],
    ids=["over-the-topic-limit", "over-the-default-limit"],
)
async def test_a_row_over_the_size_limit_is_parked_while_every_other_case_flows_once(
    backend: Backend,
    topics: Callable[[str, dict[str, str]], Awaitable[str]],
    topic_limit: str | None,
    poison_bytes: int,
) -> None:
    topic = await topics("limited", {"max.message.bytes": topic_limit}) if topic_limit else backend.case_events
    intake = await backend.store("intake")
    poisoned_case = new_case_id()
    before = [cancelled(new_case_id()) for _ in range(5)]
    poison, behind = cancelled(poisoned_case), cancelled(poisoned_case)
    # More rows after the poison than a batch holds: they must not wait behind it.
    after = [cancelled(new_case_id()) for _ in range(25)]
    await _commit(intake, [encode(e, topic) for e in before])
    await _commit(intake, [dataclasses.replace(encode(poison, topic), value=b"x" * poison_bytes)])
    await _commit(intake, [encode(e, topic) for e in [behind, *after]])
    parked_before = _sample("citycase_outbox_parked_total") or 0.0

    relay = OutboxRelay(intake, backend.bus, batch_size=10, poll_seconds=0.05, max_attempts=3)
    await _relay_until(relay, lambda: _unsent(intake, parked=1, waiting=1))

    (parked,) = await parked_rows(intake)
    assert parked.message_id == poison.id
    assert parked.attempts == 3
    assert "too large" in parked.reason
    assert parked.size == poison_bytes
    assert parked.held_behind == 1
    assert await _row(intake, behind) == (None, None, 0)  # waiting behind it, never tried
    # Every other row went out exactly once, and none was charged for the poison's refusals.
    good = [*before, *after]
    records = sum((await backend.bus.end_offsets(topic)).values())
    assert records == len(good)
    async with intake.engine.connect() as connection:
        charged = select(func.count()).select_from(intake.outbox).where(intake.outbox.c.sent_at.is_not(None))
        assert (await connection.execute(charged.where(intake.outbox.c.attempts == 0))).scalar_one() == len(good)

    health = await outbox_health(intake)
    assert (health.parked, health.backlog) == (1, 1)
    await refresh_outbox_gauges(intake)
    assert _sample("citycase_outbox_parked_rows") == 1
    assert _sample("citycase_outbox_backlog_rows") == 1
    assert _sample("citycase_outbox_parked_total") == parked_before + 1


async def test_a_row_for_a_missing_topic_is_parked_then_sent_with_its_case_once_the_topic_exists(
    backend: Backend,
) -> None:
    intake = await backend.store("intake")
    missing = f"{backend.case_events}.created-later"
    case_id = new_case_id()
    first, second, elsewhere = cancelled(case_id), cancelled(case_id), cancelled(new_case_id())
    await _commit(intake, [encode(first, missing), encode(second, missing), encode(elsewhere, backend.case_events)])

    relay = OutboxRelay(intake, backend.bus, poll_seconds=0.05, max_attempts=2)
    await _relay_until(relay, lambda: _unsent(intake, parked=1, waiting=1))
    (parked,) = await parked_rows(intake)
    assert parked.message_id == first.id
    assert "does not exist" in parked.reason
    assert await _row(intake, second) == (None, None, 0)

    await backend.bus.ensure_topics([TopicSpec(missing, 1)])
    try:
        assert await unpark(intake) == 1
        await _relay_until(relay, lambda: _unsent(intake, parked=0, waiting=0))
        log: list[Record] = await read_log(backend.bus, missing, lambda seen: len(seen) >= 2)
        assert [r.header("ce_id") for r in log] == [str(first.id).encode(), str(second.id).encode()]
    finally:
        if isinstance(backend.bus, KafkaBus):
            await delete_topics(backend.settings, [missing])
    assert await parked_rows(intake) == []


async def test_a_healthy_batch_is_one_publish_even_beside_a_parked_row(backend: Backend) -> None:
    intake = await backend.store("intake")
    stuck_case = new_case_id()
    missing = f"{backend.case_events}.never-created"
    await _commit(intake, [encode(cancelled(stuck_case), missing), encode(cancelled(stuck_case), missing)])
    relay = OutboxRelay(intake, backend.bus, batch_size=10, max_attempts=1)
    assert await relay.relay_once() == 0
    assert (await outbox_health(intake)).parked == 1

    await _commit(intake, [encode(cancelled(new_case_id()), backend.case_events) for _ in range(25)])
    with patch.object(backend.bus, "publish", wraps=backend.bus.publish) as publish:
        assert [await relay.relay_once() for _ in range(4)] == [10, 10, 5, 0]
    assert [len(call.args[0]) for call in publish.call_args_list] == [10, 10, 5]


async def test_what_was_stored_is_marked_sent_when_the_rest_of_the_batch_fails_and_nobody_is_charged(
    backend: Backend,
) -> None:
    intake = await backend.store("intake")
    events = [cancelled(new_case_id()) for _ in range(10)]
    await _commit(intake, [encode(e, backend.case_events) for e in events])
    store_all = backend.bus.publish
    calls = 0

    async def last_three_time_out(messages: Sequence[Message]) -> None:
        nonlocal calls
        calls += 1
        if calls > 1:
            return await store_all(messages)
        await store_all(messages[:-3])
        raise PublishFailed({n: TimeoutError("not acknowledged in time") for n in range(7, 10)})

    relay = OutboxRelay(intake, backend.bus)
    with patch.object(backend.bus, "publish", side_effect=last_three_time_out):
        with pytest.raises(PublishFailed):
            await relay.relay_once()  # a failure that may pass: the run loop backs off
        assert await _unsent(intake, parked=0, waiting=3)
        assert await relay.relay_once() == 3
    assert calls == 2  # the three were never tried alone: nothing was the rows' own fault
    assert sum((await backend.bus.end_offsets(backend.case_events)).values()) == len(events)
    async with intake.engine.connect() as connection:
        attempts = select(func.max(intake.outbox.c.attempts))
        assert (await connection.execute(attempts)).scalar_one() == 0


async def test_readiness_warns_of_parked_rows_and_an_old_backlog_and_stays_ready(tmp_path: Path) -> None:
    settings = Settings(
        mode=Mode.EMBEDDED, data_dir=tmp_path, outbox_poll_seconds=0.05, outbox_backlog_warning_seconds=0.0
    )
    app = create_app(["intake"], settings)
    async with serve(app) as client:
        await wait_ready(client)
        (service,) = app.state.runtime.services
        case_id = new_case_id()
        missing = "citycase.no-such-topic"
        await _commit(service.store, [encode(cancelled(case_id), missing), encode(cancelled(case_id), missing)])

        async with asyncio.timeout(30):
            while "parked" not in (body := (await client.get("/readyz")).json()).get("warnings", {}).get(
                "intake.outbox", ""
            ):
                await asyncio.sleep(0.05)
        assert body["ready"] is True
        warning = body["warnings"]["intake.outbox"]
        assert warning.startswith("1 row(s) parked")
        assert "python -m services outbox parked intake" in warning
        assert "1 row(s) waiting to be published" in warning  # the one behind the parked row
        response = await client.get("/intake/readyz")
        assert response.status_code == 200
        assert response.json()["warnings"] == {"outbox": warning}


def test_the_cli_lists_parked_rows_and_hands_them_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CITYCASE_DATA_DIR", str(tmp_path))
    assert main(["migrate", "intake", "--mode", "embedded"]) == 0
    event = cancelled(new_case_id())
    asyncio.run(_park_one(Settings(mode=Mode.EMBEDDED, data_dir=tmp_path), event))
    capsys.readouterr()

    assert main(["outbox", "parked", "intake", "--mode", "embedded"]) == 0
    listing = capsys.readouterr().out
    assert listing.startswith("intake: 1 parked row(s)\n  seq 1  topic citycase.dead-letter")
    assert f"key {event.subject}" in listing
    assert "3 attempts" in listing
    assert "does not exist" in listing

    assert main(["outbox", "retry", "intake", "7", "--mode", "embedded"]) == 1
    assert main(["outbox", "retry", "intake", "--mode", "embedded"]) == 0
    assert "intake: 1 parked row(s) handed back to the relay" in capsys.readouterr().out
    assert main(["outbox", "parked", "intake", "--mode", "embedded"]) == 0
    assert capsys.readouterr().out == "intake: 0 parked row(s)\n"


async def _park_one(settings: Settings, event: Event) -> None:
    store = ServiceStore(
        "intake",
        create_engine(settings.database_url("intake")),
        service_metadata(),
        clock=SystemClock(),
        case_events_topic=settings.topic_case_events,
    )
    try:
        await _commit(store, [encode(event, settings.topic_dead_letter)])
        async with store.writer.begin() as connection:
            await connection.execute(
                update(store.outbox).values(
                    attempts=3, parked_at=store.clock.now(), park_reason="topic 'citycase.dead-letter' does not exist"
                )
            )
    finally:
        await store.engine.dispose()


async def _commit(store: ServiceStore, messages: Sequence[Message]) -> None:
    """One transaction putting ``messages`` (encoded events) in the outbox, in order."""
    async with store.transaction() as tx:
        for message in messages:
            tx.send(message, message_id=UUID(dict(message.headers)["ce_id"].decode()))


async def _relay_until(relay: OutboxRelay, done: Callable[[], Awaitable[bool]]) -> None:
    task = asyncio.create_task(relay.run())
    try:
        await wait_until(done)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def _unsent(store: ServiceStore, *, parked: int, waiting: int) -> bool:
    health = await outbox_health(store)
    return (health.parked, health.backlog) == (parked, waiting)


async def _row(store: ServiceStore, event: Event) -> tuple[datetime | None, datetime | None, int]:
    """(sent_at, parked_at, attempts) of the outbox row of ``event``."""
    outbox = store.outbox
    query = select(outbox.c.sent_at, outbox.c.parked_at, outbox.c.attempts).where(outbox.c.message_id == event.id)
    async with store.engine.connect() as connection:
        sent_at, parked_at, attempts = (await connection.execute(query)).one()
    return sent_at, parked_at, attempts


def _sample(name: str) -> float | None:
    return REGISTRY.get_sample_value(name, {"service": "intake"})


@pytest.mark.parametrize("service", SERVICE_NAMES)
async def test_the_parking_revision_upgrades_a_filled_outbox_and_downgrades_cleanly(
    backend: Backend, service: str
) -> None:
    engine = create_engine(backend.settings.database_url(service))
    (parking,) = [
        r
        for r in ScriptDirectory.from_config(alembic_config(service)).walk_revisions()
        if r.path.endswith("_outbox_parking.py")
    ]
    outbox = service_metadata().tables["outbox"]
    try:
        await upgrade_to_head(service, engine)
        await downgrade(service, engine, str(parking.down_revision))
        columns, indexes = await _outbox_shape(engine)
        assert not {"attempts", "parked_at", "park_reason"} & columns
        assert {"ix_outbox_unsent", "ix_outbox_sent_at"} <= indexes
        assert "ix_outbox_parked" not in indexes
        async with engine.begin() as connection:
            await connection.execute(outbox.delete())
            await connection.execute(
                outbox.insert().values(message_id=new_id(), topic="t", headers=[], value=b"v", created_at=T0)
            )
        await upgrade_to_head(service, engine)
        columns, indexes = await _outbox_shape(engine)
        assert {"attempts", "parked_at", "park_reason"} <= columns
        assert {"ix_outbox_unsent", "ix_outbox_sent_at", "ix_outbox_parked"} <= indexes
        async with engine.begin() as connection:
            assert tuple((await connection.execute(select(outbox.c.attempts, outbox.c.parked_at))).one()) == (0, None)
            await connection.execute(outbox.delete())
    finally:
        await upgrade_to_head(service, engine)  # the shared test database stays at head, whatever failed
        await engine.dispose()


async def _outbox_shape(engine: AsyncEngine) -> tuple[set[str], set[str]]:
    """The outbox's column names and index names (partial indexes must stay partial)."""

    def read(connection: Connection) -> tuple[set[str], set[str]]:
        inspector = sa.inspect(connection)
        indexes = inspector.get_indexes("outbox")
        unsent = next(i for i in indexes if i["name"] == "ix_outbox_unsent")
        assert unsent.get("dialect_options"), "ix_outbox_unsent lost its WHERE clause"
        return {c["name"] for c in inspector.get_columns("outbox")}, {str(i["name"]) for i in indexes}

    async with engine.connect() as connection:
        return await connection.run_sync(read)
