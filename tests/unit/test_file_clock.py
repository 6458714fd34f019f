"""The clock file: one simulated time for many processes, moved only by its writer."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from shared.core.clock import FileClock
from shared.core.settings import Settings
from tests.conftest import REPO

START = datetime(2026, 1, 5, 0, 30, tzinfo=UTC)


def test_readers_see_every_advance_of_the_writer(tmp_path: Path) -> None:
    path = tmp_path / "clock"
    writer = FileClock.create(path, START)
    first, second = FileClock(path), FileClock(path)
    assert first.now() == second.now() == START
    assert writer.advance(timedelta(minutes=5, microseconds=7)) == START + timedelta(minutes=5, microseconds=7)
    assert first.now() == second.now() == START + timedelta(minutes=5, microseconds=7)
    writer.set(datetime(2026, 1, 6, 9, 0, tzinfo=UTC))
    assert first.now() == second.now() == datetime(2026, 1, 6, 9, 0, tzinfo=UTC)
    assert first.now().tzinfo is UTC


def test_time_never_runs_backwards_and_only_the_writer_moves_it(tmp_path: Path) -> None:
    path = tmp_path / "clock"
    writer = FileClock.create(path, START)
    with pytest.raises(ValueError, match="backwards"):
        writer.set(START - timedelta(microseconds=1))
    with pytest.raises(ValueError, match="backwards"):
        writer.advance(timedelta(seconds=-1))
    with pytest.raises(PermissionError, match="read-only"):
        FileClock(path).set(START + timedelta(hours=1))
    with pytest.raises(ValueError, match="timezone"):
        writer.set(datetime(2026, 2, 1))
    assert writer.now() == START


def test_a_new_clock_file_replaces_the_old_one(tmp_path: Path) -> None:
    path = tmp_path / "sim" / "clock"
    FileClock.create(path, START + timedelta(days=30))
    assert FileClock.create(path, START).now() == START
    (tmp_path / "short").write_bytes(b"\x00" * 4)
    with pytest.raises(ValueError, match="not a clock file"):
        FileClock(tmp_path / "short")


def test_another_process_reads_whole_values_while_the_writer_races_ahead(tmp_path: Path) -> None:
    path = tmp_path / "clock"
    FileClock.create(path, START)
    reader = FileClock(path)
    # The writer lives in another process and moves in odd steps, so a value torn between two
    # writes would show as an instant the writer never stored.
    step_us = 999_983
    script = (
        "import sys; from datetime import timedelta; from pathlib import Path\n"
        "from shared.core.clock import FileClock\n"
        "clock = FileClock(Path(sys.argv[1]), writable=True)\n"
        f"for _ in range(200_000): clock.advance(timedelta(microseconds={step_us}))\n"
    )
    writer = subprocess.Popen([sys.executable, "-c", script, str(path)], cwd=REPO)
    try:
        seen = [reader.now()]
        while writer.poll() is None:
            seen.append(reader.now())
        seen.append(reader.now())
    finally:
        writer.wait(timeout=60)
    assert writer.returncode == 0
    assert seen == sorted(seen)
    assert all((instant - START) % timedelta(microseconds=step_us) == timedelta(0) for instant in seen)
    assert seen[-1] == START + 200_000 * timedelta(microseconds=step_us)


def test_a_clock_file_in_the_settings_gives_every_app_its_time(tmp_path: Path) -> None:
    from services.runtime.app import create_app

    path = tmp_path / "clock"
    writer = FileClock.create(path, START)
    app = create_app(["intake"], Settings(data_dir=tmp_path, clock_file=path))
    clock = app.state.runtime.shared.clock
    writer.advance(timedelta(hours=3))
    assert clock.now() == START + timedelta(hours=3)
