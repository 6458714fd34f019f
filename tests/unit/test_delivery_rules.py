"""The delivery rules on their own: the backoff schedule with full jitter, when a message is given up
on, and the head-of-line rule that keeps a case's messages to an endpoint in order."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest
from sqlalchemy import Engine, create_engine, select

from intake.delivery import DeliveryState, Failure, after_failure, backoff, first_in_line
from intake.models import deliveries
from intake.outbound import message_id
from shared.core.ids import new_id
from shared.integration.endpoints import RetryPolicy

NOW = datetime(2026, 11, 16, 1, 0, tzinfo=UTC)
POLICY = RetryPolicy(
    max_attempts=12, max_age_hours=48, first_delay_seconds=5, max_delay_seconds=1800, timeout_seconds=10
)
FAILED = Failure("status_5xx", "HTTP 503: busy", 503)


class Ceiling(random.Random):
    """Jitter that always picks the longest wait it may."""

    def uniform(self, a: float, b: float) -> float:
        return b


def test_the_wait_doubles_from_the_first_delay_up_to_the_cap() -> None:
    waits = [backoff(POLICY, n, Ceiling()).total_seconds() for n in range(1, 12)]
    assert waits == [5, 10, 20, 40, 80, 160, 320, 640, 1280, 1800, 1800]


def test_full_jitter_spreads_each_wait_between_none_and_its_ceiling() -> None:
    rng = random.Random(13)
    waits = [backoff(POLICY, 3, rng).total_seconds() for _ in range(2000)]
    assert all(0 <= wait <= 20 for wait in waits)
    # Spread over the whole range, not bunched at the ceiling: retries of many messages scatter.
    assert min(waits) < 1
    assert max(waits) > 19
    assert 9 < sum(waits) / len(waits) < 11


def test_a_failed_attempt_with_tries_left_is_due_again_after_the_backoff() -> None:
    attempted = after_failure(
        POLICY, attempts=3, first_attempt_at=NOW, now=NOW + hours(1), failure=FAILED, rng=Ceiling()
    )
    assert not attempted.dead
    assert attempted.changes == {
        "attempts": 3,
        "first_attempt_at": NOW,
        "last_attempt_at": NOW + hours(1),
        "last_status": 503,
        "last_error": "HTTP 503: busy",
        "next_attempt_at": NOW + hours(1) + timedelta(seconds=20),
    }


def test_the_last_attempt_failing_makes_the_message_dead_with_the_reason() -> None:
    attempted = after_failure(
        POLICY, attempts=12, first_attempt_at=NOW, now=NOW + hours(3), failure=FAILED, rng=Ceiling()
    )
    assert attempted.dead
    assert attempted.changes["state"] is DeliveryState.DEAD
    assert attempted.changes["dead_at"] == NOW + hours(3)
    assert attempted.changes["dead_reason"] == "HTTP 503: busy (attempt 12 of 12, tried for 3h00m)"
    assert "next_attempt_at" not in attempted.changes


def test_a_message_tried_for_its_whole_age_is_dead_whatever_its_attempts() -> None:
    timeout = Failure("timeout", "no answer within 10 s")
    young = after_failure(POLICY, attempts=2, first_attempt_at=NOW, now=NOW + hours(47), failure=timeout, rng=Ceiling())
    old = after_failure(POLICY, attempts=2, first_attempt_at=NOW, now=NOW + hours(48), failure=timeout, rng=Ceiling())
    assert (young.dead, old.dead) == (False, True)
    assert old.changes["dead_reason"] == "no answer within 10 s (attempt 2 of 12, tried for 48h00m)"


@pytest.mark.parametrize(
    ("status", "reason"), [(400, "status_4xx"), (404, "status_4xx"), (500, "status_5xx"), (302, "status_other")]
)
def test_an_answer_other_than_2xx_is_a_failure_named_by_its_family(status: int, reason: str) -> None:
    failure = Failure.of_status(status, b"  see the logs  " + b"x" * 1000)
    assert (failure.reason, failure.status) == (reason, status)
    assert failure.detail.startswith(f"HTTP {status}: see the logs")
    assert len(failure.detail) < 320  # an endpoint's long answer is cut


def test_a_message_id_is_the_same_for_the_same_event_and_endpoint_only() -> None:
    event = new_id()
    assert message_id(event, "hotline:12345") == message_id(event, "hotline:12345")
    assert message_id(event, "hotline:12345") != message_id(event, "department:co-water")
    assert message_id(event, "hotline:12345") != message_id(new_id(), "hotline:12345")


# --- the head-of-line rule, on a table of deliveries -----------------------------------------


@pytest.fixture
def table() -> Iterator[Engine]:
    engine = create_engine("sqlite://")
    deliveries.create(engine)
    yield engine
    engine.dispose()


def add(engine: Engine, endpoint: str, case_id: UUID, state: DeliveryState) -> int:
    row = {
        "message_id": new_id(),
        "endpoint": endpoint,
        "case_id": case_id,
        "kind": "status",
        "body": "{}",
        "state": state,
        "created_at": NOW,
        "attempts": 0,
        "next_attempt_at": NOW,
    }
    with engine.begin() as connection:
        seq: int = connection.execute(deliveries.insert().values(row).returning(deliveries.c.seq)).scalar_one()
    return seq


def first_in_line_rows(engine: Engine) -> set[int]:
    query = select(deliveries.c.seq).where(deliveries.c.state == DeliveryState.PENDING, first_in_line())
    with engine.connect() as connection:
        return set(connection.execute(query).scalars())


def test_only_the_first_undelivered_message_of_an_endpoint_and_case_may_go(table: Engine) -> None:
    case, other_case = new_id(), new_id()
    add(table, "hotline:12345", case, DeliveryState.DELIVERED)
    first = add(table, "hotline:12345", case, DeliveryState.PENDING)
    add(table, "hotline:12345", case, DeliveryState.PENDING)
    # Another case, and the same case to another endpoint, are lines of their own.
    of_other_case = add(table, "hotline:12345", other_case, DeliveryState.PENDING)
    to_other_endpoint = add(table, "department:co-water", case, DeliveryState.PENDING)
    assert first_in_line_rows(table) == {first, of_other_case, to_other_endpoint}


def test_a_dead_message_holds_back_the_later_ones_of_its_case(table: Engine) -> None:
    case = new_id()
    add(table, "hotline:12345", case, DeliveryState.DEAD)
    add(table, "hotline:12345", case, DeliveryState.PENDING)
    assert first_in_line_rows(table) == set()


def hours(count: float) -> timedelta:
    return timedelta(hours=count)
