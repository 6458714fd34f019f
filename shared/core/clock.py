"""The one source of time: inject a clock, never call ``datetime.now()`` in domain code.

A simulated clock lets tests cross deadlines and holidays and lets the simulator run a city-year
in minutes. When the services run as separate processes they share one simulated time through a
clock file (:class:`FileClock`) that only the simulator moves.

A data folder whose city ran on a clock file remembers which one (:func:`clock_of_folder`): served
again, it runs on that clock, or not at all. On the system clock its timers would stamp today's
date on simulated cases and miss (or never reach) every deadline at once, and the indicators
would count that for good.
"""

from __future__ import annotations

import mmap
import os
import struct
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

# The clock file the simulator keeps in the data folder of a city it starts.
SIMULATION_CLOCK_FILE = "simulation.clock"
# Written in a data folder served on a clock file: the clock file's path (relative to the folder
# when it lies inside it, so the folder can move).
SIMULATED_TIME_MARK = "simulated-time"


class Clock(Protocol):
    """Anything that tells the current time as an aware UTC datetime."""

    def now(self) -> datetime:
        """The current instant, timezone-aware, in UTC."""
        ...


class SystemClock:
    """Wall-clock time."""

    def now(self) -> datetime:
        """The current instant from the operating system."""
        return datetime.now(UTC)


class SimulatedClock:
    """Time that moves only when told to."""

    def __init__(self, start: datetime) -> None:
        self._now = _as_utc(start)

    def now(self) -> datetime:
        """The simulated instant."""
        return self._now

    def advance(self, delta: timedelta) -> datetime:
        """Move time forward by ``delta`` and return the new instant; time never runs backwards."""
        if delta < timedelta(0):
            raise ValueError("a simulated clock cannot move backwards")
        self._now += delta
        return self._now

    def set(self, instant: datetime) -> None:
        """Jump to ``instant``, which must not be earlier than the current simulated time."""
        instant = _as_utc(instant)
        if instant < self._now:
            raise ValueError("a simulated clock cannot move backwards")
        self._now = instant


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Microseconds since the epoch, little-endian signed 64-bit; the file holds two copies.
_WORD = struct.Struct("<q")
_LAYOUT = struct.Struct("<qq")


class FileClock:
    """Simulated time kept in a small file, shared by every process that maps it.

    The file holds the instant twice. The writer stores the first copy, then the second; a reader
    loads the second, then the first, and reads again when they differ. Python copies the bytes of
    a value one by one, so a reader may catch a write half done: the two copies then disagree, and
    a value read whole is always one the writer stored. Only the simulator writes, and never
    backwards; every service process reads it on each ``now()`` (a memory read, no system call).
    """

    def __init__(self, path: Path, *, writable: bool = False) -> None:
        """Map an existing clock file; only a ``writable`` clock may move time."""
        self.path = path
        flags = os.O_RDWR if writable else os.O_RDONLY
        fd = os.open(path, flags)
        try:
            if os.fstat(fd).st_size < _LAYOUT.size:
                raise ValueError(f"{path} is not a clock file: it holds fewer than {_LAYOUT.size} bytes")
            self._map = mmap.mmap(fd, _LAYOUT.size, access=mmap.ACCESS_WRITE if writable else mmap.ACCESS_READ)
        finally:
            os.close(fd)
        self._writable = writable

    @classmethod
    def create(cls, path: Path, start: datetime) -> FileClock:
        """Write a new clock file at ``start`` (replacing any old one) and return its writer."""
        micros = _micros(_as_utc(start))
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".new")
        partial.write_bytes(_LAYOUT.pack(micros, micros))
        # Rename, so a process opening the path never sees a half-written file.
        partial.replace(path)
        return cls(path, writable=True)

    def now(self) -> datetime:
        """The simulated instant, as the writer last stored it."""
        while True:
            second = _WORD.unpack_from(self._map, _WORD.size)[0]
            first = _WORD.unpack_from(self._map, 0)[0]
            if first == second:
                return _EPOCH + timedelta(microseconds=first)

    def advance(self, delta: timedelta) -> datetime:
        """Move time forward by ``delta`` and return the new instant; time never runs backwards."""
        if delta < timedelta(0):
            raise ValueError("a simulated clock cannot move backwards")
        instant = self.now() + delta
        self.set(instant)
        return instant

    def set(self, instant: datetime) -> None:
        """Jump to ``instant``, which must not be earlier than the current simulated time."""
        if not self._writable:
            raise PermissionError(f"{self.path} is mapped read-only: only the simulator moves this clock")
        micros = _micros(_as_utc(instant))
        if micros < _micros(self.now()):
            raise ValueError("a simulated clock cannot move backwards")
        _WORD.pack_into(self._map, 0, micros)
        _WORD.pack_into(self._map, _WORD.size, micros)

    def close(self) -> None:
        """Unmap the file."""
        self._map.close()


class SimulatedClockMissing(RuntimeError):
    """A data folder's city ran on simulated time, and its clock file cannot be read."""


def clock_of_folder(data_dir: Path, clock_file: Path | None = None, *, real_time: bool = False) -> Clock:
    """The clock a process serving the city in ``data_dir`` runs on.

    ``clock_file`` (a simulation's) when given; the folder then remembers it. Else the clock file
    the folder remembers, or the simulator's clock file in it (a folder simulated before folders
    remembered): raises :class:`SimulatedClockMissing` when that cannot be read. Else, or when
    ``real_time`` says so whatever the folder remembers, the system clock. Clock files are mapped
    read-only: only the simulator moves time.
    """
    if real_time:
        if clock_file is not None:
            raise ValueError("a clock file and real time exclude each other: choose one")
        return SystemClock()
    mark = data_dir / SIMULATED_TIME_MARK
    if clock_file is not None:
        clock = _open(clock_file, data_dir)
        _remember(mark, clock_file)
        return clock
    try:
        remembered = Path(mark.read_text().strip())
    except FileNotFoundError:
        if not (data_dir / SIMULATION_CLOCK_FILE).exists():
            return SystemClock()
        remembered = Path(SIMULATION_CLOCK_FILE)
        _remember(mark, data_dir / remembered)
    except OSError as exc:
        raise SimulatedClockMissing(_missing(data_dir, mark, exc)) from exc
    return _open(data_dir / remembered, data_dir)


def _open(path: Path, data_dir: Path) -> FileClock:
    try:
        return FileClock(path)
    except (OSError, ValueError) as exc:
        raise SimulatedClockMissing(_missing(data_dir, path, exc)) from exc


def _missing(data_dir: Path, path: Path, error: Exception) -> str:
    return (
        f"the city in {data_dir} ran on the simulated clock {path}, which cannot be read"
        f" ({type(error).__name__}: {error}); on today's time its timers would stamp today's date on"
        " simulated cases and spoil its indicators for good. Serve it on its clock file"
        f" (restore it, or set CITYCASE_CLOCK_FILE), or, to go on in real time from now on, set"
        " CITYCASE_REAL_TIME=true"
    )


def _remember(mark: Path, clock_file: Path) -> None:
    """Write ``clock_file``'s path into ``mark`` unless it holds it already; atomically, as every
    process of a city may start at once."""
    clock_file = clock_file.resolve()
    folder = mark.parent.resolve()
    text = str(clock_file.relative_to(folder) if clock_file.is_relative_to(folder) else clock_file)
    try:
        if mark.read_text().strip() == text:
            return
    except FileNotFoundError:
        pass
    folder.mkdir(parents=True, exist_ok=True)
    partial = mark.with_name(f"{mark.name}.{os.getpid()}.new")
    partial.write_text(text + "\n")
    partial.replace(mark)


def rfc3339(instant: datetime) -> str:
    """``instant`` in UTC as RFC 3339 writes it, ``Z`` for the zone (as events and webhooks carry it)."""
    return instant.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _micros(instant: datetime) -> int:
    return (instant - _EPOCH) // timedelta(microseconds=1)


def _as_utc(instant: datetime) -> datetime:
    if instant.tzinfo is None:
        raise ValueError("naive datetimes are ambiguous: give a timezone")
    return instant.astimezone(UTC)
