"""The embedded durable event log: Kafka's model (topics, keyed partitions, offsets, consumer
groups) in one SQLite file, for running everything in one process with no broker.

Messages are committed with ``synchronous=FULL`` before ``publish`` returns, so a crash loses
nothing that was acknowledged. A group has one member in this backend: the one process owns
every partition, which is what the embedded mode runs.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import fcntl
import itertools
import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

import aiosqlite
from aiokafka.partitioner import murmur2

from shared.db import inline_sqlite
from shared.messaging.bus.base import (
    Headers,
    HeldBehind,
    Message,
    PublishFailed,
    Record,
    StartPositions,
    TopicPartition,
    TopicSpec,
    Unpublishable,
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS topics (
    name TEXT PRIMARY KEY,
    partitions INTEGER NOT NULL,
    max_message_bytes INTEGER
);
CREATE TABLE IF NOT EXISTS records (
    topic TEXT NOT NULL,
    partition INTEGER NOT NULL,
    "offset" INTEGER NOT NULL,
    key BLOB,
    value BLOB NOT NULL,
    headers TEXT NOT NULL,
    timestamp_ms INTEGER NOT NULL,
    PRIMARY KEY (topic, partition, "offset")
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS group_offsets (
    group_id TEXT NOT NULL,
    topic TEXT NOT NULL,
    partition INTEGER NOT NULL,
    next_offset INTEGER NOT NULL,
    PRIMARY KEY (group_id, topic, partition)
) WITHOUT ROWID;
"""

# Kafka's default ``message.max.bytes``: the largest message a topic takes unless its
# ``max.message.bytes`` says otherwise.
DEFAULT_MAX_MESSAGE_BYTES = 1048588


class UnknownTopic(Unpublishable, LookupError):
    """Publishing or subscribing to a topic that was never created (as Kafka with auto-create off)."""


class MessageTooLarge(Unpublishable):
    """A message larger than its topic's ``max.message.bytes`` (Kafka's MESSAGE_TOO_LARGE)."""


def partition_for(key: bytes | None, partitions: int, fallback: int) -> int:
    """Kafka's default partitioner for keyed messages (murmur2), so both backends agree."""
    if key is None:
        return fallback % partitions
    return int(murmur2(key) & 0x7FFFFFFF) % partitions


class EmbeddedSubscription:
    """The single member of a consumer group on the embedded log."""

    def __init__(self, log: EmbeddedLog, group: str, positions: dict[TopicPartition, int]) -> None:
        self._log = log
        self._group = group
        self._positions = positions

    async def fetch(self, max_records: int, timeout_s: float) -> list[Record]:
        """New records past this member's position, waiting up to ``timeout_s`` for some."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            appends = self._log.appends
            records = await self._log.read(self._positions, max_records)
            if records:
                for record in records:
                    self._positions[(record.topic, record.partition)] = record.offset + 1
                return records
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                return []
            await self._log.wait_for_append(appends, remaining)

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Durably record the group's next offsets."""
        await self._log.commit(self._group, offsets)

    async def seek(self, partition: TopicPartition, offset: int) -> None:
        """Read ``partition`` from ``offset`` on."""
        self._positions[partition] = offset

    async def close(self) -> None:
        """Leave the group, letting another member join it."""
        self._log.leave(self._group)


class EmbeddedLog:
    """A durable, partitioned, append-only log in a SQLite file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()
        self._appended = asyncio.Condition()
        self._partitions: dict[str, int] = {}
        self._max_message_bytes: dict[str, int] = {}
        self._next_offsets: dict[TopicPartition, int] = {}
        self._round_robin = itertools.count()
        self._members: set[str] = set()
        self._lock_file: IO[str] | None = None
        self._read_rotation = itertools.count()
        self.appends = 0

    async def start(self) -> None:
        """Open (and create) the log file; refuse if another process has it open."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock = _lock_exclusively(self.path.with_suffix(".lock"))
        self._lock_file = lock
        db = await inline_sqlite.connect(self.path, isolation_level=None)
        await db.execute("PRAGMA journal_mode=WAL")
        await db.execute("PRAGMA synchronous=FULL")
        await db.executescript(_SCHEMA)
        async with db.execute("SELECT name FROM pragma_table_info('topics')") as cursor:
            if "max_message_bytes" not in {name async for (name,) in cursor}:  # a log written before the limit
                await db.execute("ALTER TABLE topics ADD COLUMN max_message_bytes INTEGER")
        async with db.execute("SELECT name, partitions, max_message_bytes FROM topics") as cursor:
            async for name, count, limit in cursor:
                self._partitions[name] = count
                self._max_message_bytes[name] = limit or DEFAULT_MAX_MESSAGE_BYTES
        self._db = db
        await self._load_offsets()

    async def _load_offsets(self) -> None:
        query = 'SELECT topic, partition, MAX("offset") FROM records GROUP BY topic, partition'
        async with self.db.execute(query) as cursor:
            self._next_offsets = {(topic, partition): last + 1 async for topic, partition, last in cursor}

    async def close(self) -> None:
        """Close the file."""
        if self._db is not None:
            await self._db.close()
            self._db = None
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    @property
    def db(self) -> aiosqlite.Connection:
        """The open connection."""
        if self._db is None:
            raise RuntimeError("the embedded log is not started")
        return self._db

    async def ensure_topics(self, topics: Sequence[TopicSpec]) -> None:
        """Create missing topics, with the ``max.message.bytes`` of their config (Kafka's default
        otherwise); an existing topic keeps its partition count and its limit.
        """
        async with self._lock:
            for topic in topics:
                limit = int(topic.config.get("max.message.bytes", DEFAULT_MAX_MESSAGE_BYTES))
                await self.db.execute(
                    "INSERT INTO topics (name, partitions, max_message_bytes) VALUES (?, ?, ?)"
                    " ON CONFLICT (name) DO NOTHING",
                    (topic.name, topic.partitions, limit),
                )
                self._partitions.setdefault(topic.name, topic.partitions)
                self._max_message_bytes.setdefault(topic.name, limit)

    async def publish(self, messages: Sequence[Message]) -> None:
        """Append in order, in one durable transaction, every message its topic takes; raise
        ``PublishFailed`` after storing them when some were refused (see ``Bus.publish``).
        """
        if not messages:
            return
        failures: dict[int, Exception] = {}
        refused: set[tuple[str, bytes]] = set()
        async with self._lock:
            rows = []
            next_offsets = dict(self._next_offsets)
            now_ms = int(time.time() * 1000)
            for n, message in enumerate(messages):
                failure: Exception | None = self._refusal(message)
                if failure is None and message.key is not None and (message.topic, message.key) in refused:
                    failure = HeldBehind(f"an earlier message of key {message.key!r} was refused")
                if failure is not None:
                    failures[n] = failure
                    if message.key is not None:
                        refused.add((message.topic, message.key))
                    continue
                partition = partition_for(message.key, self._partitions[message.topic], next(self._round_robin))
                position = (message.topic, partition)
                offset = next_offsets.get(position, 0)
                next_offsets[position] = offset + 1
                rows.append(
                    (message.topic, partition, offset, message.key, message.value, _dump(message.headers), now_ms)
                )
            if rows:
                await self._append(rows)
            self._next_offsets = next_offsets
        if rows:
            async with self._appended:
                self.appends += 1
                self._appended.notify_all()
        if failures:
            raise PublishFailed(failures)

    def _refusal(self, message: Message) -> Unpublishable | None:
        """Why the log will never take ``message``, if it will not: its topic is unknown, or it
        is larger than the topic takes (counted as Kafka does without the batch's overhead: key,
        value and headers).
        """
        if message.topic not in self._partitions:
            return UnknownTopic(f"topic {message.topic!r} does not exist")
        size = len(message.key or b"") + len(message.value) + sum(len(k.encode()) + len(v) for k, v in message.headers)
        limit = self._max_message_bytes[message.topic]
        if size > limit:
            return MessageTooLarge(f"{size} bytes, too large for topic {message.topic!r} (max.message.bytes {limit})")
        return None

    async def _append(self, rows: list[tuple[str, int, int, bytes | None, bytes, str, int]]) -> None:
        """Insert ``rows`` in one durable transaction (the caller holds the lock)."""
        await self.db.execute("BEGIN IMMEDIATE")
        try:
            await self.db.executemany(
                'INSERT INTO records (topic, partition, "offset", key, value, headers, timestamp_ms)'
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            await self.db.execute("COMMIT")
        except BaseException:
            # A cancellation can arrive while a statement waits for the write lock, or (with the
            # COMMIT done) on the way back: roll back only what is still open, and re-read the
            # offsets from the file either way.
            if self.db.in_transaction:
                await self.db.execute("ROLLBACK")
            await self._load_offsets()
            raise

    async def subscribe(
        self, group: str, topics: Sequence[str], *, start_at: StartPositions | None = None
    ) -> EmbeddedSubscription:
        """Join ``group`` as its only member (so it owns every partition), from the group's
        committed offsets or from where ``start_at`` says.
        """
        unknown = [t for t in topics if t not in self._partitions]
        if unknown:
            raise UnknownTopic(", ".join(unknown))
        if group in self._members:
            raise RuntimeError(f"consumer group {group!r} already has its one embedded member")
        positions = {(t, p): 0 for t in topics for p in range(self._partitions[t])}
        positions.update(await self.committed_offsets(group, topics))
        if start_at is not None:
            positions.update(await start_at(list(positions)))
        self._members.add(group)
        return EmbeddedSubscription(self, group, positions)

    async def end_offsets(self, topic: str) -> dict[TopicPartition, int]:
        """The next offset of each partition of ``topic``."""
        if topic not in self._partitions:
            raise UnknownTopic(topic)
        return {(topic, p): self._next_offsets.get((topic, p), 0) for p in range(self._partitions[topic])}

    async def committed_offsets(self, group: str, topics: Sequence[str]) -> dict[TopicPartition, int]:
        """The next offset ``group`` committed in each partition of ``topics`` where it committed one."""
        async with (
            self._lock,
            self.db.execute(
                f"SELECT topic, partition, next_offset FROM group_offsets WHERE group_id = ?"
                f" AND topic IN ({','.join('?' * len(topics))})",
                (group, *topics),
            ) as cursor,
        ):
            return {(topic, partition): next_offset async for topic, partition, next_offset in cursor}

    def leave(self, group: str) -> None:
        """Forget the member of ``group``."""
        self._members.discard(group)

    async def read(self, positions: Mapping[TopicPartition, int], max_records: int) -> list[Record]:
        """Records at or after each position, partition by partition, at most ``max_records``."""
        records: list[Record] = []
        # Start at a different partition each time so a backlog in one cannot starve the others.
        ordered = list(positions.items())
        start = next(self._read_rotation) % max(len(ordered), 1)
        async with self._lock:
            for (topic, partition), position in ordered[start:] + ordered[:start]:
                if len(records) >= max_records:
                    break
                if self._next_offsets.get((topic, partition), 0) <= position:
                    continue
                async with self.db.execute(
                    'SELECT "offset", key, value, headers, timestamp_ms FROM records'
                    ' WHERE topic = ? AND partition = ? AND "offset" >= ? ORDER BY "offset" LIMIT ?',
                    (topic, partition, position, max_records - len(records)),
                ) as cursor:
                    async for offset, key, value, headers, timestamp_ms in cursor:
                        records.append(Record(topic, partition, offset, key, value, _load(headers), timestamp_ms))
        return records

    async def wait_for_append(self, seen: int, timeout_s: float) -> None:
        """Return once anything was appended after the ``seen`` count of appends, or after ``timeout_s``."""
        # ``asyncio.timeout``, not ``asyncio.wait_for``: on Python 3.11 the latter waits in a task
        # of its own, and a cancellation arriving as its timeout fires can be lost, leaving a
        # consumer that was told to stop waiting for appends forever (a hung shutdown).
        async with self._appended:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout_s):
                    await self._appended.wait_for(lambda: self.appends != seen)

    async def commit(self, group: str, offsets: Mapping[TopicPartition, int]) -> None:
        """Durably store a group's next offsets."""
        async with self._lock:
            await self.db.executemany(
                "INSERT INTO group_offsets (group_id, topic, partition, next_offset) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (group_id, topic, partition) DO UPDATE SET next_offset = excluded.next_offset",
                [(group, topic, partition, offset) for (topic, partition), offset in offsets.items()],
            )

    async def ping(self) -> None:
        """Raise unless the log file answers."""
        async with self._lock:
            await self.db.execute("SELECT 1")


def _lock_exclusively(path: Path) -> IO[str]:
    """Hold a lock file for the log's lifetime: offsets live in memory, so two processes
    appending to one file would collide.
    """
    handle = path.open("w")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise RuntimeError(f"{path} is held by another process (one process per embedded log)") from None
    return handle


def _dump(headers: Headers) -> str:
    return json.dumps([[name, base64.b64encode(value).decode("ascii")] for name, value in headers])


def _load(stored: str) -> Headers:
    return tuple((name, base64.b64decode(value)) for name, value in json.loads(stored))
