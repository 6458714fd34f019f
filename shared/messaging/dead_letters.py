"""Dead letters (死信) seen and sent again: list, inspect and redrive what consumers gave up on.

A consumer that cannot apply a record (not an event of the catalogue, or a handler that keeps
failing) sends it to the dead-letter topic with the reason and moves on (``consumer.dead_letter``).
This module reads that topic through the bus, on either backend.

- **Redrive** publishes the original record again on its original topic: its key (so its case's
  partition), its value and its headers without the dead letter's, marked for the consumer that
  failed (``consumer.REDRIVE_FOR``). Only that consumer reads it, and its inbox applies it once
  however often it is sent (``consumer.inbox_key``); a tracked consumer absorbs it as any copy of
  an event at a second offset.
- **What was redriven** is a marker record on the dead-letter topic itself, after the dead letter.
  The topic is the one place every process of a deployment shares: in production each service has
  its own database, and the process answering a shift lead may not run the consumer that failed.
  It also keeps the history in order: a dead letter, its redrive, then the dead letter of the
  redriven record if that fails again. The record is published before its marker, so a crash
  between the two leaves the letter pending, and sending it again is harmless.
- **Cheap to watch**: the topic is read once, then only past the remembered positions and only
  when its end offsets moved; the pending counts (and their gauge) come from that view.
"""

from __future__ import annotations

import asyncio
import base64
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal
from uuid import UUID

from shared.core.errors import DependencyMissing, DomainError, NotFound
from shared.core.ids import new_id
from shared.core.metrics import DEAD_LETTERS_PENDING
from shared.messaging.bus import Bus, Message, PublishFailed, Record
from shared.messaging.bus.base import Headers, TopicPartition
from shared.messaging.consumer import (
    DLQ_CONSUMER,
    DLQ_ORIGIN,
    DLQ_REASON,
    REDRIVE_FOR,
    REDRIVE_OF,
    dead_letter_id,
)

REDRIVEN = "dlq_redriven"
"""The header of a marker record: the id of the dead letter that was sent again."""

# What a dead letter or a redrive added to the original record's headers, taken off again.
_ADDED_HEADERS = frozenset({DLQ_REASON, DLQ_CONSUMER, DLQ_ORIGIN, REDRIVE_FOR, REDRIVE_OF})
_REDRIVE_CHUNK = 500
_FETCH = 500


class UnknownDeadLetter(NotFound):
    """No dead letter has this id on the dead-letter topic."""

    code = "dead_letter_not_found"


class AlreadyRedriven(DomainError):
    """The dead letter was sent again before."""

    status = 409
    code = "dead_letter_already_redriven"


class NotRedrivable(DomainError):
    """The dead letter does not say which consumer failed on which record, so it has nowhere to go."""

    status = 409
    code = "dead_letter_not_redrivable"


class DeadLettersUnavailable(DependencyMissing):
    """The bus could not be read or written (it is down, or a topic is missing)."""

    code = "dependency_unavailable"


@dataclass(frozen=True, slots=True)
class Origin:
    """Where the record of a dead letter was read."""

    topic: str
    partition: int
    offset: int


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A dead letter as listed: where it lies, which consumer gave up on which record, why, when.

    ``event_type``, ``event_id`` and ``subject`` are the record's CloudEvents headers, when it has
    them; ``redrive_of`` is the dead letter whose redriven record failed again, if it is one.
    """

    id: UUID
    partition: int
    offset: int
    consumer: str | None
    reason: str
    origin: Origin | None
    event_type: str | None
    event_id: str | None
    subject: str | None
    dead_lettered_at: datetime
    redrive_of: UUID | None

    @property
    def redrivable(self) -> bool:
        """Whether it says which consumer to send its record again to, and on which topic."""
        return self.consumer is not None and self.origin is not None


@dataclass(frozen=True, slots=True)
class Inspection:
    """One dead letter with its record as it lies on the dead-letter topic."""

    letter: DeadLetter
    redriven_at: datetime | None
    key: bytes | None
    value: bytes
    headers: Headers


class DeadLetters:
    """The dead-letter topic as this process last read it, and what a shift lead does with it.

    One instance serves a process: its reads and redrives take turns.
    """

    def __init__(self, bus: Bus, topic: str, *, read_timeout_s: float = 60.0) -> None:
        self.bus = bus
        self.topic = topic
        self.read_timeout_s = read_timeout_s
        self._lock = asyncio.Lock()
        self._read_up_to: dict[TopicPartition, int] = {}
        self._letters: dict[UUID, DeadLetter] = {}
        self._redriven: dict[UUID, datetime] = {}
        self._gauged: set[str] = set()

    async def refresh(self) -> None:
        """Read what the topic gained since the last read: nothing but its end offsets when it
        gained nothing.
        """
        async with self._lock:
            await self._refresh()

    async def pending(self, consumer: str | None = None) -> list[DeadLetter]:
        """The dead letters not redriven yet (of ``consumer`` only, when given), oldest first."""
        await self.refresh()
        return self._pending(consumer)

    def pending_counts(self) -> dict[str, int]:
        """How many dead letters each consumer has pending, as of the last read (no bus call)."""
        return dict(Counter(letter.consumer or "unknown" for letter in self._pending(None)))

    async def inspect(self, letter_id: UUID) -> Inspection:
        """One dead letter, pending or redriven, with its record's key, value and headers."""
        async with self._lock:
            await self._refresh()
            letter = self._letter(letter_id)
            record = (await self._records_of([letter]))[letter.partition, letter.offset]
            return Inspection(letter, self._redriven.get(letter.id), record.key, record.value, record.headers)

    async def redrive(self, letter_id: UUID) -> DeadLetter:
        """Send one pending dead letter's record again, to the consumer that gave up on it."""
        async with self._lock:
            await self._refresh()
            letter = self._letter(letter_id)
            if letter.id in self._redriven:
                raise AlreadyRedriven(
                    f"dead letter {letter.id} was redriven already", {"redriven_at": self._redriven[letter.id]}
                )
            if not letter.redrivable:
                raise NotRedrivable(f"dead letter {letter.id} does not say which consumer failed on which record")
            await self._redrive([letter])
            return letter

    async def redrive_all(self, consumer: str | None = None) -> list[DeadLetter]:
        """Send every pending dead letter (of ``consumer`` only, when given) again, oldest first;
        the ones that have nowhere to go stay pending.
        """
        async with self._lock:
            await self._refresh()
            letters = [letter for letter in self._pending(consumer) if letter.redrivable]
            for start in range(0, len(letters), _REDRIVE_CHUNK):
                await self._redrive(letters[start : start + _REDRIVE_CHUNK])
            return letters

    def _pending(self, consumer: str | None) -> list[DeadLetter]:
        letters = [
            letter
            for letter in self._letters.values()
            if letter.id not in self._redriven and (consumer is None or letter.consumer == consumer)
        ]
        return sorted(letters, key=lambda letter: (letter.dead_lettered_at, letter.partition, letter.offset))

    def _letter(self, letter_id: UUID) -> DeadLetter:
        letter = self._letters.get(letter_id)
        if letter is None:
            raise UnknownDeadLetter(f"there is no dead letter {letter_id}")
        return letter

    async def _refresh(self) -> None:
        with self._bus_trouble("read"):
            ends = await self.bus.end_offsets(self.topic)
            if any(end < self._read_up_to.get(partition, 0) for partition, end in ends.items()):
                # The topic was deleted and made again: what was read of the old one is gone.
                self._read_up_to.clear()
                self._letters.clear()
                self._redriven.clear()
            start = {partition: self._read_up_to.get(partition, 0) for partition in ends}
            await self._read(start, ends, self._take)
            self._read_up_to.update(ends)
        self._publish_counts()

    def _take(self, record: Record) -> None:
        redriven = record.header(REDRIVEN)
        if redriven is not None:
            letter_id = _uuid(redriven)
            if letter_id is not None:
                self._redriven.setdefault(letter_id, _time(record))
            return
        letter = _dead_letter(record)
        # The relay may publish a dead letter twice (it died before marking it sent): one letter.
        self._letters.setdefault(letter.id, letter)

    async def _records_of(self, letters: Sequence[DeadLetter]) -> dict[tuple[int, int], Record]:
        """The records of ``letters``, read again from the topic (only their summaries are kept)."""
        wanted = {(letter.partition, letter.offset) for letter in letters}
        start, stop = dict(self._read_up_to), dict(self._read_up_to)
        for partition in {partition for partition, _ in wanted}:
            offsets = [offset for p, offset in wanted if p == partition]
            start[self.topic, partition], stop[self.topic, partition] = min(offsets), max(offsets) + 1
        found: dict[tuple[int, int], Record] = {}

        def take(record: Record) -> None:
            if (record.partition, record.offset) in wanted:
                found[record.partition, record.offset] = record

        with self._bus_trouble("read"):
            await self._read(start, stop, take)
        missing = sorted(wanted - found.keys())
        if missing:
            partition, offset = missing[0]
            raise UnknownDeadLetter(f"the dead letter at {self.topic}/{partition}/{offset} is no longer on the topic")
        return found

    async def _read(
        self, start: Mapping[TopicPartition, int], stop: Mapping[TopicPartition, int], take: Callable[[Record], None]
    ) -> None:
        """Hand ``take`` every record of each partition from ``start`` up to ``stop``, in order."""
        reached = {partition: start[partition] for partition, end in stop.items() if start[partition] < end}
        if not reached:
            return

        async def start_at(partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
            return {partition: start.get(partition, 0) for partition in partitions}

        # A group of its own, read from where this process stopped: nobody else's offsets move,
        # and readers in several processes do not share out the partitions between them.
        subscription = await self.bus.subscribe(
            f"citycase.dead-letters.{new_id().hex}", [self.topic], start_at=start_at
        )
        try:
            async with asyncio.timeout(self.read_timeout_s):
                while any(reached[partition] < stop[partition] for partition in reached):
                    for record in await subscription.fetch(_FETCH, timeout_s=0.5):
                        partition = (record.topic, record.partition)
                        if partition in reached and start[partition] <= record.offset < stop[partition]:
                            take(record)
                            # Past any records retention removed, too.
                            reached[partition] = record.offset + 1
        finally:
            await subscription.close()

    async def _redrive(self, letters: Sequence[DeadLetter]) -> None:
        records = await self._records_of(letters)
        refused: PublishFailed | None = None
        sent = list(letters)
        with self._bus_trouble("send records again from"):
            try:
                await self.bus.publish(
                    [_sent_again(letter, records[letter.partition, letter.offset]) for letter in letters]
                )
            except PublishFailed as exc:
                # The stored ones went out: they are marked, the others stay pending.
                refused = exc
                sent = [letter for n, letter in enumerate(letters) if n not in exc.failures]
            if sent:
                await self.bus.publish(
                    [self._marker(letter, records[letter.partition, letter.offset]) for letter in sent]
                )
            await self._refresh()
        if refused is not None:
            raise DeadLettersUnavailable(
                f"{len(refused.failures)} of {len(letters)} records could not be sent again and stay pending: {refused}"
            )

    def _marker(self, letter: DeadLetter, record: Record) -> Message:
        """The record saying that ``letter`` was redriven, on the dead-letter topic after it."""
        return Message(self.topic, record.key, b"", ((REDRIVEN, str(letter.id).encode()),))

    def _publish_counts(self) -> None:
        counts = self.pending_counts()
        for consumer in self._gauged | counts.keys():
            DEAD_LETTERS_PENDING.labels(consumer).set(counts.get(consumer, 0))
        self._gauged |= counts.keys()

    @contextmanager
    def _bus_trouble(self, doing: str) -> Iterator[None]:
        """Any failure of the bus as ``DeadLettersUnavailable`` (a 503), saying what was being done."""
        try:
            yield
        except DomainError:
            raise
        except Exception as exc:
            raise DeadLettersUnavailable(
                f"could not {doing} the dead-letter topic {self.topic!r}: {type(exc).__name__}: {exc}"[:500]
            ) from exc


def readable(data: bytes) -> tuple[str, Literal["utf-8", "base64"]]:
    """Bytes for a person to read: the text and ``"utf-8"`` when they are UTF-8, else base64."""
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return base64.b64encode(data).decode("ascii"), "base64"


def _sent_again(letter: DeadLetter, record: Record) -> Message:
    """The original record of ``letter``, on its topic again, for the consumer that failed on it."""
    if letter.origin is None or letter.consumer is None:
        raise NotRedrivable(f"dead letter {letter.id} does not say which consumer failed on which record")
    headers = [(name, value) for name, value in record.headers if name not in _ADDED_HEADERS]
    headers += [(REDRIVE_FOR, letter.consumer.encode()), (REDRIVE_OF, str(letter.id).encode())]
    return Message(letter.origin.topic, record.key, record.value, tuple(headers))


def _dead_letter(record: Record) -> DeadLetter:
    consumer = _text(record.header(DLQ_CONSUMER))
    origin = _text(record.header(DLQ_ORIGIN))
    return DeadLetter(
        # As the consumer named it; a record it did not write is named by where it lies.
        id=dead_letter_id(consumer or "", origin or f"{record.topic}/{record.partition}/{record.offset}"),
        partition=record.partition,
        offset=record.offset,
        consumer=consumer,
        reason=_text(record.header(DLQ_REASON)) or "(no reason given)",
        origin=_origin(origin),
        event_type=_text(record.header("ce_type")),
        event_id=_text(record.header("ce_id")),
        subject=_text(record.header("ce_subject")),
        dead_lettered_at=_time(record),
        redrive_of=_uuid(record.header(REDRIVE_OF)),
    )


def _origin(text: str | None) -> Origin | None:
    """``topic/partition/offset`` (a Kafka topic name has no ``/``), if that is what ``text`` is."""
    parts = (text or "").rsplit("/", 2)
    if len(parts) != 3 or not parts[0] or not parts[1].isdigit() or not parts[2].isdigit():
        return None
    return Origin(parts[0], int(parts[1]), int(parts[2]))


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode("utf-8", errors="replace")


def _uuid(value: bytes | None) -> UUID | None:
    try:
        return None if value is None else UUID(value.decode("ascii"))
    except ValueError:  # a header someone else wrote
        return None


def _time(record: Record) -> datetime:
    """When the record was stored: the dead letter's time is when it reached the topic."""
    return datetime.fromtimestamp(record.timestamp_ms / 1000, UTC)
