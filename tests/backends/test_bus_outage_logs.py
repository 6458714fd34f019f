"""A bus outage in a running process writes a line when it begins and one when it ends, however
many times the process retries meanwhile (the Kafka client alone logged 24,000 lines a minute
per process in a trial).
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from services.runtime import runtime as runtime_module
from services.runtime.app import create_app
from services.runtime.runtime import Runtime
from shared.core.settings import Mode, Settings
from tests.conftest import production_settings

OURS = ("services.runtime", "shared.messaging")


def counted(runtime: Runtime, method: str, monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Count the calls of the bus's ``method``."""
    calls: Counter[str] = Counter()
    original: Callable[[], Awaitable[None]] = getattr(runtime.bus, method)

    async def counting() -> None:
        calls[method] += 1
        await original()

    monkeypatch.setattr(runtime.bus, method, counting)
    return calls


async def until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(30):
        while not condition():
            await asyncio.sleep(0.01)


async def test_a_broker_that_never_answers_gives_a_line_however_long_the_retries_go_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(runtime_module, "_BUS_RETRY_S", 0.01)
    settings = production_settings().model_copy(
        update={
            "kafka_bootstrap_servers": "127.0.0.1:1",  # nothing listens there
            "data_dir": tmp_path,
            "database_urls": {"intake": f"sqlite+aiosqlite:///{tmp_path / 'intake.db'}"},
        }
    )
    app = create_app(["intake"], settings)
    attempts = counted(app.state.runtime, "start", monkeypatch)
    with caplog.at_level(logging.INFO):
        async with app.router.lifespan_context(app):
            await until(lambda: attempts["start"] >= 30)
    ours = [r.getMessage() for r in caplog.records if r.name.startswith(OURS)]
    assert len(ours) == 1
    assert ours[0].startswith("the event bus is down: KafkaConnectionError: Unable to bootstrap")
    # The client's own line per attempt: once (or not at all, when this process logged it lately).
    kinds = Counter((r.name, r.msg) for r in caplog.records if r.name.startswith("aiokafka"))
    assert set(kinds.values()) <= {1}, kinds


async def test_an_outage_of_a_connected_bus_is_logged_when_it_begins_and_when_it_ends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(runtime_module, "_BUS_WATCH_S", 0.01)
    app = create_app(["intake"], Settings(mode=Mode.EMBEDDED, data_dir=tmp_path))
    runtime: Runtime = app.state.runtime
    pings = counted(runtime, "ping", monkeypatch)
    with caplog.at_level(logging.INFO):
        async with app.router.lifespan_context(app):
            async with asyncio.timeout(30):
                await runtime.bus_connected.wait()
            await runtime.bus.close()  # the embedded log goes away, as a broker would
            down_since = pings["ping"]
            await until(lambda: pings["ping"] >= down_since + 30)
            await runtime.bus.start()
            await until(lambda: any("the event bus is back" in r.getMessage() for r in caplog.records))
    ours = [r.getMessage() for r in caplog.records if r.name == "services.runtime.runtime"]
    assert len(ours) == 2, ours
    assert ours[0].startswith("the event bus is down: ")
    assert "more failures" in ours[1]
    # The consumer and the relay that felt the outage said so once, and once that it ended.
    subjects = Counter(r.getMessage().split(" is ")[0] for r in caplog.records if r.name.startswith(OURS))
    assert max(subjects.values()) <= 2, subjects
