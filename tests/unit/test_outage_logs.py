"""An outage is logged as a change of state, not as a line per retry: our retry loops say when
something went down and when it came back, and a client library's repeated warnings are kept once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import pytest

from shared.core.outage_logs import RepeatFilter, StateLog, quiet_library_logs
from shared.messaging.consumer import rejoin_forever


class Ticks:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def record(template: str, *args: object, level: int = logging.ERROR, name: str = "lib.conn") -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, template, args, None)


def test_a_repeated_warning_is_kept_once_while_it_keeps_coming() -> None:
    ticks = Ticks()
    quiet = RepeatFilter(quiet_s=60, clock=ticks)
    unable = "Unable connect to node with id %s: %s"
    assert quiet.filter(record(unable, 1, "refused"))
    passed = []
    for _ in range(1000):  # ten a second for 100 s: never 60 s apart
        ticks.now += 0.1
        passed.append(quiet.filter(record(unable, 1, "refused")))
    assert not any(passed)
    assert quiet.dropped == 1000
    # Another kind, another logger or another level is a line of its own; info lines all pass.
    assert quiet.filter(record("Unable to update metadata from %s", [1]))
    assert quiet.filter(record(unable, 1, "refused", name="lib.cluster"))
    assert quiet.filter(record(unable, 1, "refused", level=logging.WARNING))
    assert all(quiet.filter(record("Discovered coordinator %s", 1, level=logging.INFO)) for _ in range(3))
    # After a quiet spell the same warning is a new outage's first line.
    ticks.now += 61
    assert quiet.filter(record(unable, 1, "refused"))
    assert quiet.dropped == 1000


def test_a_state_log_writes_one_line_when_down_and_one_when_back(caplog: pytest.LogCaptureFixture) -> None:
    ticks = Ticks()
    quiet = RepeatFilter(clock=ticks)
    logger = logging.getLogger("test.state")
    bus = StateLog(logger, "the event bus", quieted=quiet, clock=ticks)
    with caplog.at_level(logging.INFO, logger="test.state"):
        bus.succeeded()  # working from the start: nothing to say
        quiet.dropped = 7
        for attempt in range(30):
            ticks.now += 2
            try:
                raise ConnectionRefusedError(111, "Connection refused")
            except ConnectionRefusedError as exc:
                bus.failed(exc, traceback=attempt == 0)
        assert bus.down
        quiet.dropped = 507
        ticks.now += 2
        bus.succeeded()
        bus.succeeded()
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "the event bus is down: ConnectionRefusedError: [Errno 111] Connection refused;"
        " retrying, with no more lines until it is back",
        "the event bus is back after 60 s (not logged meanwhile: 29 more failures, 500 client log lines)",
    ]
    assert caplog.records[0].exc_info is not None
    assert not bus.down


def test_quieting_a_library_reaches_every_logger_it_has(caplog: pytest.LogCaptureFixture) -> None:
    child = logging.getLogger("quietlib.consumer.fetcher")
    top = logging.getLogger("quietlib")
    quiet = quiet_library_logs("quietlib")
    assert quiet_library_logs("quietlib") is quiet  # once per process, however often asked
    with caplog.at_level(logging.INFO):
        for _ in range(500):
            child.error("Failed fetch messages from %s: %s", 1, "NodeNotReadyError")
            top.error("Unable connect to node with id %s", 1)
        logging.getLogger("quietlibrary").error("another library: %s", 1)
        logging.getLogger("quietlibrary").error("another library: %s", 1)
    assert [r.name for r in caplog.records] == ["quietlib.consumer.fetcher", "quietlib", "quietlibrary", "quietlibrary"]
    assert quiet.dropped == 998
    assert child.filters.count(quiet) == 1


async def test_a_consumer_that_cannot_rejoin_logs_the_loss_and_the_return_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    attempts = 0

    async def consume(joined: Callable[[], None]) -> None:
        nonlocal attempts
        attempts += 1
        if attempts <= 25:
            raise ConnectionError("Unable to bootstrap from [('127.0.0.1', 9092)]")
        joined()
        raise asyncio.CancelledError  # the runtime stops it

    with caplog.at_level(logging.INFO, logger="shared.messaging.consumer"), pytest.raises(asyncio.CancelledError):
        await rejoin_forever("dispatch.lifecycle", consume, first_delay_s=0)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2
    assert lines[0].startswith("consumer dispatch.lifecycle is down: ConnectionError: Unable to bootstrap")
    assert caplog.records[0].exc_info is not None
    assert lines[1].startswith("consumer dispatch.lifecycle is back after ")
    assert lines[1].endswith("(not logged meanwhile: 24 more failures)")
