"""What every bus backend offers: keyed, partitioned, durable topics with consumer groups.

The shapes follow Kafka's so that the embedded log behaves the same way: a message's key picks
its partition (murmur2, like Kafka's default partitioner), order is kept within a partition, and
a consumer group commits the next offset to read per partition.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

Headers = tuple[tuple[str, bytes], ...]


@dataclass(frozen=True, slots=True)
class Message:
    """A message to publish."""

    topic: str
    key: bytes | None
    value: bytes
    headers: Headers = ()


@dataclass(frozen=True, slots=True)
class Record:
    """A message read back from a partition, with its position."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: Headers = ()
    timestamp_ms: int = 0

    def header(self, name: str) -> bytes | None:
        """The first header called ``name``, if any."""
        # A plain loop: every consumer asks every record, and a generator costs twice as much.
        for key, value in self.headers:
            if key == name:
                return value
        return None


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """A topic to make sure of at start-up."""

    name: str
    partitions: int
    config: Mapping[str, str] = field(default_factory=dict)


TopicPartition = tuple[str, int]


class Unpublishable(Exception):
    """A message the bus will never store as it is: larger than its topic accepts, or its topic
    missing or forbidden to this client. Sending it again cannot help, unlike a broker that is
    down or slow; an operator must change the message or the topic.
    """


class HeldBehind(Exception):
    """A message not sent because an earlier message of the same topic and key in the same
    publish was not stored: sending it would put a case's events out of order.
    """


class PublishFailed(Exception):
    """Some messages of a publish were not stored; every other message of it was.

    ``failures`` maps the position of each message not stored to why: ``Unpublishable`` when the
    message itself is refused, anything else (a timeout, ``HeldBehind``, a broker error) when
    sending it again later may work.
    """

    def __init__(self, failures: Mapping[int, Exception]) -> None:
        self.failures = dict(failures)
        first = min(self.failures)
        super().__init__(f"{len(self.failures)} message(s) not stored; the first: {self.failures[first]!r}")


# Where a member starts reading the partitions it was just assigned, for consumers that keep their
# positions in their own database instead of the group's committed offsets.
StartPositions = Callable[[Sequence[TopicPartition]], Awaitable[Mapping[TopicPartition, int]]]


class Subscription(Protocol):
    """One member of a consumer group, reading the partitions it was assigned."""

    async def fetch(self, max_records: int, timeout_s: float) -> list[Record]:
        """Up to ``max_records`` new records, in offset order within each partition."""
        ...

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Record, for the group, the next offset to read in each partition."""
        ...

    async def seek(self, partition: TopicPartition, offset: int) -> None:
        """Read ``partition`` from ``offset`` on (records already fetched past it are dropped)."""
        ...

    async def close(self) -> None:
        """Leave the group."""
        ...


class Bus(Protocol):
    """A backend: publish durably, subscribe as a group member, and say whether it is reachable."""

    async def start(self) -> None:
        """Connect; must be called before anything else."""
        ...

    async def close(self) -> None:
        """Flush and disconnect."""
        ...

    async def ensure_topics(self, topics: Sequence[TopicSpec]) -> None:
        """Create the topics that do not exist yet; existing ones are left as they are."""
        ...

    async def publish(self, messages: Sequence[Message]) -> None:
        """Publish in order and return once every message is durably stored.

        Raise ``PublishFailed`` when some were stored and some not, naming those not stored; a
        message after a failed one with the same topic and key fails too, so a case's events never
        overtake each other. Any other error: nothing is known to be stored.
        """
        ...

    async def subscribe(
        self, group: str, topics: Sequence[str], *, start_at: StartPositions | None = None
    ) -> Subscription:
        """Join ``group`` reading ``topics`` from the group's committed offsets (else the start),
        or from the positions ``start_at`` gives for each partition this member is assigned.
        """
        ...

    async def end_offsets(self, topic: str) -> dict[TopicPartition, int]:
        """The offset the next record of each partition of ``topic`` will get."""
        ...

    async def committed_offsets(self, group: str, topics: Sequence[str]) -> dict[TopicPartition, int]:
        """The next offset ``group`` committed in each partition of ``topics`` where it committed one."""
        ...

    async def ping(self) -> None:
        """Raise when the backend cannot be reached."""
        ...
