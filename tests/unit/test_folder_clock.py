"""A data folder served on a clock file remembers it: served again, its city runs on the time the
simulation left it at, or refuses to start, never on today's date.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from services.runtime.app import create_app
from shared.core.clock import (
    SIMULATED_TIME_MARK,
    SIMULATION_CLOCK_FILE,
    FileClock,
    SimulatedClockMissing,
    SystemClock,
    clock_of_folder,
)
from shared.core.settings import Settings

START = datetime(2027, 3, 1, 1, 0, tzinfo=UTC)


def simulated_folder(folder: Path) -> FileClock:
    """A folder a simulation served on its clock file, as the simulator leaves it; the writer."""
    writer = FileClock.create(folder / SIMULATION_CLOCK_FILE, START)
    clock_of_folder(folder, folder / SIMULATION_CLOCK_FILE)
    return writer


def test_a_folder_served_on_a_clock_file_runs_on_it_when_served_again(tmp_path: Path) -> None:
    writer = simulated_folder(tmp_path / "city")
    writer.advance(timedelta(days=3))
    clock = clock_of_folder(tmp_path / "city")
    assert isinstance(clock, FileClock)
    assert clock.now() == START + timedelta(days=3)
    with pytest.raises(PermissionError, match="read-only"):
        clock.set(START + timedelta(days=4))
    # The folder names its clock relative to itself: it can move.
    (tmp_path / "city").rename(tmp_path / "moved")
    assert clock_of_folder(tmp_path / "moved").now() == START + timedelta(days=3)


def test_a_simulated_folder_without_its_clock_refuses_to_start(tmp_path: Path) -> None:
    simulated_folder(tmp_path)
    (tmp_path / SIMULATION_CLOCK_FILE).unlink()
    with pytest.raises(SimulatedClockMissing, match="CITYCASE_REAL_TIME=true"):
        clock_of_folder(tmp_path)
    (tmp_path / SIMULATION_CLOCK_FILE).write_bytes(b"\x00" * 4)  # not a clock file
    with pytest.raises(SimulatedClockMissing, match="not a clock file"):
        clock_of_folder(tmp_path)
    # Told to, it goes on in real time.
    assert isinstance(clock_of_folder(tmp_path, real_time=True), SystemClock)
    with pytest.raises(ValueError, match="choose one"):
        clock_of_folder(tmp_path, tmp_path / "other.clock", real_time=True)


def test_a_clock_file_outside_the_folder_is_remembered_by_its_path(tmp_path: Path) -> None:
    outside = tmp_path / "clocks" / "city.clock"
    writer = FileClock.create(outside, START)
    clock_of_folder(tmp_path / "city", outside)
    writer.advance(timedelta(hours=5))
    assert clock_of_folder(tmp_path / "city").now() == START + timedelta(hours=5)
    outside.unlink()
    with pytest.raises(SimulatedClockMissing, match=re.escape(str(outside))):
        clock_of_folder(tmp_path / "city")


def test_a_folder_simulated_before_folders_remembered_adopts_the_clock_in_it(tmp_path: Path) -> None:
    FileClock.create(tmp_path / SIMULATION_CLOCK_FILE, START)
    assert clock_of_folder(tmp_path).now() == START
    # From now on the folder remembers: without the clock it refuses.
    (tmp_path / SIMULATION_CLOCK_FILE).unlink()
    with pytest.raises(SimulatedClockMissing):
        clock_of_folder(tmp_path)


def test_a_folder_never_simulated_runs_on_the_system_clock_and_stays_unmarked(tmp_path: Path) -> None:
    assert isinstance(clock_of_folder(tmp_path), SystemClock)
    assert not (tmp_path / SIMULATED_TIME_MARK).exists()


def test_the_app_serving_a_simulated_folder_takes_its_clock_or_does_not_start(tmp_path: Path) -> None:
    simulated_folder(tmp_path)
    app = create_app(["intake"], Settings(data_dir=tmp_path))
    assert app.state.runtime.shared.clock.now() == START
    (tmp_path / SIMULATION_CLOCK_FILE).unlink()
    with pytest.raises(SimulatedClockMissing, match=re.escape(str(tmp_path))):
        create_app(["intake"], Settings(data_dir=tmp_path))
    app = create_app(["intake"], Settings(data_dir=tmp_path, real_time=True))
    assert isinstance(app.state.runtime.shared.clock, SystemClock)
