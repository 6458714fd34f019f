"""The simulator end to end: two simulated days of a small city, through the HTTP APIs, in the
embedded mode (every service in the simulator's process) and in the production mode (each service
its own process, PostgreSQL and Kafka, one clock file). The city must end quiet — every outbox
sent, every consumer group at the end of the log — and agree with what the simulator did.
"""

from __future__ import annotations

import asyncio
import io
import sqlite3
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from sqlalchemy import select, text

from intake import models as intake_tables
from services.runtime.app import create_app
from services.tools.reconcile import CityFacts, Endpoints, reconcile
from services.tools.simulator.profile import load_profile
from services.tools.simulator.run import Options, Summary, simulate
from shared.core.auth import Principal, Role
from shared.core.clock import SIMULATION_CLOCK_FILE, FileClock
from shared.core.ids import new_id
from shared.core.settings import SERVICE_NAMES, Mode, Settings
from shared.db.engine import create_engine
from tests.conftest import admin_url, delete_topics, production_settings
from tests.e2e.harness import _empty_production_schemas

# Small, with every kind of step made frequent enough to happen in a few dozen cases.
BUSY_CITY = [
    "returned=0.25",
    "extension_requested=0.25",
    "extension_approved=0.7",
    "late=0.15",
    "suspended=0.1",
    "cancelled=0.05",
    "check_failed=0.25",
    "video_filed=0.85",
    "verification_confirmed=0.85",
    "category_weights.01-01-11=25",  # manhole covers nobody owns: the coordination queue
]
OPTIONS = Options(days=2, seed=2026, scale=0.03, profile=load_profile(None, BUSY_CITY), patience_s=30, quiet_s=1.0)
ENDED = {"closed", "cancelled"}


def consumer_groups(settings: Settings) -> list[str]:
    """The consumer groups of the case event log (read from the services' specs, nothing started)."""
    app = create_app(["all"], settings)
    return [
        consumer.spec.name
        for service in app.state.runtime.services
        for consumer in service.consumers
        if settings.topic_case_events in consumer.spec.topics
    ]


def assert_every_kind_of_step_happened(summary: Summary) -> None:
    c = summary.counts
    assert c["reports"] >= 40
    for step in (
        "filed",
        "rejected",
        "self_handled",
        "coordination",
        "returned",
        "redispatched",
        "extension_requested",
        "extension_approved",
        "extension_denied",
        "suspended",
        "resumed",
        "deadline_missed",
        "check_failed",
        "handled_again",
        "cancelled",
        "closed_on_time",
    ):
        assert c.get(step, 0) > 0, f"no {step} in {c}"
    assert c["closed"] > c["closed_on_time"]  # some were late
    assert c.get("stuck", 0) == 0
    assert c.get("errors", 0) == 0
    # Settled: every filed case ran to its end.
    assert summary.open_cases == 0
    assert summary.overdue_open == 0
    assert c["closed"] + c["cancelled"] == c["filed"]
    assert c["reports"] == c["filed"] + c["rejected"] + c.get("merged", 0)


def assert_the_city_agrees(summary: Summary, rows: dict[str, Any]) -> None:
    c = summary.counts
    assert rows["unsent"] == dict.fromkeys(SERVICE_NAMES, 0)
    assert rows["lagging_groups"] == []
    assert rows["reports"] == {
        status: count
        for status, count in {"filed": c["filed"], "rejected": c["rejected"], "merged": c.get("merged", 0)}.items()
        if count
    }
    assert rows["cases"] == {"closed": c["closed"], "cancelled": c["cancelled"]}
    assert rows["closed_on_time"] == c["closed_on_time"]
    assert rows["deadline_missed"] == c["deadline_missed"]
    assert rows["dispatch_open"] == 0


# What the checks read from the services' own tables: the service whose tables, and the query
# with {schema} where the production mode names the service's schema.
COUNTS = {
    "reports": ("intake", "SELECT status, count(*) FROM {schema}reports GROUP BY status"),
    "cases": ("intake", "SELECT status, count(*) FROM {schema}cases GROUP BY status"),
}
SCALARS = {
    "closed_on_time": ("closure", "SELECT count(*) FROM {schema}cases WHERE status = 'closed' AND on_time"),
    "deadline_missed": ("intake", "SELECT count(*) FROM {schema}timeline WHERE event_type = 'case.deadline_missed'"),
    "dispatch_open": ("dispatch", "SELECT count(*) FROM {schema}cases WHERE status NOT IN ('closed', 'cancelled')"),
}
UNSENT = "SELECT count(*) FROM {schema}outbox WHERE sent_at IS NULL"
# Each report (by its number in the plan) with what became of it, and its case's timeline as intake
# heard it from every service: the same seed must give the same rows and times, in either mode.
# (Not the case numbers: cases filed at one instant may be numbered in another order.) Built on
# intake's tables so that both backends hand back the same types.
_REPORT, _MERGED_INTO = intake_tables.reports.alias("report"), intake_tables.reports.alias("merged_into")
_CASE, _STEP = intake_tables.cases.alias("case"), intake_tables.timeline.alias("step")
HISTORY = select(
    _REPORT.c.description,
    _REPORT.c.status,
    _MERGED_INTO.c.description,
    _CASE.c.on_time,
    _STEP.c.at,
    _STEP.c.event_type,
    _STEP.c.actor,
).select_from(
    _REPORT.outerjoin(_MERGED_INTO, _MERGED_INTO.c.id == _REPORT.c.merged_into)
    .outerjoin(_CASE, _CASE.c.id == _REPORT.c.id)
    .outerjoin(_STEP, _STEP.c.case_id == _REPORT.c.id)
)


async def history(settings: Settings) -> list[tuple[Any, ...]]:
    """What the city did with each report of a simulation (``HISTORY``), ids left out (they are
    drawn afresh each run), in one order whatever the order of the rows."""
    engine = create_engine(settings.database_url("intake"))
    try:
        async with engine.connect() as db:
            rows = (await db.execute(HISTORY)).all()
    finally:
        await engine.dispose()
    return sorted((tuple(row) for row in rows), key=repr)


def embedded_rows(settings: Settings, groups: Sequence[str]) -> dict[str, Any]:
    def query(service: str, sql: str) -> list[tuple[Any, ...]]:
        with sqlite3.connect(settings.data_dir / f"{service}.db") as db:
            return db.execute(sql.format(schema="")).fetchall()

    with sqlite3.connect(settings.event_log_path) as log:
        ends = {
            (topic, partition): end
            for topic, partition, end in log.execute(
                'SELECT topic, partition, max("offset") + 1 FROM records GROUP BY topic, partition'
            )
        }
        committed = {
            (group, topic, partition): offset
            for group, topic, partition, offset in log.execute("SELECT * FROM group_offsets")
        }
    return {
        "unsent": {service: query(service, UNSENT)[0][0] for service in SERVICE_NAMES},
        "lagging_groups": [
            (group, topic, partition)
            for group in groups
            for (topic, partition), end in ends.items()
            if topic == settings.topic_case_events and committed.get((group, topic, partition), 0) != end
        ],
        **{name: dict(query(*question)) for name, question in COUNTS.items()},
        **{name: query(*question)[0][0] for name, question in SCALARS.items()},
    }


async def production_rows(settings: Settings, groups: Sequence[str]) -> dict[str, Any]:
    engine = create_engine(admin_url(settings))
    try:
        async with engine.connect() as db:

            async def query(service: str, sql: str) -> list[tuple[Any, ...]]:
                return [tuple(row) for row in (await db.execute(text(sql.format(schema=f"{service}.")))).all()]

            rows: dict[str, Any] = {
                "unsent": {service: (await query(service, UNSENT))[0][0] for service in SERVICE_NAMES},
                **{name: dict(await query(*question)) for name, question in COUNTS.items()},
                **{name: (await query(*question))[0][0] for name, question in SCALARS.items()},
            }
    finally:
        await engine.dispose()
    rows["lagging_groups"] = await _kafka_lag(settings, groups)
    return rows


async def _kafka_lag(settings: Settings, groups: Sequence[str]) -> list[tuple[str, int]]:
    topic = settings.topic_case_events
    partitions = [TopicPartition(topic, p) for p in range(settings.kafka_partitions)]
    reader = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers)
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await reader.start()
    await admin.start()
    try:
        ends = await reader.end_offsets(partitions)
        lagging = []
        for group in groups:
            committed = await admin.list_consumer_group_offsets(group, partitions=partitions)
            for partition in partitions:
                done = committed.get(partition)
                if (done.offset if done is not None else 0) != ends[partition]:
                    lagging.append((group, partition.partition))
        return lagging
    finally:
        await admin.close()
        await reader.stop()


async def reconcile_in_process(settings: Settings, timeout_s: float = 60) -> str:
    """``reconcile`` against the simulated city's data, served in this process; its report once the
    stream and the batch recount agree (or an assertion error with the differences).
    """
    app = create_app(["all"], settings)
    city = CityFacts.of(app.state.runtime.shared.city)
    token = app.state.token_issuer.issue_machine(Principal(username="reconcile", role=Role.SHIFT_LEAD, name="recount"))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(
            transport=transport, base_url="http://city", headers=headers, timeout=60
        ) as client:
            deadline = asyncio.get_running_loop().time() + timeout_s
            while True:
                out = io.StringIO()
                if await reconcile(client, Endpoints("http://city"), city, out) == 0:
                    return out.getvalue()
                if asyncio.get_running_loop().time() > deadline:
                    raise AssertionError(f"the stream and the batch recount disagree:\n{out.getvalue()[:3000]}")
                await asyncio.sleep(0.5)


async def test_two_simulated_days_in_the_embedded_city(tmp_path: Path) -> None:
    settings = Settings(mode=Mode.EMBEDDED, data_dir=tmp_path / "city")
    out = io.StringIO()
    summary = await simulate(settings, OPTIONS, out=out)
    print(out.getvalue(), "\n".join(summary.lines()), sep="\n")
    assert_every_kind_of_step_happened(summary)
    assert summary.end - summary.start > timedelta(days=2)  # the open cases ran on after the last day
    assert_the_city_agrees(summary, embedded_rows(settings, consumer_groups(settings)))
    assert " 0 differences" in await reconcile_in_process(settings)
    # The data stays for the reconciliation, with the time the simulation ended at; and the same
    # seed simulates the same city.
    assert (tmp_path / "city" / "events.db").exists()
    assert FileClock(tmp_path / "city" / SIMULATION_CLOCK_FILE).now() == summary.end
    # Served again, the folder runs on that time, not today's.
    assert create_app(["all"], settings).state.runtime.shared.clock.now() == summary.end
    again_settings = settings.model_copy(update={"data_dir": tmp_path / "again"})
    again = await simulate(again_settings, OPTIONS, out=io.StringIO())
    assert again.counts == summary.counts
    city_history = await history(settings)
    assert len(city_history) > summary.counts["reports"]
    assert await history(again_settings) == city_history


async def test_two_simulated_days_with_each_service_in_its_own_process(tmp_path: Path) -> None:
    suffix = new_id().hex[-10:]
    settings = production_settings().model_copy(
        update={
            "data_dir": tmp_path / "city",
            "topic_case_events": f"sim-{suffix}.case-events",
            "topic_dead_letter": f"sim-{suffix}.dead-letter",
            "topic_integration": f"sim-{suffix}.integration",
            "kafka_partitions": 3,
        }
    )
    await _empty_production_schemas(settings)
    try:
        summary = await simulate(settings, OPTIONS, out=io.StringIO())
        print("\n".join(summary.lines()))
        assert_every_kind_of_step_happened(summary)
        assert_the_city_agrees(summary, await production_rows(settings, consumer_groups(settings)))
        assert " 0 differences" in await reconcile_in_process(settings)
        assert FileClock(tmp_path / "city" / SIMULATION_CLOCK_FILE).now() == summary.end
        # Every service ran as a process of its own, and each has stopped.
        logs = sorted(p.name for p in (tmp_path / "city" / "logs").iterdir())
        assert logs == sorted(f"{s}.log" for s in SERVICE_NAMES)
        # Both modes run the same handlers on the same simulated time: the seed's city in one
        # process with the embedded log is, report by report and step by step, this one.
        embedded = Settings(mode=Mode.EMBEDDED, data_dir=tmp_path / "embedded")
        assert (await simulate(embedded, OPTIONS, out=io.StringIO())).counts == summary.counts
        city_history = await history(settings)
        assert len(city_history) > summary.counts["reports"]
        assert await history(embedded) == city_history
    finally:
        await delete_topics(
            settings, [settings.topic_case_events, settings.topic_dead_letter, settings.topic_integration]
        )


async def test_thirty_simulated_days_then_the_stream_equals_the_batch_recount(tmp_path: Path) -> None:
    """The issue's check at a small scale: a month of a town, then reconcile finds no difference."""
    settings = Settings(mode=Mode.EMBEDDED, data_dir=tmp_path / "city")
    options = Options(days=30, seed=30, scale=0.004, profile=load_profile(None, BUSY_CITY), patience_s=30, quiet_s=1.0)
    summary = await simulate(settings, options, out=io.StringIO())
    assert summary.counts["reports"] >= 60
    report = await reconcile_in_process(settings)
    assert report.startswith("compared ")
    assert " 0 differences" in report
