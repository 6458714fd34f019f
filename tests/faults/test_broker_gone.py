"""The broker gone while a process runs: every read of the log that fails on it must close the
client it opened. A process reads the dead-letter topic's end offsets every few seconds (the
readiness warning, the gauge); during an outage each failed read left a Kafka consumer behind,
logged by asyncio as "Unclosed AIOKafkaConsumer" when it was collected (the fault suite's broker
outage found it). No broker is needed: the one asked for is a port nobody listens on.
"""

from __future__ import annotations

import asyncio
import gc
import socket

import pytest
from aiokafka.errors import KafkaConnectionError

from shared.messaging.bus.kafka import KafkaBus


class _ConnectedProducer:
    """The producer a running process already has: it knows the topic's partitions."""

    async def partitions_for(self, _topic: str) -> set[int]:
        return {0}


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_reading_the_end_offsets_while_the_broker_is_gone_leaves_no_client_behind(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bus = KafkaBus(f"127.0.0.1:{_closed_port()}", request_timeout_ms=1000)

    async def ready_producer() -> _ConnectedProducer:
        return _ConnectedProducer()

    monkeypatch.setattr(bus, "_ready_producer", ready_producer)
    left_behind: list[str] = []
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _loop, context: left_behind.append(str(context.get("message"))))
    try:
        with pytest.raises(KafkaConnectionError):
            await bus.end_offsets("citycase.dead-letter")
        gc.collect()
    finally:
        loop.set_exception_handler(None)
    assert left_behind == []
