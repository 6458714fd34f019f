"""The Apache Kafka backend (aiokafka): idempotent producer with acks=all, consumer groups with
manual offset commits.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Mapping, Sequence
from operator import itemgetter
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import (
    CommitFailedError,
    IllegalStateError,
    InvalidTopicError,
    KafkaError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    TopicAuthorizationFailedError,
)

from shared.messaging.bus.base import (
    HeldBehind,
    Message,
    PublishFailed,
    Record,
    StartPositions,
    TopicSpec,
    Unpublishable,
)
from shared.messaging.bus.base import TopicPartition as Position

log = logging.getLogger(__name__)

_TOPIC_ALREADY_EXISTS = 36
# How much of each partition one fetch brings (aiokafka's default, about 2,000 events): a
# consumer's batch is at most what its partitions' fetches hold.
DEFAULT_FETCH_BYTES_PER_PARTITION = 1024 * 1024
_CLOSE_TIMEOUT_S = 10.0

# Refusals of the record itself, which sending it again cannot cure, and what each means. aiokafka
# raises the first one before sending, too, for a record over the producer's max_request_size.
# Everything else (timeouts, a broker down, not enough in-sync replicas, the sequence gap a refused
# record leaves for the records behind it in its partition) may pass on a later attempt.
_UNPUBLISHABLE: dict[type[KafkaError], str] = {
    MessageSizeTooLargeError: "too large for its topic (max.message.bytes) or the producer (max_request_size)",
    RecordListTooLargeError: "too large for its topic (max.message.bytes)",
    InvalidTopicError: "the topic's name is invalid",
    TopicAuthorizationFailedError: "this client may not write to the topic",
}


def delivery_failure(error: BaseException) -> Exception:
    """What a failed send says about its record: ``Unpublishable``, with the reason, when the
    producer or the broker refuses that record for good; otherwise the error itself, for a later
    attempt.
    """
    for refusal, meaning in _UNPUBLISHABLE.items():
        if isinstance(error, refusal):
            return Unpublishable(f"Kafka refused the record, {meaning}: {error}")
    return error if isinstance(error, Exception) else RuntimeError(repr(error))


def _headers(headers: Sequence[tuple[str, bytes | None]]) -> tuple[tuple[str, bytes], ...]:
    """A record's headers as bytes: Kafka allows a header without a value, the rest of the code
    wants bytes. Copied only when one is missing (checked at C speed: every record passes here)."""
    if None in map(itemgetter(1), headers):
        return tuple((name, value or b"") for name, value in headers)
    return tuple(headers)  # type: ignore[arg-type]  # checked above: no None among them


class KafkaSubscription:
    """A consumer group member on Kafka."""

    def __init__(self, consumer: AIOKafkaConsumer) -> None:
        self._consumer = consumer

    async def fetch(self, max_records: int, timeout_s: float) -> list[Record]:
        """The next records of the assigned partitions, in offset order per partition."""
        batches = await self._consumer.getmany(timeout_ms=int(timeout_s * 1000), max_records=max_records)
        return [
            Record(
                topic=m.topic,
                partition=m.partition,
                offset=m.offset,
                key=m.key,
                value=m.value or b"",
                headers=_headers(m.headers),
                timestamp_ms=m.timestamp,
            )
            for tp in sorted(batches, key=lambda tp: (tp.topic, tp.partition))
            for m in batches[tp]
        ]

    async def commit(self, offsets: Mapping[Position, int]) -> None:
        """Commit the group's offsets for the partitions still assigned to this member.

        A rebalance in between only means a redelivery to the new owner, which its inbox absorbs,
        so a refused commit is logged and not raised.
        """
        assigned = self._consumer.assignment()
        owned = {TopicPartition(t, p): o for (t, p), o in offsets.items() if TopicPartition(t, p) in assigned}
        if not owned:
            return
        try:
            await self._consumer.commit(owned)
        except (CommitFailedError, IllegalStateError):
            log.warning("offset commit refused after a rebalance; the batch will be redelivered")

    async def seek(self, partition: Position, offset: int) -> None:
        """Read ``partition`` from ``offset`` on; records buffered past it are discarded."""
        self._consumer.seek(TopicPartition(*partition), offset)

    async def close(self) -> None:
        """Leave the group."""
        await self._consumer.stop()


class _StartAtOnAssignment(ConsumerRebalanceListener):  # type: ignore[misc]
    """Moves each newly assigned partition to the position its consumer keeps itself."""

    def __init__(self, start_at: StartPositions) -> None:
        self.start_at = start_at
        self.consumer: AIOKafkaConsumer | None = None

    async def on_partitions_revoked(self, revoked: object) -> None:
        """Nothing to flush: a consumer keeping its own positions commits them with its effects."""

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        """Seek every assigned partition to the stored position (the group offset is only a hint)."""
        assert self.consumer is not None
        positions = await self.start_at([(tp.topic, tp.partition) for tp in assigned])
        for (topic, partition), offset in positions.items():
            self.consumer.seek(TopicPartition(topic, partition), offset)


class KafkaBus:
    """Kafka through aiokafka.

    The producer is replaced after any failed publish: aiokafka's idempotent producer can be left
    unable to send to a partition (a sequence gap after an expired batch) with no way back, and a
    fresh producer id costs nothing but duplicates, which the outbox and inboxes absorb anyway.
    """

    def __init__(
        self,
        bootstrap_servers: str,
        *,
        client_id: str = "citycase",
        replication_factor: int = 1,
        linger_ms: int = 5,
        request_timeout_ms: int = 15000,
        group_prefix: str = "",
        fetch_bytes_per_partition: int = DEFAULT_FETCH_BYTES_PER_PARTITION,
    ) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.group_prefix = group_prefix
        self.client_id = client_id
        self.replication_factor = replication_factor
        self.linger_ms = linger_ms
        self.request_timeout_ms = request_timeout_ms
        self.fetch_bytes_per_partition = fetch_bytes_per_partition
        self._producer: AIOKafkaProducer | None = None
        self._producer_lock = asyncio.Lock()
        # Asked for the consumer groups' offsets every few seconds (the lag gauges): kept open.
        self._admin: AIOKafkaAdminClient | None = None
        self._admin_lock = asyncio.Lock()
        # Kept between asks: the gauges ask for the end offsets every few seconds, and a consumer
        # made per ask would bootstrap and reach every partition's leader each time.
        self._offsets: AIOKafkaConsumer | None = None
        self._offsets_lock = asyncio.Lock()

    async def start(self) -> None:
        """Connect the producer; raises when no broker answers."""
        await self._ready_producer()

    async def _ready_producer(self) -> AIOKafkaProducer:
        async with self._producer_lock:
            if self._producer is None:
                producer = AIOKafkaProducer(
                    bootstrap_servers=self.bootstrap_servers,
                    client_id=self.client_id,
                    acks="all",
                    enable_idempotence=True,
                    linger_ms=self.linger_ms,
                    request_timeout_ms=self.request_timeout_ms,
                )
                try:
                    await producer.start()
                except BaseException:
                    await _stop_within(producer.stop(), "producer")
                    raise
                self._producer = producer
            return self._producer

    async def _discard_producer(self) -> None:
        async with self._producer_lock:
            producer, self._producer = self._producer, None
        if producer is not None:
            await _stop_within(producer.stop(), "producer")

    async def close(self) -> None:
        """Flush pending messages (for a bounded time: the broker may be gone) and disconnect."""
        await self._discard_producer()
        await self._discard_admin()
        await self._discard_offsets()

    async def _ready_admin(self) -> AIOKafkaAdminClient:
        async with self._admin_lock:
            if self._admin is None:
                admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap_servers, client_id=self.client_id)
                try:
                    await admin.start()
                except BaseException:
                    await _stop_within(admin.close(), "admin client")
                    raise
                self._admin = admin
            return self._admin

    async def _ready_offsets(self) -> AIOKafkaConsumer:
        async with self._offsets_lock:
            if self._offsets is None:
                consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap_servers, client_id=self.client_id)
                try:
                    await consumer.start()
                except BaseException:
                    await _stop_within(consumer.stop(), "consumer")
                    raise
                self._offsets = consumer
            return self._offsets

    async def _discard_offsets(self) -> None:
        async with self._offsets_lock:
            consumer, self._offsets = self._offsets, None
        if consumer is not None:
            await _stop_within(consumer.stop(), "consumer")

    async def _discard_admin(self) -> None:
        async with self._admin_lock:
            admin, self._admin = self._admin, None
        if admin is not None:
            await _stop_within(admin.close(), "admin client")

    async def ensure_topics(self, topics: Sequence[TopicSpec]) -> None:
        """Create missing topics with the configured replication factor."""
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap_servers, client_id=self.client_id)
        try:
            await admin.start()
            existing = set(await admin.list_topics())
            missing = [t for t in topics if t.name not in existing]
            if missing:
                response = await admin.create_topics(
                    [
                        NewTopic(t.name, t.partitions, self.replication_factor, topic_configs=dict(t.config))
                        for t in missing
                    ]
                )
                for name, code, *_ in response.topic_errors:
                    if code not in (0, _TOPIC_ALREADY_EXISTS):
                        raise KafkaError(f"cannot create topic {name}: error code {code}")
        finally:
            await admin.close()

    async def publish(self, messages: Sequence[Message]) -> None:
        """Send in order and wait until every message is acknowledged by all in-sync replicas;
        ``PublishFailed`` names the messages that were not (see ``Bus.publish``).

        Kafka keeps the order: a record refused by the broker fails the records behind it in its
        partition (with it in one batch, or by the sequence gap it leaves). A record refused
        before sending holds back the later ones of its key here.
        """
        producer = await self._ready_producer()
        failures: dict[int, Exception] = {}
        deliveries: dict[int, asyncio.Future[Any]] = {}
        try:
            try:
                async with asyncio.timeout(2 * self.request_timeout_ms / 1000):
                    await self._send_all(producer, messages, deliveries, failures)
                    if deliveries:
                        await asyncio.wait(deliveries.values())
            except TimeoutError:
                pass  # whatever is not acknowledged by now failed, below
            for n in range(len(messages)):
                if n not in failures:
                    failure = _outcome(deliveries.get(n))
                    if failure is not None:
                        failures[n] = failure
        except BaseException:
            await self._discard_producer()
            raise
        if failures:
            await self._discard_producer()
            raise PublishFailed(failures)

    async def _send_all(
        self,
        producer: AIOKafkaProducer,
        messages: Sequence[Message],
        deliveries: dict[int, asyncio.Future[Any]],
        failures: dict[int, Exception],
    ) -> None:
        """Hand every message to the producer, noting each acknowledgement to wait for, or why
        it was not sent.
        """
        missing = await self._missing_topics(producer, {m.topic for m in messages})
        refused: set[tuple[str, bytes]] = set()
        for n, message in enumerate(messages):
            ordered = (message.topic, message.key) if message.key is not None else None
            if ordered in refused:
                failures[n] = HeldBehind(f"an earlier message of key {message.key!r} was not sent")
            elif message.topic in missing:
                failures[n] = missing[message.topic]
            else:
                try:
                    deliveries[n] = await producer.send(
                        message.topic, message.value, key=message.key, headers=list(message.headers)
                    )
                    continue
                except KafkaError as exc:
                    failures[n] = delivery_failure(exc)
            if ordered is not None:
                refused.add(ordered)

    async def _missing_topics(self, producer: AIOKafkaProducer, topics: set[str]) -> dict[str, Unpublishable]:
        """Which of ``topics`` the broker says do not exist or are forbidden to this client.

        Asked only for topics the producer has no metadata for yet, so never on the healthy
        path: aiokafka would wait ``request_timeout_ms`` on such a topic, and its error then would
        not tell a missing topic from a broker that is down. No broker answering raises.
        """
        unseen = {t for t in topics if producer.client.cluster.partitions_for_topic(t) is None}
        if not unseen:
            return {}
        metadata = await producer.client.fetch_all_metadata()
        missing: dict[str, Unpublishable] = {}
        for topic in sorted(unseen):
            if topic in metadata.unauthorized_topics:
                missing[topic] = Unpublishable(f"this client may not write to topic {topic!r}")
            elif metadata.partitions_for_topic(topic) is None:
                missing[topic] = Unpublishable(f"topic {topic!r} does not exist (or this client may not see it)")
        return missing

    async def subscribe(
        self, group: str, topics: Sequence[str], *, start_at: StartPositions | None = None
    ) -> KafkaSubscription:
        """Join a consumer group; offsets are committed only by ``commit``, and partitions start
        where ``start_at`` says when given.
        """
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap_servers,
            client_id=self.client_id,
            group_id=self.group_prefix + group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_partition_fetch_bytes=self.fetch_bytes_per_partition,
        )
        listener = _StartAtOnAssignment(start_at) if start_at is not None else None
        try:
            await consumer.start()
            if listener is not None:
                listener.consumer = consumer
                consumer.subscribe(topics=list(topics), listener=listener)
            else:
                consumer.subscribe(topics=list(topics))
        except BaseException:
            await _stop_within(consumer.stop(), "consumer")
            raise
        return KafkaSubscription(consumer)

    async def end_offsets(self, topic: str) -> dict[Position, int]:
        """The next offset of each partition of ``topic``, asked of the broker."""
        partitions = await (await self._ready_producer()).partitions_for(topic)
        consumer = await self._ready_offsets()
        try:
            ends = await consumer.end_offsets([TopicPartition(topic, p) for p in sorted(partitions)])
        except BaseException:
            # A client that failed once may be left connected to a broker that is gone.
            await self._discard_offsets()
            raise
        return {(tp.topic, tp.partition): offset for tp, offset in ends.items()}

    async def committed_offsets(self, group: str, topics: Sequence[str]) -> dict[Position, int]:
        """The next offset ``group`` committed in each partition of ``topics`` where it committed one,
        asked of the group's coordinator."""
        admin = await self._ready_admin()
        try:
            committed = await admin.list_consumer_group_offsets(self.group_prefix + group)
        except BaseException:
            # A client that failed once may be left connected to a broker that is gone.
            await self._discard_admin()
            raise
        wanted = set(topics)
        return {
            (tp.topic, tp.partition): meta.offset
            for tp, meta in committed.items()
            if tp.topic in wanted and meta.offset >= 0
        }

    async def ping(self) -> None:
        """Raise unless a broker answers a metadata request within a few seconds."""
        producer = await self._ready_producer()
        async with asyncio.timeout(3):
            await producer.client.fetch_all_metadata()


def _outcome(delivery: asyncio.Future[Any] | None) -> Exception | None:
    """Why a message was not stored (``None`` when it was): never sent, not acknowledged in
    time, or refused.
    """
    if delivery is None or not delivery.done():
        if delivery is not None:
            # Settled later by the producer's shutdown; nobody will read it, so read it then.
            delivery.add_done_callback(lambda late: late.cancelled() or late.exception())
        return TimeoutError("not acknowledged in time")
    if delivery.cancelled():
        return TimeoutError("the send was cancelled")
    error = delivery.exception()
    return None if error is None else delivery_failure(error)


async def _stop_within(stopping: Awaitable[None], what: str) -> None:
    try:
        async with asyncio.timeout(_CLOSE_TIMEOUT_S):
            await stopping
    except TimeoutError:
        log.warning("the Kafka %s did not stop within %.0fs; abandoning it", what, _CLOSE_TIMEOUT_S)
