"""The one source of time: inject a clock, never call ``datetime.now()`` in domain code.

A simulated clock lets tests cross deadlines and holidays and lets the simulator run a city-year
in minutes.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol


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


def _as_utc(instant: datetime) -> datetime:
    if instant.tzinfo is None:
        raise ValueError("naive datetimes are ambiguous: give a timezone")
    return instant.astimezone(UTC)
