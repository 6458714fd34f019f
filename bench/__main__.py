"""``make bench`` (``python -m bench``): measure the city as production runs it — PostgreSQL,
Kafka, each service its own process — and write ``bench/results.json`` and the table in
``bench/README.md``.

Phases, in this order so that each measures on a quiet machine: intake's scale-out (two processes
against one) and tracing's cost (on against off); intake alone against the filing floor
(``bench/floor.py``); with the whole city running, intake (reports, then the departments' reports
back), end-to-end latency under a steady load, the CPU every process of the city spends per report,
the services' peak memory; then, with the services stopped, the stream's scale-out (two members
against one, catching up a log), the stream's replay of a two-million-event log against a bare
consumer reading the same log; then query cost at 10k, 100k and 1M cases.

A figure that bounds another, or is compared with it, is measured in the same run as A/B rounds:
the two loads alternated, several rounds, the median of the rounds' ratios (``ab_rounds``), so
that the machine's drift, which moves both loads of a round alike, cancels out.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from bench import console, eventlog, query, report, workload
from bench.load import Job, percentiles, write_job
from bench.tracesink import TraceSink
from services.tools.launcher import ServiceProcesses, launch, replica_names, settings_env
from shared.city.loader import load_city
from shared.city.model import City
from shared.core.auth import Principal, Role, TokenIssuer
from shared.core.clock import SystemClock
from shared.core.settings import SERVICE_NAMES, Mode, Settings
from shared.messaging.bus.kafka import KafkaBus

REPO = Path(__file__).resolve().parent.parent
BENCH_DATABASE = "citycase_bench"
BENCH_SECRET = "citycase-benchmark-secret-0123456789abcdef"
TOPIC_PREFIX = "citycase-bench."
BASE_PORT = 8300
# Second and later processes of a service (scale-out) listen from here on.
REPLICA_BASE_PORT = BASE_PORT + 20
# The filing floor (bench/floor.py), beside the services' ports.
FLOOR_PORT = BASE_PORT + 19
DEFAULT_OUT = REPO / "bench" / "results.json"
# Closed-loop connections that saturate intake, split evenly between its processes.
SATURATING_CONNECTIONS = 32
# The inspectors' reports of every saturation of intake alone: each one of a pair gets the same.
REPORTS_SEED = 2


def bench_settings(run: str) -> Settings:
    """Production settings on the benchmark's own database, topics and consumer groups."""
    data_dir = REPO / "var" / "bench"
    return Settings(
        mode=Mode.PRODUCTION,
        data_dir=data_dir,
        pg_database=BENCH_DATABASE,
        pg_ssl="disable",  # the database is on this machine
        jwt_secret=BENCH_SECRET,
        allow_plain_passwords=True,  # the demo city's log-ins drive the load
        topic_case_events=f"{TOPIC_PREFIX}{run}.case-events",
        topic_dead_letter=f"{TOPIC_PREFIX}{run}.dead-letter",
        topic_integration=f"{TOPIC_PREFIX}{run}.integration",
        kafka_group_prefix=f"{TOPIC_PREFIX}{run}.",
    )


async def reset_database(settings: Settings) -> None:
    """Empty every service schema of the benchmark database (the services migrate them at start)."""
    connection = await asyncpg.connect(
        host=settings.pg_host,
        port=settings.pg_port,
        user="citycase_admin",
        password="citycase_admin",
        database=settings.pg_database,
    )
    try:
        for service in SERVICE_NAMES:
            await connection.execute(f"DROP SCHEMA IF EXISTS {service} CASCADE")
            await connection.execute(f"CREATE SCHEMA {service} AUTHORIZATION citycase_{service}")
    finally:
        await connection.close()


async def drop_old_topics(settings: Settings) -> None:
    """Delete the topics earlier runs left (the case events are kept forever otherwise)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        old = [t for t in await admin.list_topics() if t.startswith(TOPIC_PREFIX + "run-")]
        if old:
            await admin.delete_topics(old)
    finally:
        await admin.close()


async def generate(job: Job) -> dict[str, Any]:
    """Run the load generator in a process of its own; its figures."""
    with tempfile.TemporaryDirectory() as folder:
        job_file, result_file = Path(folder) / "job.json", Path(folder) / "result.json"
        write_job(job_file, job)
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.load", str(job_file), str(result_file), cwd=REPO
        )
        if await process.wait() != 0:
            raise RuntimeError("the load generator failed")
        result: dict[str, Any] = json.loads(result_file.read_text())
        return result


def _summary(result: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in result.items() if key != "records"}


def _size(count: int) -> str:
    """2_000_000 → ``2m``, 200_000 → ``200k``: a log's size in its topic's name."""
    for unit, name in ((1_000_000, "m"), (1_000, "k")):
        if count % unit == 0:
            return f"{count // unit}{name}"
    return str(count)


def _say(what: str) -> None:
    print(f"[bench] {what}", flush=True)


class Phases:
    """The measurements that need the city running, sharing its processes and callers."""

    def __init__(
        self, settings: Settings, city: City, processes: ServiceProcesses, profile_dir: Path | None = None
    ) -> None:
        self.settings = settings
        self.profile_dir = profile_dir
        self.city = city
        self.processes = processes
        tokens = TokenIssuer(settings.jwt_secret, SystemClock(), ttl=timedelta(hours=2))
        self.inspectors = workload.callers(city, tokens, Role.INSPECTOR)
        self.departments = workload.department_callers(city, tokens)
        lead = Principal(username="bench", role=Role.SHIFT_LEAD, name="benchmark")
        self.lead = {"Authorization": f"Bearer {tokens.issue_machine(lead)}"}
        self.seed = 1

    @asynccontextmanager
    async def profiled(self, phase: str) -> AsyncIterator[None]:
        """Sample every service's stacks with py-spy during ``phase`` (when asked to): collapsed
        stacks in ``<profile dir>/<phase>-<service>.txt``, for flame graphs or a quick grep.
        """
        if self.profile_dir is None:
            yield
            return
        self.profile_dir.mkdir(parents=True, exist_ok=True)
        spies = [
            await asyncio.create_subprocess_exec(
                str(Path(sys.executable).parent / "py-spy"),
                "record",
                "--pid",
                str(pid),
                "--rate",
                "50",
                "--nonblocking",
                "--format",
                "raw",
                "--output",
                str(self.profile_dir / f"{phase}-{service}.txt"),
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )
            for service, pid in self.processes.pids.items()
        ]
        try:
            yield
        finally:
            for spy in spies:
                spy.send_signal(signal.SIGINT)
            for spy in spies:
                await spy.wait()

    def url(self, service: str) -> str:
        return self.processes.urls[service]

    def reports(self, count: int) -> list[bytes]:
        host = self.url("intake").removeprefix("http://")
        self.seed += 1
        return workload.inspector_reports(self.city, self.inspectors, host, count, self.seed)

    async def intake(self, seconds: float) -> dict[str, Any]:
        """Saturate one intake process (closed loop), then load it at a steady rate (open loop)."""
        base = self.url("intake")
        _say(f"intake: saturation, {seconds:.0f}s")
        requests = self.reports(int(seconds * 2500))
        account = await _CityCpu.start(self.settings, self.processes.pids)
        async with self.profiled("intake"):
            closed = await generate(Job(base, requests, connections=32, duration_s=seconds, warmup_s=2))
        _say(f"intake: {closed['ok_per_s']} reports/s, p99 {closed['latency_ms']['p99']} ms at 32 connections")
        await self.drain()
        cpu = await account.per_report(generator_cpu_s=closed["generator_cpu_s"])
        _say(
            f"intake: the city's CPU {cpu['ms_per_report']} ms a report, {cpu['cores_for_1000_per_s']} cores at 1,000/s"
        )
        rate = min(1000.0, round(closed["ok_per_s"] * 0.8, -1))
        _say(f"intake: steady {rate:.0f}/s, {seconds:.0f}s")
        steady = await generate(
            Job(base, self.reports(int(rate * (seconds + 2))), connections=64, duration_s=seconds, rate=rate)
        )
        _say(f"intake: steady p50 {steady['latency_ms']['p50']} ms p99 {steady['latency_ms']['p99']} ms")
        return {"saturation": _summary(closed), "steady": _summary(steady), "cpu": cpu}

    async def assigned_cases(self, wanted: int, wait_s: float = 120) -> list[tuple[str, str]]:
        """(case id, department id) of cases handling holds as dispatched and not yet signed for."""
        deadline = time.monotonic() + wait_s
        async with httpx.AsyncClient(base_url=self.url("handling"), headers=self.lead, timeout=60) as client:
            while True:
                found = []
                response = await client.get("/handling/export/cases")
                response.raise_for_status()
                for line in response.text.splitlines():
                    record = json.loads(line)
                    if record["status"] == "assigned":
                        found.append((record["id"], record["department_id"]))
                if len(found) >= wanted or time.monotonic() > deadline:
                    return found[:wanted]
                await asyncio.sleep(2)

    async def report_back(self, seconds: float) -> dict[str, Any]:
        """Departments sign for cases, then report them handled with a photo: closed, then open loop."""
        base = self.url("handling")
        host = base.removeprefix("http://")
        cases = await self.assigned_cases(int(seconds * 900))
        _say(f"report back: signing for {len(cases)} cases")
        signed = await generate(Job(base, workload.accepts(cases, self.departments, host), 32, duration_s=600))
        backs = workload.report_backs(cases, self.departments, host)
        half = len(backs) // 2
        _say("report back: saturation")
        async with self.profiled("report-back"):
            closed = await generate(Job(base, backs[:half], connections=32, duration_s=seconds, warmup_s=1))
        rate = min(1000.0, round(closed["ok_per_s"] * 0.8, -1))
        _say(f"report back: {closed['ok_per_s']}/s; steady {rate:.0f}/s")
        await self.drain()
        steady = await generate(Job(base, backs[half:], connections=64, duration_s=seconds, rate=rate))
        return {"accept": _summary(signed), "saturation": _summary(closed), "steady": _summary(steady)}

    async def drain(self, timeout_s: float = 120) -> None:
        """Wait until the assessment stream, the last consumer of every report's events, has caught
        up with the log: a load measured while the services still work off the previous one's
        backlog would be charged for it.
        """
        bus = KafkaBus(self.settings.kafka_bootstrap_servers, client_id="citycase-bench")
        try:
            async with httpx.AsyncClient(base_url=self.url("assessment"), headers=self.lead, timeout=10) as client:
                deadline = time.monotonic() + timeout_s
                while time.monotonic() < deadline:
                    ends = await bus.end_offsets(self.settings.topic_case_events)
                    applied = _partition_positions((await client.get("/assessment/stream")).json())
                    if all(applied.get(partition, 0) >= end for (_topic, partition), end in ends.items()):
                        await asyncio.sleep(1)  # the relays' last batches
                        return
                    await asyncio.sleep(0.5)
                _say(f"the services did not catch up within {timeout_s:.0f}s; measuring anyway")
        finally:
            await bus.close()

    async def end_to_end(self, rate: float, seconds: float) -> dict[str, Any]:
        """Report → dispatched and report → indicators, for every report of a steady load."""
        await self.drain()
        watcher = _CaseEventWatcher(self.settings)
        await watcher.start()
        positions = _StreamPositions(self.url("assessment"), self.lead)
        polling = asyncio.create_task(positions.poll())
        account = await _CityCpu.start(self.settings, self.processes.pids)
        try:
            _say(f"end to end: {rate:.0f} reports/s for {seconds:.0f}s")
            job = Job(
                self.url("intake"),
                self.reports(int(rate * seconds)),
                connections=16,
                duration_s=seconds,
                rate=rate,
                keep_bodies=True,
            )
            async with self.profiled("end-to-end"):
                result = await generate(job)
            await asyncio.sleep(5)  # the last reports' way through the services
            await self.drain()
        finally:
            polling.cancel()
            await watcher.stop()
        cpu = await account.per_report(generator_cpu_s=result["generator_cpu_s"])
        return {**_end_to_end_figures(result, watcher, positions), "cpu": cpu}


class _CaseEventWatcher:
    """Reads the case event log from its end as it grows: when each case was dispatched, and
    where each case's filing lies in the log.
    """

    def __init__(self, settings: Settings) -> None:
        self.topic = settings.topic_case_events
        self.partitions = settings.kafka_partitions  # the services created the topic so
        self.consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers, enable_auto_commit=False)
        self.dispatched_at: dict[str, float] = {}
        self.filed_at: dict[str, tuple[int, int]] = {}
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.consumer.start()
        partitions = [TopicPartition(self.topic, p) for p in range(self.partitions)]
        self.consumer.assign(partitions)
        await self.consumer.seek_to_end(*partitions)
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        while True:
            batches = await self.consumer.getmany(timeout_ms=100)
            now = time.monotonic()
            for records in batches.values():
                for record in records:
                    event_type = dict(record.headers).get("ce_type", b"").decode()
                    case_id = record.key.decode()
                    if event_type == "case.dispatched":
                        self.dispatched_at.setdefault(case_id, now)
                    elif event_type == "case.filed":
                        self.filed_at[case_id] = (record.partition, record.offset)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        await self.consumer.stop()


class _StreamPositions:
    """Polls how far the assessment stream has applied each partition: a case's figures are in
    the indicators from the moment the stream's position passes its filing event (the counters
    and the positions are committed together).
    """

    def __init__(self, assessment_url: str, headers: dict[str, str]) -> None:
        self.url = assessment_url
        self.headers = headers
        # (when polled, partition → next offset to apply)
        self.samples: list[tuple[float, dict[int, int]]] = []

    async def poll(self, every_s: float = 0.01) -> None:
        async with httpx.AsyncClient(base_url=self.url, headers=self.headers, timeout=5) as client:
            while True:
                response = await client.get("/assessment/stream")
                now = time.monotonic()
                if response.status_code == 200:
                    self.samples.append((now, _partition_positions(response.json())))
                await asyncio.sleep(every_s)

    def reached(self, partition: int, offset: int) -> float | None:
        """The first poll that saw ``offset`` applied."""
        for at, positions in self.samples:
            if positions.get(partition, 0) > offset:
                return at
        return None


def _partition_positions(body: Any) -> dict[int, int]:
    # "topic/partition" → next offset to apply
    return {int(key.rsplit("/", 1)[1]): int(offset) for key, offset in body["positions"].items()}


def _end_to_end_figures(
    result: dict[str, Any], watcher: _CaseEventWatcher, positions: _StreamPositions
) -> dict[str, Any]:
    to_dispatched, to_indicators, not_dispatched, not_counted = [], [], 0, 0
    for _index, _sent, answered, status, body in result["records"]:
        report = json.loads(body) if status == 201 else {}
        if report.get("status") != "filed":
            continue  # refused, or merged into an earlier case as a duplicate
        case_id = report["id"]
        dispatched = watcher.dispatched_at.get(case_id)
        filed = watcher.filed_at.get(case_id)
        reached = positions.reached(*filed) if filed else None
        if dispatched is None:
            not_dispatched += 1  # no routing rule names an owner: a dispatcher's queue (协调)
        else:
            to_dispatched.append((dispatched - answered) * 1000)
        if reached is None:
            not_counted += 1
        else:
            to_indicators.append((reached - answered) * 1000)
    return {
        "filed": len(to_indicators) + not_counted,
        "queued_for_a_dispatcher": not_dispatched,
        "not_seen_in_indicators": not_counted,
        "intake": _summary(result),
        "dispatched_ms": percentiles(sorted(to_dispatched)),
        "indicators_ms": percentiles(sorted(to_indicators)),
    }


async def intake_against_floor(
    run: str, city: City, seconds: float, rounds: int, *, floor: bool = True
) -> dict[str, Any]:
    """Intake alone (no other service; its consumer and relay still do their part) against the
    filing floor (``bench/floor.py``), in A/B rounds: both processes run throughout, each round
    saturates one then the other with the same reports (``SATURATING_CONNECTIONS``, closed loop),
    the order alternating from round to round. The figures are the medians over the rounds, and the
    median of each round's ratios, so that the machine's drift, which moves both of a round alike,
    cancels out. Without ``floor``, the rounds load intake alone.
    """
    settings = bench_settings(run + "-alone")
    await reset_database(settings)
    inspectors = _inspectors(settings, city)
    async with running_city(settings, ["intake"]) as processes, _floor_process(settings, run, enabled=floor) as bare:
        intake_url, intake_pid = processes.urls["intake"], processes.pids["intake"]

        async def intake(seed: int, span: float) -> dict[str, Any]:
            return await saturate([intake_url], [intake_pid], city, inspectors, span, seed)

        async def floor_load(seed: int, span: float) -> dict[str, Any]:
            assert bare is not None
            return await saturate([bare[0]], [bare[1]], city, inspectors, span, seed)

        _say("intake against the floor: warming both up")
        await intake(REPORTS_SEED + 1000, 2)
        if bare is not None:
            await floor_load(REPORTS_SEED + 1000, 2)
        return await ab_rounds("intake", intake, "floor" if bare else None, floor_load, rounds=rounds, seconds=seconds)


async def ab_rounds(
    a_name: str,
    a: Callable[[int, float], Awaitable[dict[str, Any]]],
    b_name: str | None,
    b: Callable[[int, float], Awaitable[dict[str, Any]]],
    *,
    rounds: int,
    seconds: float,
) -> dict[str, Any]:
    """``rounds`` rounds of load ``a`` and load ``b`` (``b_name`` None: ``a`` only), each given the
    round's reports (seed) and ``seconds``, b first in even rounds and a first in odd ones. Per
    round each one's reports/s and CPU per report, a/b of the reports/s and b/a of the CPU per report;
    the medians of all of them.
    """
    per_round: list[dict[str, Any]] = []
    for n in range(rounds):
        seed = REPORTS_SEED + n
        order = [(a_name, a)] if b_name is None else [(b_name, b), (a_name, a)][:: 1 if n % 2 == 0 else -1]
        measured: dict[str, Any] = {"round": n + 1}
        for name, load in order:
            measured[name] = await load(seed, seconds)
            _say(
                f"round {n + 1}/{rounds}, {name}: {measured[name]['ok_per_s']} reports/s, "
                f"{measured[name]['cpu_ms_per_report']} ms of CPU each"
            )
        if b_name is not None:
            measured["throughput_ratio"] = _ratio(measured[a_name]["ok_per_s"], measured[b_name]["ok_per_s"])
            measured["cpu_ratio"] = _ratio(measured[b_name]["cpu_ms_per_report"], measured[a_name]["cpu_ms_per_report"])
        per_round.append(measured)
    figures: dict[str, Any] = {"rounds": len(per_round)}
    for name in [a_name] if b_name is None else [a_name, b_name]:
        figures[f"{name}_reports_per_s"] = _median([r[name]["ok_per_s"] for r in per_round])
        figures[f"{name}_cpu_ms_per_report"] = _median([r[name]["cpu_ms_per_report"] for r in per_round], 2)
    if b_name is not None:
        figures["throughput_ratio"] = _median([r["throughput_ratio"] for r in per_round], 3)
        figures["cpu_ratio"] = _median([r["cpu_ratio"] for r in per_round], 3)
    figures["detail"] = per_round
    return figures


def _ratio(numerator: float, denominator: float) -> float | None:
    return round(numerator / denominator, 3) if denominator else None


def _median(values: Sequence[float | None], digits: int = 1) -> float | None:
    known = [value for value in values if value is not None]
    return round(statistics.median(known), digits) if known else None


def _inspectors(settings: Settings, city: City) -> list[workload.Caller]:
    tokens = TokenIssuer(settings.jwt_secret, SystemClock(), ttl=timedelta(hours=2))
    return workload.callers(city, tokens, Role.INSPECTOR)


@asynccontextmanager
async def _floor_process(
    settings: Settings, run: str, *, enabled: bool = True
) -> AsyncIterator[tuple[str, int] | None]:
    """The filing floor (``python -m bench.floor``) on ``FLOOR_PORT``, on the benchmark's database
    and a topic of this run's; (its URL, its process id), or None when not ``enabled``."""
    if not enabled:
        yield None
        return
    log_dir = settings.data_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    url = f"http://127.0.0.1:{FLOOR_PORT}"
    with (log_dir / "floor.log").open("ab") as log:
        process = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "bench.floor", "--port", str(FLOOR_PORT), "--topic", f"{TOPIC_PREFIX}{run}.floor"),
            env={**os.environ, **settings_env(settings)},
            cwd=REPO,
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
        )
        try:
            async with httpx.AsyncClient(timeout=5) as client, asyncio.timeout(120):
                while True:
                    if process.returncode is not None:
                        raise RuntimeError(f"the floor exited with status {process.returncode}: see {log.name}")
                    with contextlib.suppress(httpx.TransportError):
                        if (await client.get(f"{url}/floor/readyz")).status_code == 200:
                            break
                    await asyncio.sleep(0.2)
            yield url, process.pid
        finally:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
                try:
                    async with asyncio.timeout(15):
                        await process.wait()
                except TimeoutError:
                    process.kill()
                    await process.wait()


async def saturate(
    urls: Sequence[str],
    pids: Sequence[int],
    city: City,
    inspectors: Sequence[workload.Caller],
    seconds: float,
    seed: int = REPORTS_SEED,
) -> dict[str, Any]:
    """Saturate the processes at ``urls`` (closed loop, ``SATURATING_CONNECTIONS`` in all, split
    evenly): one load generator per process, started together, each sending its share of the same
    reports (every n-th). Reports/s in all; the CPU per report of ``pids`` from the load's start
    until they are idle again (``_settle``: what the relay and the consumer do for the load's
    reports counts too); how busy the machine was meanwhile (every core, the generators,
    PostgreSQL and Kafka included).
    """
    count = int(seconds * 2500)
    jobs = []
    for n, url in enumerate(urls):
        reports = workload.inspector_reports(city, inspectors, url.removeprefix("http://"), count, seed)
        connections = SATURATING_CONNECTIONS // len(urls)
        jobs.append(Job(url, reports[n :: len(urls)], connections=connections, duration_s=seconds))
    before = sum(_cpu_seconds(pid) for pid in pids)
    machine = _MachineCpu()
    results = await asyncio.gather(*(generate(job) for job in jobs))
    busy = machine.busy_percent()
    await _settle(pids)
    cpu = sum(_cpu_seconds(pid) for pid in pids) - before
    ok = sum(result["ok"] for result in results)
    # No warm-up here, so every request answered is in the count of the CPU spent.
    summary = _summary(results[0]) if len(results) == 1 else {"per_process": [_summary(r) for r in results]}
    return {
        **summary,
        "processes": len(urls),
        "ok": ok,
        "ok_per_s": round(sum(result["ok_per_s"] for result in results), 1),
        "cpu_ms_per_report": round(cpu / max(ok, 1) * 1000, 2),
        "machine_busy_percent": busy,
        "generators_cpu_s": round(sum(result["generator_cpu_s"] for result in results), 2),
    }


async def _settle(pids: Sequence[int], timeout_s: float = 30.0) -> None:
    """Wait until ``pids`` are idle (under 5% of a core each over half a second): a load's last
    outbox rows published, its events consumed."""
    window = 0.5
    deadline = time.monotonic() + timeout_s
    last = sum(_cpu_seconds(pid) for pid in pids)
    while time.monotonic() < deadline:
        await asyncio.sleep(window)
        now = sum(_cpu_seconds(pid) for pid in pids)
        if now - last < 0.05 * window * len(pids):
            return
        last = now
    _say(f"processes {list(pids)} still busy {timeout_s:.0f}s after the load; measuring anyway")


async def saturate_intake(
    settings: Settings, city: City, processes: ServiceProcesses, seconds: float, seed: int = REPORTS_SEED
) -> dict[str, Any]:
    """``saturate`` every intake process running."""
    names = [name for name in processes.urls if name == "intake" or name.startswith("intake-")]
    urls, pids = [processes.urls[name] for name in names], [processes.pids[name] for name in names]
    return await saturate(urls, pids, city, _inspectors(settings, city), seconds, seed)


async def intake_scale_out(run: str, city: City, seconds: float, rounds: int) -> dict[str, Any]:
    """The same saturating load on one intake process and on two (sharing the database and the
    bus, each with its own consumer member and relay candidate), each from an empty database, in
    ``rounds`` A/B rounds (``ab_rounds``): the ratios are the medians of the rounds'.
    """

    def on(count: int) -> Callable[[int, float], Awaitable[dict[str, Any]]]:
        async def load(seed: int, span: float) -> dict[str, Any]:
            settings = bench_settings(f"{run}-intake-x{count}-{seed}")
            await reset_database(settings)
            async with running_city(settings, ["intake"], replicas={"intake": count}) as processes:
                measured = await saturate_intake(settings, city, processes, span, seed)
            _say(f"scale-out: intake x{count}: machine {measured['machine_busy_percent']}% busy")
            return measured

        return load

    _say("scale-out: intake saturated on one process and on two")
    figures = await ab_rounds("two", on(2), "one", on(1), rounds=rounds, seconds=seconds)
    return {
        "ratio": figures["throughput_ratio"],
        "one_reports_per_s": figures["one_reports_per_s"],
        "two_reports_per_s": figures["two_reports_per_s"],
        "one_cpu_ms_per_report": figures["one_cpu_ms_per_report"],
        "two_cpu_ms_per_report": figures["two_cpu_ms_per_report"],
        "rounds": figures["rounds"],
        "detail": figures["detail"],
    }


async def tracing_cost(run: str, city: City, seconds: float, rounds: int) -> dict[str, Any]:
    """Intake alone saturated with tracing off and on (``CITYCASE_TRACING=otlp``, every request
    traced, exported over OTLP to a sink in this process that counts what arrives), each from an
    empty database, in ``rounds`` A/B rounds (``ab_rounds``). Passed as environment variables over
    the settings, so that the phase runs the same whichever way the setting is spelled in
    ``Settings``.
    """
    with TraceSink() as sink:
        env = {
            "CITYCASE_TRACING": "otlp",
            "OTEL_EXPORTER_OTLP_ENDPOINT": sink.endpoint,
            # Over any traces endpoint of this environment, which would win over the one above.
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": sink.endpoint + "/v1/traces",
        }

        def traced(tracing: bool) -> Callable[[int, float], Awaitable[dict[str, Any]]]:
            async def load(seed: int, span: float) -> dict[str, Any]:
                settings = bench_settings(f"{run}-tracing-{'on' if tracing else 'off'}-{seed}")
                await reset_database(settings)
                async with running_city(settings, ["intake"], env=env if tracing else None) as processes:
                    return await saturate_intake(settings, city, processes, span, seed)

            return load

        _say("tracing: intake alone, tracing off and on (OTLP to a local sink)")
        figures = await ab_rounds("on", traced(True), "off", traced(False), rounds=rounds, seconds=seconds)
        received = sink.figures()  # the processes flushed their last spans as they stopped
    on_reports = sum(r["on"]["ok"] for r in figures["detail"])
    spans_per_report = round(received["spans"] / max(on_reports, 1), 1)
    if received["bytes"] == 0:
        _say("tracing: NO spans reached the sink: tracing was not on, the figures compare off with off")
    cpu_ratio = _median(
        [_ratio(r["on"]["cpu_ms_per_report"], r["off"]["cpu_ms_per_report"]) for r in figures["detail"]], 3
    )
    _say(
        f"tracing: on / off {figures['throughput_ratio']} of the reports/s, {cpu_ratio} of the CPU per report; "
        f"{received['spans']:,} spans ({spans_per_report} a report), {received['bytes']:,} bytes"
    )
    return {
        "throughput_ratio": figures["throughput_ratio"],
        "cpu_ratio": cpu_ratio,
        "off_reports_per_s": figures["off_reports_per_s"],
        "on_reports_per_s": figures["on_reports_per_s"],
        "off_cpu_ms_per_report": figures["off_cpu_ms_per_report"],
        "on_cpu_ms_per_report": figures["on_cpu_ms_per_report"],
        "rounds": figures["rounds"],
        "spans_exported": received["bytes"] > 0,
        "spans_received": received["spans"],
        "spans_per_report": spans_per_report,
        "bytes_received": received["bytes"],
        "exports_received": received["exports"],
        "detail": figures["detail"],
    }


def _cpu_seconds(pid: int) -> float:
    """User and system CPU a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class _MachineCpu:
    """How busy all the machine's cores were from its creation on (``/proc/stat``): a scale-out
    that cannot go faster because the cores are full shows near 100%."""

    def __init__(self) -> None:
        self.start = self._times()

    @staticmethod
    def _times() -> tuple[int, int]:
        # cpu  user nice system idle iowait irq softirq steal ...: (busy, all) in clock ticks
        ticks = [int(field) for field in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
        idle = ticks[3] + ticks[4]
        return sum(ticks) - idle, sum(ticks)

    def busy_percent(self) -> float:
        busy, total = self._times()
        return round((busy - self.start[0]) / max(total - self.start[1], 1) * 100, 1)


# PostgreSQL's backends serving other databases of the cluster (other work on this machine).
_OTHER_DATABASES = "postgres (other databases)"


class _CityCpu:
    """The CPU seconds the city spends over a window, and per report filed in it: every service
    process, PostgreSQL (its processes on this machine: the backends of the benchmark's database
    and the shared ones — writer, checkpointer, WAL writer, autovacuum; backends of other
    databases are counted apart, outside the total) and Kafka (the broker's java process, which
    other users of the broker share). The load generator is left out (its CPU is beside it).
    Processes that start during the window count from zero; those that end in it are missed.
    """

    def __init__(self, settings: Settings, pids: Mapping[str, int], reports_before: int) -> None:
        self.settings = settings
        self.pids = dict(pids)
        self.reports_before = reports_before
        self.before = self._sample()

    @classmethod
    async def start(cls, settings: Settings, pids: Mapping[str, int]) -> _CityCpu:
        return cls(settings, pids, await _reports_received(settings))

    def _sample(self) -> dict[str, dict[int, float]]:
        """Group → process id → CPU seconds so far."""
        groups: dict[str, dict[int, float]] = {name: {} for name in [*self.pids, "postgres", _OTHER_DATABASES, "kafka"]}
        for service, pid in self.pids.items():
            groups[service][pid] = _cpu_seconds(pid)
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            with contextlib.suppress(OSError, IndexError, ValueError):
                pid, comm = int(entry.name), (entry / "comm").read_text().strip()
                if comm.startswith("postgres"):
                    # "postgres: 15/main: <user> <database> <host>(<port>) <state>" for a backend
                    title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                    words = title.split(": ", 2)[-1].split()
                    backend = "(" in title or "[local]" in title
                    other = backend and len(words) > 1 and words[1] != self.settings.pg_database
                    groups[_OTHER_DATABASES if other else "postgres"][pid] = _cpu_seconds(pid)
                elif comm == "java" and b"kafka" in (entry / "cmdline").read_bytes():
                    groups["kafka"][pid] = _cpu_seconds(pid)
        return groups

    async def per_report(self, *, generator_cpu_s: float) -> dict[str, Any]:
        """Each group's CPU per report received since the start, their total (PostgreSQL's other
        databases and the generator left out), and the cores 1,000 reports/s would keep busy."""
        after = self._sample()
        reports = await _reports_received(self.settings) - self.reports_before
        seconds = {
            group: sum(cpu - self.before[group].get(pid, 0.0) for pid, cpu in pids.items())
            for group, pids in after.items()
        }
        per_report = {group: round(cpu / max(reports, 1) * 1000, 2) for group, cpu in seconds.items()}
        total = sum(ms for group, ms in per_report.items() if group != _OTHER_DATABASES)
        return {
            "reports": reports,
            "cpu_seconds": {group: round(cpu, 2) for group, cpu in seconds.items()},
            "ms_per_report_by_process": per_report,
            "ms_per_report": round(total, 2),
            # ms of CPU a report × 1,000 reports/s ÷ 1,000 ms a core gives a second: the same number.
            "cores_for_1000_per_s": round(total, 1),
            "generator_ms_per_report_left_out": round(generator_cpu_s / max(reports, 1) * 1000, 2),
        }


async def _reports_received(settings: Settings) -> int:
    """Reports intake holds (each one accepted, filed or merged)."""
    connection = await asyncpg.connect(
        host=settings.pg_host,
        port=settings.pg_port,
        user="citycase_admin",
        password="citycase_admin",
        database=settings.pg_database,
    )
    try:
        return int(await connection.fetchval("SELECT count(*) FROM intake.reports"))
    finally:
        await connection.close()


async def stream_phase(settings: Settings, city: City, events: int, rounds: int, workers: int) -> dict[str, Any]:
    """The stream's replay of a large log (``python -m services assessment rebuild --workers``, its
    own processes) against a bare consumer reading the same topic, both on a warm broker, in ``rounds``
    rounds: each replay between two bare reads, one just before it and one just after, so that a
    drift of the machine during the replay moves its bare figure (their mean) alike. The figures
    are the medians over the rounds and the median of the rounds' ratios.
    """
    bootstrap = settings.kafka_bootstrap_servers
    _say(f"stream: making sure a log of {events:,} events is on the broker")
    log = await eventlog.ensure_log(
        bootstrap=bootstrap,
        topic=f"{TOPIC_PREFIX}stream-{_size(events)}",
        city=city,
        events=events,
        partitions=settings.kafka_partitions,
    )
    _say(f"stream: {'reused' if log.reused else f'produced in {log.produce_seconds:.0f}s'}: {log.records:,} events")
    per_round = []
    for n in range(rounds):
        before = await eventlog.bare_consumer_rate(bootstrap=bootstrap, topic=log.topic, records=log.records)
        replay = await _replay(settings.model_copy(update={"topic_case_events": log.topic}), workers)
        after = await eventlog.bare_consumer_rate(bootstrap=bootstrap, topic=log.topic, records=log.records)
        bare = (before.records_per_second + after.records_per_second) / 2
        per_round.append(
            {
                **replay,
                "bare_consumer_events_per_s": round(bare),
                "bare_before_events_per_s": round(before.records_per_second),
                "bare_after_events_per_s": round(after.records_per_second),
                "bare_seconds": round((before.seconds + after.seconds) / 2, 1),
                "ratio": round(replay["events_per_s"] / bare, 3),
            }
        )
        _say(
            f"stream: round {n + 1}/{rounds}: replay {replay['events_per_s']:,} events/s "
            f"({replay['events']:,} events in {replay['seconds']:.0f}s), bare consumer {bare:,.0f} records/s "
            f"(before {before.records_per_second:,.0f}, after {after.records_per_second:,.0f})"
        )
    return {
        "replay_events_per_s": _median([r["events_per_s"] for r in per_round], 0),
        "bare_consumer_events_per_s": _median([r["bare_consumer_events_per_s"] for r in per_round], 0),
        "ratio": _median([r["ratio"] for r in per_round], 3),
        "rounds": rounds,
        "replay_workers": workers,
        "events": per_round[-1]["events"],
        "cases": log.cases,
        "log_reused": log.reused,
        "log_produce_seconds": round(log.produce_seconds, 1),
        "rebuild_peak_rss_mb": max(r["peak_rss_mb"] for r in per_round),
        "detail": per_round,
    }


async def _replay(settings: Settings, workers: int) -> dict[str, Any]:
    """One ``python -m services assessment rebuild`` of ``settings``' case event topic into empty
    counters: events, seconds and events/s as it reports them, and the peak memory of its biggest
    process (itself or one of its ``workers`` members)."""
    env = {**os.environ, **settings_env(settings)}
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "services", "assessment", "rebuild", "--workers", str(workers)),
        cwd=REPO,
        env=env,
        stdout=asyncio.subprocess.PIPE,
    )
    peak = 0.0
    while process.returncode is None:
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            peak = max(peak, *peak_rss_mb({"rebuild": process.pid, **_children(process.pid)}).values())
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(1.0):
                await process.wait()
    assert process.stdout is not None
    output = (await process.stdout.read()).decode()
    if process.returncode != 0:
        raise RuntimeError(f"assessment rebuild failed: {output}")
    # "replayed N events in S s (R events/s)"
    words = output.split()
    replayed, seconds = int(words[1]), float(words[4].rstrip("s"))
    return {"events": replayed, "seconds": seconds, "events_per_s": round(replayed / seconds), "peak_rss_mb": peak}


async def query_phase(settings: Settings, sizes: Sequence[int]) -> dict[str, Any]:
    """Query cost at each size, against an assessment process whose stream follows an empty topic
    (so the counters are the ones the phase loads).
    """
    quiet = settings.model_copy(update={"topic_case_events": settings.topic_case_events + ".none"})
    async with running_city(quiet, ["assessment"]) as processes:
        lead = Principal(username="bench", role=Role.SHIFT_LEAD, name="benchmark")
        token = TokenIssuer(settings.jwt_secret, SystemClock(), ttl=timedelta(hours=1)).issue_machine(lead)
        _say(f"query: {', '.join(f'{size:,}' for size in sizes)} cases")
        figures = await query.run(settings=quiet, assessment_url=processes.urls["assessment"], token=token, sizes=sizes)
        figures["assessment_peak_rss_mb"] = peak_rss_mb(processes.pids)["assessment"]
        return figures


async def stream_scale_out(run: str, city: City, events: int) -> dict[str, Any]:
    """The assessment stream catching up a log of ``events`` events with one member, then with two
    (two assessment processes in one consumer group, each with half the partitions), each into an
    empty assessment database.
    """
    bootstrap = bench_settings(run).kafka_bootstrap_servers
    _say(f"scale-out: making sure a log of {events:,} events is on the broker")
    log = await eventlog.ensure_log(
        bootstrap=bootstrap,
        topic=f"{TOPIC_PREFIX}stream-{_size(events)}",
        city=city,
        events=events,
        partitions=bench_settings(run).kafka_partitions,
    )
    figures = {}
    for members in (1, 2):
        # A consumer group of its own each time (the positions that count are in the database).
        settings = bench_settings(f"{run}-stream-x{members}").model_copy(update={"topic_case_events": log.topic})
        await reset_database(settings)
        _say(f"scale-out: the stream catching up {log.records:,} events with {members} member(s)")
        figures[members] = await _catch_up(settings, members)
        _say(
            f"scale-out: stream x{members}: {figures[members]['events_per_s']:,} events/s "
            f"(caught up {figures[members]['catch_up_seconds']}s after ready), "
            f"machine {figures[members]['machine_busy_percent']}% busy"
        )
    one, two = figures[1], figures[2]
    return {
        "ratio": round(two["events_per_s"] / one["events_per_s"], 2) if one["events_per_s"] else None,
        "one_events_per_s": one["events_per_s"],
        "two_events_per_s": two["events_per_s"],
        "events": log.records,
        "log_reused": log.reused,
        "detail": {"one": one, "two": two},
    }


async def _catch_up(settings: Settings, members: int, timeout_s: float = 900) -> dict[str, Any]:
    """Start ``members`` assessment processes on a log and poll their stored positions until they
    reach its end. The rate counts from the first poll that finds the group stable with every
    member in it (the joins and the rebalance a second member causes are start-up, not
    throughput); the catch-up time from when every process answered ready.
    """
    headers = _lead_headers(settings)
    bus = KafkaBus(settings.kafka_bootstrap_servers, client_id="citycase-bench")
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        ends = {
            partition: end for (_topic, partition), end in (await bus.end_offsets(settings.topic_case_events)).items()
        }
        total = sum(ends.values())
        async with (
            running_city(settings, ["assessment"], replicas={"assessment": members}) as processes,
            httpx.AsyncClient(base_url=processes.urls["assessment"], headers=headers, timeout=10) as client,
        ):
            ready_at = time.monotonic()
            pids = list(processes.pids.values())
            cpu_before = sum(_cpu_seconds(pid) for pid in pids)
            machine = _MachineCpu()
            steady: tuple[float, int] | None = None  # (when, events applied) once every member is in
            deadline = ready_at + timeout_s
            while True:
                body = (await client.get("/assessment/stream")).json()
                now = time.monotonic()
                applied = sum(
                    min(offset, ends.get(partition, 0)) for partition, offset in _partition_positions(body).items()
                )
                if applied >= total or now > deadline:
                    break
                if steady is None and await _group_complete(
                    admin, settings.kafka_group_prefix + body["consumer"], members
                ):
                    steady = (now, applied)
                await asyncio.sleep(0.25)
            cpu = sum(_cpu_seconds(pid) for pid in pids) - cpu_before
            busy = machine.busy_percent()
    finally:
        await admin.close()
        await bus.close()
    if applied < total:
        _say(f"scale-out: the stream applied {applied:,} of {total:,} events within {timeout_s:.0f}s")
    since, applied_then = steady or (ready_at, 0)
    return {
        "members": members,
        "events": total,
        "applied": applied,
        "events_per_s": round((applied - applied_then) / max(now - since, 1e-3)),
        "catch_up_seconds": round(now - ready_at, 1),
        "applied_before_steady": applied_then,
        "group_seen_complete": steady is not None,
        "cpu_us_per_event": round(cpu / max(applied, 1) * 1e6, 1),
        "machine_busy_percent": busy,
    }


async def _group_complete(admin: AIOKafkaAdminClient, group: str, members: int) -> bool:
    """Whether ``group`` is stable with ``members`` members (a rebalance done, every member assigned)."""
    for response in await admin.describe_consumer_groups([group]):
        for _error, _group, state, _kind, _protocol, joined in response.groups:
            return bool(state == "Stable" and len(joined) == members)
    return False


def _lead_headers(settings: Settings) -> dict[str, str]:
    """A shift lead's authorisation (what ``GET /assessment/stream`` asks for)."""
    lead = Principal(username="bench", role=Role.SHIFT_LEAD, name="benchmark")
    token = TokenIssuer(settings.jwt_secret, SystemClock(), ttl=timedelta(hours=2)).issue_machine(lead)
    return {"Authorization": f"Bearer {token}"}


def _children(pid: int) -> dict[str, int]:
    """The processes ``pid`` started (a rebuild's members), by a name of their own."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return {f"child {child}": int(child) for child in children}


def peak_rss_mb(pids: dict[str, int]) -> dict[str, float]:
    """Each process's peak resident memory (``VmHWM``) so far."""
    peaks = {}
    for service, pid in pids.items():
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                peaks[service] = round(int(line.split()[1]) / 1024, 1)
    return peaks


def machine() -> str:
    """A short description of this machine and the versions measured."""
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor(),
    )
    memory_kb = int(Path("/proc/meminfo").read_text().split()[1])
    # "psql (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)"
    postgres = subprocess.run(["psql", "--version"], capture_output=True, text=True, check=False).stdout.split()[2:3]
    return (
        f"{os.cpu_count()} cores ({model}), {memory_kb / 1024 / 1024:.0f} GiB, {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}, PostgreSQL {' '.join(postgres)}"
    )


@asynccontextmanager
async def running_city(
    settings: Settings,
    services: Sequence[str],
    *,
    replicas: Mapping[str, int] | None = None,
    env: Mapping[str, str] | None = None,
) -> AsyncIterator[ServiceProcesses]:
    """The services as their own processes (``replicas``: more than one of a service), logs under
    var/bench/logs; ``env`` goes to every process over the settings."""
    ports = {service: BASE_PORT + n for n, service in enumerate(SERVICE_NAMES)}
    extra = [name for service, count in (replicas or {}).items() for name in replica_names(service, count)[1:]]
    ports |= {name: REPLICA_BASE_PORT + n for n, name in enumerate(extra)}
    async with launch(
        settings, services, ports, log_dir=settings.data_dir / "logs", replicas=replicas, env=env
    ) as processes:
        yield processes


async def main(args: argparse.Namespace) -> dict[str, Any]:
    run = f"run-{int(time.time())}"
    settings = bench_settings(run)
    city = load_city(settings.city_dir)
    results: dict[str, Any] = {"machine": machine(), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    await drop_old_topics(settings)
    if args.scale_out:
        results["scale_out"] = {"intake": await intake_scale_out(run, city, args.seconds, args.rounds)}
    if args.tracing:
        results["tracing"] = await tracing_cost(run, city, args.seconds, args.rounds)
    if args.city:
        await whole_city(run, city, args, results)
    if args.scale_out and args.scale_out_events:
        results.setdefault("scale_out", {})["stream"] = await stream_scale_out(run, city, args.scale_out_events)
    if args.events:
        results["stream"] = await stream_phase(settings, city, args.events, args.stream_rounds, args.replay_workers)
        peaks = results.setdefault("memory", {}).setdefault("peak_rss_mb", {})
        peaks["assessment rebuild"] = results["stream"]["rebuild_peak_rss_mb"]
    if args.console:
        _say("console: bundle size and the dashboard's first render in Chromium")
        results["console"] = await console.run()
    if args.sizes:
        figures = await query_phase(settings, args.sizes)
        results["query"] = {
            "indicator_p99_ms": figures["indicator_p99_ms"],
            "sql_p99_ms": figures["sql_p99_ms"],
            "ranking_p99_ms": figures["ranking_p99_ms"],
            "ranking_sql_p99_ms": figures["ranking_sql_p99_ms"],
            "detail": figures,
        }
    return results


async def whole_city(run: str, city: City, args: argparse.Namespace, results: dict[str, Any]) -> None:
    """Intake alone against the filing floor (A/B rounds), then the phases with every service
    running: intake, report back, end to end, memory; the CPU every process of the city spends
    per report."""
    settings = bench_settings(run)
    alone = await intake_against_floor(run, city, args.seconds, args.rounds, floor=args.floor)
    _say(
        f"intake alone: {alone['intake_reports_per_s']} reports/s, {alone['intake_cpu_ms_per_report']} ms "
        f"of CPU each (median of {alone['rounds']} rounds)"
    )
    if args.floor:
        results["floor"] = {
            "reports_per_s": alone["floor_reports_per_s"],
            "cpu_ms_per_report": alone["floor_cpu_ms_per_report"],
            "intake_ratio": alone["throughput_ratio"],
            "cpu_ratio": alone["cpu_ratio"],
            "rounds": alone["rounds"],
            "detail": alone["detail"],
        }
        _say(
            f"floor: {alone['floor_reports_per_s']} reports/s, {alone['floor_cpu_ms_per_report']} ms of CPU "
            f"each; intake / floor {alone['throughput_ratio']}, CPU floor / intake {alone['cpu_ratio']}"
        )
    await reset_database(settings)
    _say("starting the services, each its own process")
    async with running_city(settings, SERVICE_NAMES) as processes:
        phases = Phases(settings, city, processes, args.profile)
        intake = await phases.intake(args.seconds)
        results["intake"] = {
            "reports_per_s": intake["saturation"]["ok_per_s"],
            "alone_reports_per_s": alone["intake_reports_per_s"],
            "alone_cpu_ms_per_report": alone["intake_cpu_ms_per_report"],
            "alone_rounds": alone["rounds"],
            "p50_ms": intake["steady"]["latency_ms"]["p50"],
            "p99_ms": intake["steady"]["latency_ms"]["p99"],
            "steady_rate": intake["steady"]["target_rate"],
            "detail": intake,
        }
        results["city_cpu"] = {"intake_saturation": intake["cpu"]}
        back = await phases.report_back(args.seconds)
        results["report_back"] = {
            "per_s": back["saturation"]["ok_per_s"],
            "p50_ms": back["steady"]["latency_ms"]["p50"],
            "p99_ms": back["steady"]["latency_ms"]["p99"],
            "detail": back,
        }
        e2e = await phases.end_to_end(args.e2e_rate, args.seconds * 2)
        results["e2e"] = {
            "rate": args.e2e_rate,
            "dispatched_p50_ms": e2e["dispatched_ms"]["p50"],
            "dispatched_p99_ms": e2e["dispatched_ms"]["p99"],
            "indicators_p50_ms": e2e["indicators_ms"]["p50"],
            "indicators_p99_ms": e2e["indicators_ms"]["p99"],
            "detail": e2e,
        }
        results["city_cpu"]["end_to_end"] = e2e["cpu"]
        results["memory"] = {"peak_rss_mb": peak_rss_mb(processes.pids)}


def _positive(text: str) -> int:
    number = int(text)
    if number < 1:
        raise argparse.ArgumentTypeError(f"at least 1, not {number}")
    return number


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help="where the figures go; the table in bench/README.md is rewritten only when this is "
        "bench/results.json (the default): a trial elsewhere prints its table instead",
    )
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each measured load")
    parser.add_argument(
        "--rounds",
        type=_positive,
        default=3,
        help="A/B rounds of intake alone against the filing floor, of intake's scale-out and of tracing's "
        "cost (the figures are their medians)",
    )
    parser.add_argument(
        "--floor",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="the filing floor (bench/floor.py) in intake alone's rounds (--no-floor: intake alone only)",
    )
    parser.add_argument(
        "--stream-rounds",
        type=_positive,
        default=1,
        help="replays of the log, each between two bare consumer reads (a replay of the 2M log takes minutes; "
        "the bare reads seconds)",
    )
    parser.add_argument(
        "--replay-workers",
        type=_positive,
        default=2,
        help="processes of the replay (`assessment rebuild --workers`): 2 on this 2-core machine replays the "
        "200k log about 1.5 times as fast as 1 (bench/README.md)",
    )
    parser.add_argument("--profile", type=Path, help="sample the services with py-spy into this folder")
    parser.add_argument("--e2e-rate", type=float, default=50.0, help="reports/s of the end-to-end load")
    parser.add_argument("--events", type=int, default=2_000_000, help="events in the replayed log (0: skip)")
    parser.add_argument(
        "--city",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="intake alone, and the phases with the whole city running (intake, report back, end to end, memory)",
    )
    parser.add_argument(
        "--scale-out",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="two intake processes against one, and two members of the stream against one",
    )
    parser.add_argument(
        "--scale-out-events",
        type=int,
        default=200_000,
        help="events in the log the stream's members catch up (0: skip the stream's scale-out)",
    )
    parser.add_argument(
        "--tracing",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="intake alone with tracing off, then on (OTLP to a local sink)",
    )
    parser.add_argument(
        "--console",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="the console's bundle size and the dashboard's first render (needs `make web` and Chromium)",
    )
    parser.add_argument(
        "--sizes",
        type=lambda text: [int(size) for size in text.split(",") if size],
        default=[10_000, 100_000, 1_000_000],
        help="cases of the query datasets, comma-separated (empty: skip)",
    )
    return parser.parse_args(argv)


def entry(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    started = time.monotonic()
    results = asyncio.run(main(args))
    results["seconds"] = round(time.monotonic() - started, 1)
    args.out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    if args.out.resolve() == DEFAULT_OUT:
        report.write(results, REPO / "bench" / "README.md")
    else:
        print(report.table(results), flush=True)
    _say(f"done in {results['seconds']:.0f}s: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(entry())
