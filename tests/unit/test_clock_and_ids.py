"""The injectable clock and time-ordered ids."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from shared.core.clock import SimulatedClock, SystemClock
from shared.core.ids import new_id


def test_simulated_time_moves_only_forward_and_only_when_told() -> None:
    clock = SimulatedClock(datetime(2026, 9, 30, 17, 59, tzinfo=timezone(timedelta(hours=8))))
    assert clock.now() == datetime(2026, 9, 30, 9, 59, tzinfo=UTC)
    assert clock.now() == clock.now()
    assert clock.advance(timedelta(days=8)) == datetime(2026, 10, 8, 9, 59, tzinfo=UTC)
    with pytest.raises(ValueError, match="backwards"):
        clock.advance(timedelta(seconds=-1))
    with pytest.raises(ValueError, match="backwards"):
        clock.set(datetime(2026, 1, 1, tzinfo=UTC))
    with pytest.raises(ValueError, match="timezone"):
        SimulatedClock(datetime(2026, 1, 1))


def test_system_clock_is_aware_utc() -> None:
    assert SystemClock().now().tzinfo is UTC


def test_ids_are_uuid7_and_sort_by_creation() -> None:
    ids = [new_id() for _ in range(1000)]
    assert {i.version for i in ids} == {7}
    assert len(set(ids)) == 1000
    assert [i.bytes[:6] for i in ids] == sorted(i.bytes[:6] for i in ids)
