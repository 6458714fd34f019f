"""The stream benchmark's event log: a year of a city's case events on a Kafka topic, and the rate at
which a bare consumer reads it back.

``ensure_log`` fills a topic with a synthetic but faithful case event log: real ``Event`` objects of
the catalogue, encoded by ``shared.events.envelope.encode`` and keyed by the case id as
``KafkaBus.publish`` keys them, so the replay reads exactly what the services would have published.
Reports arrive through 2026 in time order, many cases are open at once, and each case runs its
lifecycle at the simulator's published rates (``services.tools.simulator.profile``): filing or rejection,
routing or the coordination queue, returns and re-dispatches, extensions, suspensions, late
handling with the deadline timer's misses and supervision notices, failed checks and rework,
cancellations. Deadlines come from the city's working calendar. The log is cut at exactly the
number of events asked for, which is what a live log looks like when a rebuild starts: most cases
closed, the latest ones still open.

Every report draws from its own generator, seeded with the log's seed, ``GENERATOR_VERSION`` and its
place in the arrivals, so a seed gives the same log, event ids included, on every run. The case id
(from a hash of the same) decides the partition, so ``WORKERS`` processes can each plan, encode
and publish the cases of their own partitions, each partition in exact time order, while working
out no more than the ids of the other cases. Planning and encoding cost far more than the broker's
writing, and this machine has two cores. A finished log is recorded in a one-record manifest topic
beside it; ``ensure_log`` reuses a log whose manifest and record count match.

``bare_consumer_rate`` reads the whole topic with a plain aiokafka consumer that does nothing with
the records: the broker-and-client ceiling the stream's replay rate is compared with.
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import heapq
import json
import math
import multiprocessing
import random
import time
import zoneinfo
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from itertools import accumulate, chain, islice
from typing import NamedTuple
from uuid import UUID

import shapely
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError
from aiokafka.partitioner import DefaultPartitioner

from services.tools.simulator.profile import Profile
from shared.city.calendar import CalendarDataMissing, TimeBasis, TimeLimit, load_calendar
from shared.city.model import Category, City
from shared.events.catalogue import (
    CaseAccepted,
    CaseCancelled,
    CaseClosed,
    CaseDispatched,
    CaseFiled,
    CaseHandled,
    CaseQueuedForCoordination,
    CaseResumed,
    CaseReturned,
    CaseSuspended,
    CheckFailed,
    CheckPassed,
    CheckRequested,
    DeadlineKind,
    DeadlineMissed,
    EventPayload,
    ExtensionApproved,
    ExtensionDenied,
    ExtensionRequested,
    GeoPoint,
    GridPlace,
    ReportMerged,
    ReportReceived,
    ReportRejected,
    ReportSource,
    ReportVerified,
    SupervisionIssued,
    VerificationRequested,
)
from shared.events.envelope import Event
from shared.messaging.binding import encode

# Bump whenever the generator's output changes: it is part of every seed and of the manifest, so a
# log made by an older generator is never taken for the current one.
GENERATOR_VERSION = 1
# Processes planning and publishing the log, each the cases of every WORKERS-th partition. Part of
# the log's identity (each cuts its partitions at its share of the events), so it is fixed rather
# than the machine's CPU count.
WORKERS = 2
TOPIC_PREFIX = "citycase-bench."
MANIFEST_SUFFIX = ".manifest"
YEAR = 2026
# Arrivals are paced so that the last event falls around this day of the year: cases still open
# then run into December, against deadlines the calendar knows (chinesecalendar has no 2027 yet).
# Small logs aim earlier (see ``_target_day``).
_TARGET_DAY = 335
_PILOT_REPORTS = 3000

# The producer hands over whole record batches per partition (``send_batch``): a fifth of the cost
# of per-message ``send`` here; 512 KiB batches were the fastest of 256 KiB-1 MiB. No compression:
# the services publish uncompressed and the replay must read what they write (gzip is the only
# codec aiokafka has without new packages, and it made producing no faster).
_BATCH_BYTES = 512 * 1024
_REQUEST_TIMEOUT_MS = 60_000
_TOPIC_ALREADY_EXISTS = 36
# The bare consumer asks for as many records a call as the stream does (``stream_batch_size``).
# Larger calls read slower, not faster: the cyclic garbage collector walks the records held alive
# (2M-record log, fresh process: 200 a call 420k/s, 1,000 240k/s, 100,000 140k/s; 280k/s with
# the collector off).
_STREAM_BATCH = 1000

_INTAKE, _DISPATCH, _HANDLING, _CLOSURE = (f"/citycase/{s}" for s in ("intake", "dispatch", "handling", "closure"))
# Actors the services name in events: dispatch's own and the demo city's operator, dispatcher and shift lead.
_ROUTING_ACTOR = "routing-rules"
_OPERATOR = "operator"
_DISPATCHER = "dispatcher"
_SHIFT_LEAD = "shiftlead"
_COORDINATION_DEPARTMENT = "coordination"
_REPORTER: dict[ReportSource, str | None] = {
    ReportSource.HOTLINE: "hotline",
    ReportSource.VIDEO: "video",
    ReportSource.PUBLIC: None,
}
# Dispatch's deadline timer runs every 5 s: its events lag a deadline by up to that.
_TIMER_INTERVAL_S = 5.0
# How long a service takes to react to another's event (relay, consumer, transaction).
_REACTION_S = (0.05, 2.0)
# A case's events are strictly ordered in time: a step stamped no later than the one before (two
# events of one transaction) is moved a microsecond on.
_TICK = timedelta(microseconds=1)
# Reports other than inspectors' come around the clock, more by day: relative weights by local hour.
_HOUR_WEIGHTS = (2, 1, 1, 1, 1, 2, 4, 7, 9, 10, 10, 10, 9, 9, 10, 10, 10, 9, 8, 7, 6, 5, 4, 3)
# A check that would end after the handling deadline is mostly done before it (inspectors see the
# deadline); this share of checks takes its own time regardless.
_UNHURRIED_CHECKS = 0.05

_PHRASES = ("请尽快处理", "影响通行", "群众反映强烈", "多次出现", "位置见照片", "影响市容")
_RESULTS = ("已处置完毕", "已清理", "已修复", "已责令整改", "已劝离", "已更换")
_FAILURES = ("问题仍存在", "处置不彻底", "现场未整改")
_RETURNS = ("不属于本单位职责", "权属不清，请重新派遣", "位置不在本辖区")
_REJECTIONS = (("out_of_scope", "不属于城市管理范围"), ("invalid", "图像不清，无法定位问题"))

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_END_OF_TIME = datetime.max.replace(tzinfo=UTC)
_MILLISECOND = timedelta(milliseconds=1)
_LOW_62 = (1 << 62) - 1


@dataclass(frozen=True)
class LogInfo:
    """The event log a stream benchmark replays."""

    topic: str
    records: int
    # Distinct case ids (event subjects) in the log: every report, most of which became cases.
    cases: int
    # Time spent generating and producing the log; 0 when an existing log was reused.
    produce_seconds: float
    reused: bool


@dataclass(frozen=True)
class BareRead:
    """How fast a consumer that does nothing reads a whole topic."""

    records: int
    seconds: float

    @property
    def records_per_second(self) -> float:
        """The read rate."""
        return self.records / self.seconds if self.seconds > 0 else 0.0


async def ensure_log(
    *, bootstrap: str, topic: str, city: City, events: int = 2_000_000, seed: int = 1, partitions: int = 6
) -> LogInfo:
    """Make sure ``topic`` holds the log of ``events`` events that ``seed`` gives for ``city``.

    A topic whose manifest names this generator (version and rules' fingerprint), seed, size and
    partition count, and whose partitions hold exactly ``events`` records, is reused as it is.
    Anything else (another size, a produce cut short) is deleted and written again. Only
    ``citycase-bench.`` topics are touched.
    """
    if not topic.startswith(TOPIC_PREFIX):
        raise ValueError(f"the benchmark writes only {TOPIC_PREFIX}* topics, not {topic!r}")
    if events <= 0 or partitions <= 0:
        raise ValueError("a log needs at least one event and one partition")
    started = time.perf_counter()
    pace = _SyntheticCity(city, seed, partitions).pace(events)
    wanted: dict[str, int | str] = {
        "generator": GENERATOR_VERSION,
        "rules": pace.fingerprint,
        "workers": WORKERS,
        "seed": seed,
        "events": events,
        "partitions": partitions,
    }
    manifest_topic = topic + MANIFEST_SUFFIX
    manifest, ends = await _stored_log(bootstrap, topic, manifest_topic)
    matches = manifest is not None and {key: manifest.get(key) for key in wanted} == wanted
    if manifest is not None and matches and len(ends) == partitions and sum(ends.values()) == events:
        return LogInfo(topic, events, int(manifest["cases"]), 0.0, reused=True)

    await _recreate_topics(bootstrap, [(topic, partitions), (manifest_topic, 1)])
    shares = [_Share(bootstrap, topic, city, seed, partitions, pace.reports_per_day, w) for w in range(WORKERS)]
    quotas = _quotas(events, partitions)
    loop = asyncio.get_running_loop()
    # Spawned, not forked: a fork would copy the caller's open connections (database pools, the
    # broker) into processes that might close them.
    with ProcessPoolExecutor(WORKERS, mp_context=multiprocessing.get_context("spawn")) as pool:
        counts = await asyncio.gather(
            *(
                loop.run_in_executor(pool, _publish_share, share, quota)
                for share, quota in zip(shares, quotas, strict=True)
            )
        )
    cases = sum(counts)
    produce_seconds = time.perf_counter() - started
    written = sum((await _stored_log(bootstrap, topic, manifest_topic))[1].values())
    if written != events:
        raise RuntimeError(f"{topic} holds {written} records after producing {events}")
    await _write_manifest(bootstrap, manifest_topic, {**wanted, "cases": cases})
    return LogInfo(topic, events, cases, produce_seconds, reused=False)


async def bare_consumer_rate(*, bootstrap: str, topic: str, records: int, max_records: int = _STREAM_BATCH) -> BareRead:
    """Read ``topic`` from its first offsets to its end offsets doing nothing with the records.

    The consumer is configured like ``KafkaBus.subscribe``'s (aiokafka's default fetch sizes and
    waits, no auto-commit, ``auto_offset_reset="earliest"``) and asks for ``max_records`` a call,
    the stream's batch by default; unlike it, it assigns itself every partition instead of joining
    a group, and leaves aiokafka's records as they are where ``KafkaSubscription.fetch`` copies each
    into a ``Record``. Timed from the first fetch to the last record. ``records`` is the count
    expected, checked against the topic's end offsets.

    Whatever the calling process already holds is frozen out of the garbage collector for the
    read: every full collection would walk it, and the rate would depend on the caller (a fresh
    process read the 2M-record log at 180k records/s, one holding the city at 155k/s; frozen,
    300k/s and 230k/s).
    """
    numbers = (await _partitions(bootstrap, [topic])).get(topic)
    if numbers is None:
        raise LookupError(f"topic {topic} does not exist")
    partitions = [TopicPartition(topic, p) for p in numbers]
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        client_id="citycase-bench-bare",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        total = sum((await consumer.end_offsets(partitions)).values())
        if total != records:
            raise RuntimeError(f"{topic} holds {total} records, not the {records} expected")
        read = 0
        gc.freeze()
        try:
            started = time.perf_counter()
            while read < total:
                batches = await consumer.getmany(timeout_ms=1000, max_records=max_records)
                read += sum(len(batch) for batch in batches.values())
            return BareRead(read, time.perf_counter() - started)
        finally:
            gc.unfreeze()
    finally:
        await consumer.stop()


# --- publishing ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Share:
    """What one worker process needs to plan and publish its cases (pickled to it)."""

    bootstrap: str
    topic: str
    city: City
    seed: int
    partitions: int
    reports_per_day: float
    worker: int


def _quotas(events: int, partitions: int) -> list[int]:
    """How many events each worker publishes: a share in proportion to its partitions."""
    owned = [len(range(worker, partitions, WORKERS)) for worker in range(WORKERS)]
    quotas = [events * count // partitions for count in owned]
    for worker in range(events - sum(quotas)):
        quotas[worker] += 1
    return quotas


def _publish_share(share: _Share, events: int) -> int:
    """A worker process's entry point: publish the first ``events`` events of its share of the cases."""
    return asyncio.run(_publish(share, events))


async def _publish(share: _Share, events: int) -> int:
    """Publish the first ``events`` events of one worker's partitions; the number of cases among them.

    Record batches are built per partition here and handed over whole, on the partition aiokafka's
    default partitioner (the one ``KafkaBus.publish`` uses) gives the case id key. Idempotence keeps
    a retried batch from being written twice, so the count stays exact.
    """
    if events == 0:
        return 0
    city = _SyntheticCity(share.city, share.seed, share.partitions)
    producer = AIOKafkaProducer(
        bootstrap_servers=share.bootstrap,
        client_id=f"citycase-bench-log-{share.worker}",
        acks="all",
        enable_idempotence=True,
        max_batch_size=_BATCH_BYTES,
        request_timeout_ms=_REQUEST_TIMEOUT_MS,
    )
    await producer.start()
    try:
        if sorted(await producer.partitions_for(share.topic)) != list(range(share.partitions)):
            raise RuntimeError(f"{share.topic} does not have {share.partitions} partitions")
        batches = [producer.create_batch() for _ in range(share.partitions)]
        deliveries = []
        cases = 0
        for case, event in city.events(events, share.reports_per_day, share.worker):
            cases += case.next == 0  # the case's first event
            message = encode(event, share.topic)
            headers = list(message.headers)  # as KafkaBus.publish passes them (aiokafka wants a list)
            batch = batches[case.partition]
            if batch.append(key=message.key, value=message.value, timestamp=None, headers=headers) is None:
                deliveries.append(await producer.send_batch(batch, share.topic, partition=case.partition))
                batch = batches[case.partition] = producer.create_batch()
                batch.append(key=message.key, value=message.value, timestamp=None, headers=headers)
        for partition, batch in enumerate(batches):
            if batch.record_count():
                deliveries.append(await producer.send_batch(batch, share.topic, partition=partition))
        await asyncio.gather(*deliveries)
        return cases
    finally:
        await producer.stop()


async def _recreate_topics(bootstrap: str, topics: Sequence[tuple[str, int]]) -> None:
    """Delete ``topics`` where they exist, then create them afresh (kept forever, like the case
    events topic). Kafka deletes in the background, so creation is retried until the old one is gone.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="citycase-bench-admin")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        doomed = [name for name, _ in topics if name in existing]
        if doomed:
            await admin.delete_topics(doomed)
        pending = dict(topics)
        give_up = time.monotonic() + 60
        while True:
            response = await admin.create_topics(
                [NewTopic(name, count, 1, topic_configs={"retention.ms": "-1"}) for name, count in pending.items()]
            )
            for name, code, *_ in response.topic_errors:
                if code == 0:
                    del pending[name]
                elif code != _TOPIC_ALREADY_EXISTS:
                    raise KafkaError(f"cannot create topic {name}: error code {code}")
            if not pending:
                return
            if time.monotonic() > give_up:
                raise KafkaError(f"topics {sorted(pending)} were still being deleted after 60 s")
            await asyncio.sleep(0.5)
    finally:
        await admin.close()


async def _partitions(bootstrap: str, topics: Sequence[str]) -> dict[str, list[int]]:
    """The partition numbers of each of ``topics`` that exists."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="citycase-bench-admin")
    await admin.start()
    try:
        described = await admin.describe_topics(list(topics))
    finally:
        await admin.close()
    return {
        topic["topic"]: sorted(p["partition"] for p in topic["partitions"])
        for topic in described
        if topic["error_code"] == 0
    }


async def _stored_log(
    bootstrap: str, topic: str, manifest_topic: str
) -> tuple[dict[str, int | str] | None, dict[int, int]]:
    """The manifest of ``topic``'s log (None when there is none) and each partition's end offset."""
    partitions = await _partitions(bootstrap, [topic, manifest_topic])
    if topic not in partitions:
        return None, {}
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, client_id="citycase-bench-admin", enable_auto_commit=False)
    await consumer.start()
    try:
        offsets = await consumer.end_offsets([TopicPartition(topic, p) for p in partitions[topic]])
        ends = {tp.partition: offset for tp, offset in offsets.items()}
        last = TopicPartition(manifest_topic, 0)
        end = (await consumer.end_offsets([last]))[last] if manifest_topic in partitions else 0
        if end == 0:
            return None, ends
        consumer.assign([last])
        consumer.seek(last, end - 1)
        manifest: dict[str, int | str] = json.loads((await consumer.getone()).value)
        return manifest, ends
    finally:
        await consumer.stop()


async def _write_manifest(bootstrap: str, manifest_topic: str, manifest: dict[str, int | str]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, client_id="citycase-bench-admin", acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(manifest_topic, json.dumps(manifest).encode())
    finally:
        await producer.stop()


# --- the synthetic city --------------------------------------------------------------------------


class _Pace(NamedTuple):
    """How many reports a day make the log, and a fingerprint of what the generator made of the
    pilot's reports, arrivals and cases: a change to the rules that forgot to bump
    ``GENERATOR_VERSION`` still shows in the manifest.
    """

    reports_per_day: float
    fingerprint: str


class _Arrival(NamedTuple):
    """A report as it arrives: its place in the year's arrivals decides its generator and numbers."""

    serial: int
    at: datetime
    source: ReportSource
    # The case number it gets if filed, shaped like intake's: the month it came in and its rank
    # among that month's reports (intake ranks the filed cases only; gaps change nothing here).
    case_number: str


@dataclass(slots=True)
class _Case:
    """One report's planned events, released into the log in time order with the other cases'."""

    serial: int
    partition: int
    events: list[Event]
    next: int = 0


@dataclass(slots=True)
class _Filed:
    """A recent case that a repeat report can be merged into while it is open."""

    case_id: UUID
    filed_at: datetime
    open_until: datetime


class _SyntheticCity:
    """The city's reports through the year, and each one's case planned from filing to closure."""

    def __init__(self, city: City, seed: int, partitions: int) -> None:
        self.city = city
        self.profile = Profile()
        self.calendar = load_calendar(city.calendar_file)
        self.zone = zoneinfo.ZoneInfo(city.timezone)
        self._seed = f"citycase-bench/eventlog/v{GENERATOR_VERSION}/{seed}"
        self._partitioner = DefaultPartitioner()
        self._partitions = list(range(partitions))
        cells = city.cells
        self.places = [cell.place for cell in cells]
        self.polygons = [city.grid.polygon(cell.id) for cell in cells]
        self.bounds = [polygon.bounds for polygon in self.polygons]
        self.inspectors = [city.inspector_for(cell.id).id for cell in cells]
        self.inspector_users = {u.inspector_id: u.username for u in city.users if u.inspector_id is not None}
        self.department_users = {u.department_id: u.username for u in city.users if u.department_id is not None}
        self.categories, weights = self._category_weights()
        self.category_cum = list(accumulate(weights))
        self.sources = list(ReportSource)
        self.source_shares = [self.profile.source_share(s) for s in self.sources]
        self._hour_cum = list(accumulate(_HOUR_WEIGHTS))
        # Merge candidates per partition, so that what a case merges into does not depend on which
        # worker planned it.
        self.recent: dict[int, deque[_Filed]] = {p: deque(maxlen=200) for p in self._partitions}

    def _category_weights(self) -> tuple[list[Category], list[float]]:
        """The profile's weights by category code, or by major class spread over its categories."""
        weights = self.profile.category_weights
        per_major: dict[str, int] = {}
        for category in self.city.categories:
            per_major[category.major_code] = per_major.get(category.major_code, 0) + 1
        chosen: list[tuple[Category, float]] = []
        for category in self.city.categories:
            if category.code in weights:
                chosen.append((category, weights[category.code]))
            elif category.major_code in weights:
                chosen.append((category, weights[category.major_code] / per_major[category.major_code]))
        return [category for category, _ in chosen], [weight for _, weight in chosen]

    def pace(self, events: int) -> _Pace:
        """The pace of reports that brings ``events`` events around the target day, from a pilot run
        of the same rules, and the fingerprint of what the pilot planned.
        """
        planned = reports = 0
        fingerprint = hashlib.sha256()
        # A slow year, so that the pilot's reports see weekdays, weekends and holidays.
        for arrival in islice(self.arrivals(_PILOT_REPORTS / 200), _PILOT_REPORTS):
            case = self.plan(arrival)
            if case is None:
                continue
            planned += len(case.events)
            reports += 1
            for event in case.events:
                fingerprint.update(f"{event.id} {event.time.isoformat()} {event.data.model_dump_json()}".encode())
        return _Pace(events / (planned / reports) / _target_day(events), fingerprint.hexdigest()[:16])

    def events(self, count: int, reports_per_day: float, worker: int) -> Iterator[tuple[_Case, Event]]:
        """The first ``count`` events of one worker's partitions, in the order they were published.

        Each case is planned whole when its report arrives; a heap of every open case's next event
        releases events in time order up to the next arrival, so memory holds only open cases.
        """
        pending: list[tuple[datetime, int, _Case]] = []
        emitted = 0
        # A last arrival at the end of time drains the cases still open.
        for arrival in chain(self.arrivals(reports_per_day), [None]):
            until = _END_OF_TIME if arrival is None else arrival.at
            while pending and pending[0][0] <= until:
                _, order, case = pending[0]
                yield case, case.events[case.next]
                emitted += 1
                if emitted == count:
                    return
                case.next += 1
                if case.next < len(case.events):
                    heapq.heapreplace(pending, (case.events[case.next].time, order, case))
                else:
                    heapq.heappop(pending)
            new = self.plan(arrival, worker) if arrival is not None else None
            if new is not None:
                heapq.heappush(pending, (new.events[0].time, new.serial, new))
        raise RuntimeError(f"worker {worker}'s partitions hold {emitted} events of {YEAR}, not {count}")

    def arrivals(self, reports_per_day: float) -> Iterator[_Arrival]:
        """Every report of the year in time order: inspectors on patrol in the working hours of
        working days; cameras, the hotline and the public around the clock and more by day.
        """
        rng = random.Random(f"{self._seed}/arrivals")
        days = _days_of(YEAR)
        working_days = sum(1 for day in days if self.calendar.is_working_day(day))
        serial = 0
        in_month = 0
        for day in days:
            if day.day == 1:
                in_month = 0
            patrols = [
                (datetime.combine(day, start, self.zone), datetime.combine(day, end, self.zone))
                for start, end in self.calendar.working_hours
            ]
            working = self.calendar.is_working_day(day)
            arrivals: list[tuple[datetime, ReportSource]] = []
            for source, share in zip(self.sources, self.source_shares, strict=True):
                expected = reports_per_day * share
                if source is ReportSource.INSPECTOR:
                    # The same share of the year's reports, all of it on working days.
                    expected = expected * len(days) / working_days if working else 0.0
                for _ in range(int(expected) + (rng.random() < expected % 1)):
                    at = _on_patrol(rng, patrols) if source is ReportSource.INSPECTOR else self._any_time(rng, day)
                    arrivals.append((at, source))
            arrivals.sort(key=lambda arrival: arrival[0])
            for at, source in arrivals:
                in_month += 1
                yield _Arrival(serial, at, source, f"{day:%Y-%m}-{in_month:06d}")
                serial += 1

    def _any_time(self, rng: random.Random, day: date) -> datetime:
        """A moment of the day, likelier by day than at night."""
        hour = rng.choices(range(24), cum_weights=self._hour_cum)[0]
        local = datetime(day.year, day.month, day.day, hour, tzinfo=self.zone)
        return (local + timedelta(seconds=rng.uniform(0, 3600))).astimezone(UTC)

    def plan(self, arrival: _Arrival, worker: int | None = None) -> _Case | None:
        """Every event of one report and its case, if its partition is ``worker``'s (or for any
        worker). None otherwise, or when a deadline would fall in a year the calendar does not know
        (reports of the year's last days): such a report is left out rather than given a wrong deadline.
        """
        # Every worker works out every report's partition: the id's random bits come from a hash,
        # a fifth of the cost of seeding the report's own generator, which only its worker needs.
        report = f"{self._seed}/report/{arrival.serial}".encode()
        bits = int.from_bytes(hashlib.blake2b(report, digest_size=10).digest()) >> 6
        case_id = _uuid7(arrival.at, bits)
        # The key KafkaBus publishes with (the subject), partitioned as its producer partitions it.
        partition = self._partitioner(str(case_id).encode(), self._partitions, self._partitions)
        if worker is not None and partition % WORKERS != worker:
            return None
        plan = _CasePlan(self, arrival, random.Random(report), case_id, partition)
        try:
            plan.run()
        except CalendarDataMissing:
            return None
        return _Case(arrival.serial, partition, plan.events)

    def open_case(self, rng: random.Random, at: datetime, partition: int) -> UUID | None:
        """A recently filed case of ``partition`` open at ``at``, for a repeat report to be merged into."""
        recent = self.recent[partition]
        candidates = [filed.case_id for filed in recent if filed.filed_at <= at < filed.open_until]
        return rng.choice(candidates) if candidates else None

    def district_department(self, place: GridPlace) -> str:
        """Who a dispatcher gives a case no rule owns: its district's government, else coordination."""
        district = f"gov-{place.district_id}"
        return district if district in self.department_users else _COORDINATION_DEPARTMENT


class _CasePlan:
    """One report's events as its services would publish them, each strictly later than the last.

    Also plays dispatch's deadline timer for the case: ``step`` first reports a handling deadline
    that passed while the clock ran (once per deadline in force, with a first supervision notice).
    """

    def __init__(
        self, city: _SyntheticCity, arrival: _Arrival, rng: random.Random, case_id: UUID, partition: int
    ) -> None:
        self.city = city
        self.arrival = arrival
        self.rng = rng
        self.case_id = case_id
        self.subject = str(case_id)
        self.partition = partition
        self.events: list[Event] = []
        self.last = arrival.at - _TICK
        self.category = city.categories[rng.choices(range(len(city.categories)), cum_weights=city.category_cum)[0]]
        self.cell = rng.randrange(len(city.places))
        self.place = city.places[self.cell]
        self.inspector = city.inspectors[self.cell]
        # Dispatch's view: the department holding the case, its deadline in force, whether it runs.
        self.department = ""
        self.deadline: datetime | None = None
        self.running = False
        self.missed_reported = False
        self.supervised = False

    # --- primitives ---------------------------------------------------------------------------

    def add(self, at: datetime, source: str, payload: EventPayload) -> datetime:
        """Append an event at ``at`` (or a tick after the previous one); the time it got."""
        if at <= self.last:
            at = self.last + _TICK
        self.events.append(Event(_uuid7(at, self.rng.getrandbits(74)), source, self.subject, at, payload))
        self.last = at
        return at

    def step(self, at: datetime, source: str, payload: EventPayload) -> datetime:
        """A step once the case is with dispatch: the deadline timer runs up to it first."""
        if self.running and not self.missed_reported and self.deadline is not None:
            fired = self.deadline + timedelta(seconds=self.rng.uniform(0.1, _TIMER_INTERVAL_S))
            if fired < at:
                self.missed_reported = True
                missed = DeadlineMissed(
                    kind=DeadlineKind.HANDLING, deadline=self.deadline, department_id=self.department
                )
                self.add(fired, _DISPATCH, missed)
                if not self.supervised:
                    self.supervised = True
                    note = f"case {self.arrival.case_number} is past its handling deadline"
                    self.add(fired, _DISPATCH, SupervisionIssued(department_id=self.department, level=1, note=note))
        return self.add(at, source, payload)

    def new_deadline(self, deadline: datetime) -> None:
        """A deadline comes into force (dispatch, extension, resumption): the timer watches it afresh."""
        self.deadline = deadline
        self.missed_reported = False

    def after(self, start: datetime, limit: str, share: float) -> datetime:
        """``share`` of one of the category's time limits after ``start``, in its own time basis."""
        minutes = max(1, round(getattr(self.category, limit) * share))
        return self.city.calendar.add(start, TimeLimit(minutes, TimeBasis(self.category.time_basis)))

    def reaction(self, at: datetime) -> datetime:
        """When another service has reacted to an event published at ``at``."""
        return at + timedelta(seconds=self.rng.uniform(*_REACTION_S))

    def photos(self, count: int) -> list[str]:
        """Photo references as the photo store names them (the SHA-256 of the content)."""
        return [f"{self.rng.getrandbits(256):064x}" for _ in range(count)]

    def point(self) -> GeoPoint:
        """A random point of the cell (its representative point if a few draws all miss it)."""
        polygon = self.city.polygons[self.cell]
        west, south, east, north = self.city.bounds[self.cell]
        for _ in range(4):
            lon, lat = self.rng.uniform(west, east), self.rng.uniform(south, north)
            if shapely.contains_xy(polygon, lon, lat):
                return GeoPoint(lon=round(lon, 6), lat=round(lat, 6))
        inside = polygon.representative_point()
        return GeoPoint(lon=round(inside.x, 6), lat=round(inside.y, 6))

    def department_user(self) -> str:
        """Who acts for the department holding the case (its demo user)."""
        return self.city.department_users.get(self.department, f"dept-{self.department}")

    # --- the lifecycle ------------------------------------------------------------------------

    def run(self) -> None:
        """Intake: the report, then verification, an operator's decision or filing at once."""
        rng, profile, arrival = self.rng, self.city.profile, self.arrival
        source = arrival.source
        inspector_report = source is ReportSource.INSPECTOR
        self_handled = inspector_report and rng.random() < profile.self_handled
        received = ReportReceived(
            source=source,
            category_code=self.category.code,
            description=f"{self.category.name}，{rng.choice(_PHRASES)}",
            point=self.point(),
            place=self.place,
            reporter_id=self.inspector if inspector_report else _REPORTER[source],
            external_ref=f"12345-{arrival.case_number}" if source is ReportSource.HOTLINE else None,
            photos=self.photos(0 if source is ReportSource.HOTLINE else rng.randint(1, 3)),
            self_handled=self_handled,
        )
        at = self.add(arrival.at, _INTAKE, received)
        if not inspector_report and rng.random() < profile.repeat_report:
            into = self.city.open_case(rng, at, self.partition)
            if into is not None:
                self.add(at, _INTAKE, ReportMerged(into_case_id=into, distance_m=round(rng.uniform(2, 50), 1)))
                return
        filing_deadline = self.after(at, "filing", 1.0)
        if inspector_report:
            self.file(at, self.inspector, filing_deadline, self_handled)
        elif source is ReportSource.VIDEO:
            decided = self.after(at, "filing", rng.uniform(0.05, 0.9))
            if rng.random() < profile.video_filed:
                self.file(decided, _OPERATOR, filing_deadline, self_handled=False)
            else:
                code, reason = rng.choice(_REJECTIONS)
                self.add(decided, _INTAKE, ReportRejected(reason_code=code, reason=reason, rejected_by=_OPERATOR))
        else:
            self.add(at, _INTAKE, VerificationRequested(inspector_id=self.inspector, due_at=filing_deadline))
            # Inspectors are sometimes late to verify: the filing then misses its limit.
            verified = self.after(at, "filing", rng.uniform(0.1, 1.1))
            confirmed = rng.random() < profile.verification_confirmed
            verdict = ReportVerified(inspector_id=self.inspector, confirmed=confirmed, photos=self.photos(1))
            verified = self.add(verified, _INTAKE, verdict)
            username = self.city.inspector_users.get(self.inspector, self.inspector)
            if confirmed:
                self.file(verified, username, filing_deadline, self_handled=False)
            else:
                rejected = ReportRejected(reason_code="not_confirmed", reason="现场未发现问题", rejected_by=username)
                self.add(verified, _INTAKE, rejected)

    def file(self, at: datetime, filed_by: str, filing_deadline: datetime, self_handled: bool) -> None:
        """Intake files the case; closure closes a problem fixed on the spot, dispatch routes the rest."""
        category = self.category
        filed = CaseFiled(
            case_number=self.arrival.case_number,
            category_code=category.code,
            family=category.family,
            source=self.arrival.source,
            place=self.place,
            filed_by=filed_by,
            reported_at=self.arrival.at,
            filing_deadline=filing_deadline,
            dispatch_deadline=self.after(at, "dispatch", 1.0),
            inspector_id=self.inspector,
            self_handled=self_handled,
            urgent=category.urgent,
        )
        filed_at = self.add(at, _INTAKE, filed)
        if self_handled:
            closed = CaseClosed(closed_by=filed_by, on_time=True, handling_deadline=None, self_handled=True)
            self.add(self.reaction(filed_at), _CLOSURE, closed)
            return
        routed_at = self.reaction(filed_at)
        rule = self.city.city.route(category.code, self.place)
        if rule is None:
            queued = CaseQueuedForCoordination(reason="no routing rule names an owner (权属不清)")
            self.add(routed_at, _DISPATCH, queued)
            # The dispatcher works the queue, sometimes past the dispatch limit.
            dispatched_at = self.after(routed_at, "dispatch", self.rng.uniform(0.2, 1.5))
            self.dispatch(dispatched_at, self.city.district_department(self.place), _DISPATCHER, None, 1)
        else:
            self.dispatch(routed_at, rule.department_id, _ROUTING_ACTOR, rule.id, 1)
        self.work()
        self.city.recent[self.partition].append(_Filed(self.case_id, filed_at, self.last))

    def dispatch(self, at: datetime, department: str, by: str, rule_id: str | None, attempt: int) -> None:
        deadline = self.after(at, "handling", 1.0)
        dispatched = CaseDispatched(
            department_id=department, dispatched_by=by, handling_deadline=deadline, attempt=attempt, rule_id=rule_id
        )
        self.step(at, _DISPATCH, dispatched)
        self.department = department
        self.new_deadline(deadline)
        self.running = True

    def work(self) -> None:
        """The department's part and closure's, from the first dispatch to the end of the case."""
        rng, profile = self.rng, self.city.profile
        if rng.random() < profile.returned:
            returned = CaseReturned(
                department_id=self.department, returned_by=self.department_user(), reason=rng.choice(_RETURNS)
            )
            returned_at = self.step(self.after(self.last, "handling", rng.uniform(0.01, 0.2)), _HANDLING, returned)
            self.running = False
            district = self.city.district_department(self.place)
            department = district if district != self.department else _COORDINATION_DEPARTMENT
            self.dispatch(self.after(returned_at, "dispatch", rng.uniform(0.3, 2.0)), department, _DISPATCHER, None, 2)
        if rng.random() < profile.cancelled:
            cancelled = CaseCancelled(cancelled_by=_SHIFT_LEAD, reason="重复立案，予以作废")
            self.step(self.after(self.last, "handling", rng.uniform(0.05, 0.5)), _CLOSURE, cancelled)
            self.running = False
            return
        accepted = CaseAccepted(department_id=self.department, accepted_by=self.department_user())
        self.step(self.after(self.last, "handling", rng.uniform(0.005, 0.05)), _HANDLING, accepted)
        if rng.random() < profile.suspended:
            self.suspension()
        if rng.random() < profile.extension_requested:
            self.extension()
        assert self.deadline is not None
        if rng.random() < profile.late:
            handled_at = self.after(self.deadline, "handling", rng.uniform(0.05, 0.5))
        else:
            handled_at = self.after(self.last, "handling", rng.uniform(0.05, 0.6))
        first_check = True
        while True:
            handled = CaseHandled(
                department_id=self.department,
                handled_by=self.department_user(),
                result=rng.choice(_RESULTS),
                photos=self.photos(2),
            )
            handled_at = self.step(handled_at, _HANDLING, handled)
            check_deadline = self.after(handled_at, "check", 1.0)
            requested = CheckRequested(inspector_id=self.inspector, check_deadline=check_deadline)
            requested_at = self.step(self.reaction(handled_at), _CLOSURE, requested)
            checked_at = self.check_time(requested_at)
            if first_check and rng.random() < profile.check_failed:
                failed = CheckFailed(inspector_id=self.inspector, reason=rng.choice(_FAILURES), photos=self.photos(1))
                failed_at = self.step(checked_at, _CLOSURE, failed)
                handled_at = self.after(failed_at, "handling", rng.uniform(0.05, 0.4))
                first_check = False
                continue
            passed_at = self.step(checked_at, _CLOSURE, CheckPassed(inspector_id=self.inspector, photos=self.photos(1)))
            # Closure closes in the check's own transaction: on time when no later than the deadline in force.
            closed_at = passed_at + _TICK
            closed = CaseClosed(
                closed_by=self.city.inspector_users.get(self.inspector, self.inspector),
                on_time=self.deadline is None or closed_at <= self.deadline,
                handling_deadline=self.deadline,
            )
            self.add(closed_at, _CLOSURE, closed)
            self.running = False
            return

    def check_time(self, requested_at: datetime) -> datetime:
        """When the inspector answers a check task: mostly before the handling deadline."""
        checked_at = self.after(requested_at, "check", self.rng.uniform(0.1, 1.05))
        assert self.deadline is not None
        if checked_at > self.deadline > requested_at and self.rng.random() >= _UNHURRIED_CHECKS:
            return requested_at + (self.deadline - requested_at) * self.rng.uniform(0.2, 0.95)
        return checked_at

    def suspension(self) -> None:
        """The shift lead suspends the case for days; resuming moves the deadline by the pause."""
        suspended = CaseSuspended(suspended_by=_SHIFT_LEAD, reason="需协调其他部门，暂缓办理")
        suspended_at = self.step(self.after(self.last, "handling", self.rng.uniform(0.1, 0.4)), _DISPATCH, suspended)
        self.running = False
        resumed_at = suspended_at + timedelta(days=self.rng.uniform(1, 7))
        assert self.deadline is not None
        basis = TimeBasis(self.category.time_basis)
        deadline = self.city.calendar.shift(self.deadline, suspended_at, resumed_at, basis)
        self.add(resumed_at, _DISPATCH, CaseResumed(resumed_by=_SHIFT_LEAD, handling_deadline=deadline))
        self.new_deadline(deadline)
        self.running = True

    def extension(self) -> None:
        """The department asks for more time; the shift lead decides before the deadline."""
        rng = self.rng
        assert self.deadline is not None
        requested_deadline = self.after(self.deadline, "handling", rng.uniform(0.3, 1.0))
        asked = ExtensionRequested(
            department_id=self.department,
            requested_by=self.department_user(),
            requested_deadline=requested_deadline,
            reason="需采购配件，申请延期",
        )
        asked_at = self.step(self.last + (self.deadline - self.last) * rng.uniform(0.2, 0.7), _HANDLING, asked)
        decided_at = asked_at + (self.deadline - asked_at) * rng.uniform(0.1, 0.9)
        if rng.random() < self.city.profile.extension_approved:
            approved = ExtensionApproved(approved_by=_SHIFT_LEAD, handling_deadline=requested_deadline)
            self.step(decided_at, _DISPATCH, approved)
            self.new_deadline(requested_deadline)
        else:
            self.step(decided_at, _DISPATCH, ExtensionDenied(denied_by=_SHIFT_LEAD, reason="理由不充分"))


def _uuid7(at: datetime, rand: int) -> UUID:
    """A UUIDv7 as ``shared.core.ids.new_id`` makes them for the instant ``at``, from 74 random bits."""
    millis = (at - _EPOCH) // _MILLISECOND
    return UUID(int=(millis << 80) | (0x7 << 76) | ((rand >> 62) << 64) | (0b10 << 62) | (rand & _LOW_62))


def _on_patrol(rng: random.Random, periods: list[tuple[datetime, datetime]]) -> datetime:
    """A moment of the day's working periods, uniformly."""
    offset = rng.uniform(0, sum((end - start).total_seconds() for start, end in periods))
    for start, end in periods:
        length = (end - start).total_seconds()
        if offset < length:
            return (start + timedelta(seconds=offset)).astimezone(UTC)
        offset -= length
    return periods[-1][1].astimezone(UTC)


def _target_day(events: int) -> float:
    """The day of the year the log's last event should fall on.

    How many events a worker's partitions hold by a given day varies from seed to seed, by about
    3/sqrt(n) of their n events (the reports' own lengths, and the day-to-day count of reports when
    there are few a day). A small log aims earlier, five such spreads short of the year's end, so
    that a worker never runs out of year before its share is published.
    """
    spread = 3 / math.sqrt(max(1, events // WORKERS))
    return min(_TARGET_DAY, len(_days_of(YEAR)) / (1 + 5 * spread))


def _days_of(year: int) -> list[date]:
    first = date(year, 1, 1)
    return [first + timedelta(days=i) for i in range((date(year + 1, 1, 1) - first).days)]
