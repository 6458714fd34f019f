"""The delivery rules on their own: the backoff schedule with equal jitter, when a message is given
up on, the head-of-line rule that keeps a case's messages to an endpoint in order, and what
production refuses to send in the clear."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest
from sqlalchemy import Engine, create_engine, select

from intake.delivery import DeliveryState, Failure, after_failure, backoff, first_in_line, plain_sending
from intake.models import deliveries
from intake.outbound import message_id
from shared.core.ids import new_id
from shared.integration.endpoints import Endpoint, RetryPolicy
from shared.integration.signing import Scheme, Secret, Signer

NOW = datetime(2026, 11, 16, 1, 0, tzinfo=UTC)
# The defaults: bounded by age alone.
POLICY = RetryPolicy()
COUNTED = RetryPolicy(max_attempts=12)
FAILED = Failure("status_5xx", "HTTP 503: busy", 503)


class Ceiling(random.Random):
    """Jitter that always picks the longest wait it may."""

    def uniform(self, a: float, b: float) -> float:
        return b


def test_the_default_policy_tries_for_48_hours_however_many_attempts_that_takes() -> None:
    assert (POLICY.max_attempts, POLICY.max_age_hours) == (None, 48.0)
    assert (POLICY.first_delay_seconds, POLICY.max_delay_seconds, POLICY.timeout_seconds) == (5.0, 1800.0, 10.0)


def test_the_longest_wait_doubles_from_the_first_delay_up_to_the_cap() -> None:
    waits = [backoff(POLICY, n, Ceiling()).total_seconds() for n in range(1, 12)]
    assert waits == [5, 10, 20, 40, 80, 160, 320, 640, 1280, 1800, 1800]
    # Unlimited attempts count far past what 2**n holds in a float: still the cap.
    assert backoff(POLICY, 5000, Ceiling()).total_seconds() == 1800


def test_equal_jitter_waits_at_least_half_the_ceiling_and_spreads_the_other_half() -> None:
    rng = random.Random(13)
    waits = [backoff(POLICY, 3, rng).total_seconds() for _ in range(2000)]
    assert all(10 <= wait <= 20 for wait in waits)
    # Spread over the upper half: retries of many messages scatter, none comes back at once.
    assert min(waits) < 10.1
    assert max(waits) > 19.9
    assert 14.5 < sum(waits) / len(waits) < 15.5


def tried_until_dead(policy: RetryPolicy, rng: random.Random) -> tuple[int, timedelta]:
    """Attempts against an endpoint that never answers, each due when the schedule says: how many
    until the message is dead, and how long after the first."""
    attempts, now = 0, NOW
    while True:
        attempts += 1
        attempted = after_failure(policy, attempts=attempts, first_attempt_at=NOW, now=now, failure=FAILED, rng=rng)
        if attempted.dead:
            return attempts, now - NOW
        now = attempted.changes["next_attempt_at"]


def test_with_the_defaults_nothing_is_lost_to_an_outage_of_hours() -> None:
    for seed in range(20):
        attempts, lasted = tried_until_dead(POLICY, random.Random(seed))
        # Dead only once the age is reached, not after a count of attempts ran out within an hour.
        assert hours(48) <= lasted < hours(48) + timedelta(seconds=1800)
        assert 100 < attempts < 200  # spaced out: a retry every 15 to 30 minutes once at the cap


def test_a_counted_policy_gives_up_after_its_attempts_within_the_hours_its_waits_add_up_to() -> None:
    shortest = tried_until_dead(COUNTED, random.Random(1))[1]
    assert timedelta(minutes=51) < shortest <= timedelta(minutes=103)
    assert tried_until_dead(COUNTED, Ceiling()) == (
        12,
        timedelta(seconds=5 + 10 + 20 + 40 + 80 + 160 + 320 + 640 + 1280 + 1800 + 1800),
    )


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
    assert not after_failure(
        POLICY, attempts=500, first_attempt_at=NOW, now=NOW + hours(47), failure=FAILED, rng=Ceiling()
    ).dead


def test_the_last_attempt_failing_makes_the_message_dead_with_the_reason() -> None:
    attempted = after_failure(
        COUNTED, attempts=12, first_attempt_at=NOW, now=NOW + hours(3), failure=FAILED, rng=Ceiling()
    )
    assert attempted.dead
    assert attempted.changes["state"] is DeliveryState.DEAD
    assert attempted.changes["dead_at"] == NOW + hours(3)
    assert attempted.changes["dead_reason"] == "HTTP 503: busy (attempt 12 of 12, tried for 3h00m)"
    assert "next_attempt_at" not in attempted.changes


def test_a_message_tried_for_its_whole_age_is_dead_whatever_its_attempts() -> None:
    timeout = Failure("timeout", "no answer within 10 s")
    young = after_failure(
        COUNTED, attempts=2, first_attempt_at=NOW, now=NOW + hours(47), failure=timeout, rng=Ceiling()
    )
    old = after_failure(COUNTED, attempts=2, first_attempt_at=NOW, now=NOW + hours(48), failure=timeout, rng=Ceiling())
    assert (young.dead, old.dead) == (False, True)
    assert old.changes["dead_reason"] == "no answer within 10 s (attempt 2 of 12, tried for 48h00m)"
    # Attempts unlimited: the reason counts them without a total.
    aged = after_failure(
        POLICY, attempts=130, first_attempt_at=NOW, now=NOW + hours(48), failure=timeout, rng=Ceiling()
    )
    assert aged.changes["dead_reason"] == "no answer within 10 s (attempt 130, tried for 48h00m)"


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


def test_a_discarded_message_holds_nothing_back(table: Engine) -> None:
    case = new_id()
    add(table, "hotline:12345", case, DeliveryState.DISCARDED)
    behind = add(table, "hotline:12345", case, DeliveryState.PENDING)
    assert first_in_line_rows(table) == {behind}


# --- what production sends in the clear ------------------------------------------------------


def endpoint(url: str) -> Endpoint:
    signer = Signer(Scheme.STANDARD_WEBHOOKS, (Secret("s", "whsec_" + "A" * 44),))
    return Endpoint("hotline:12345", url, signer, POLICY)


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://hotline.example.cn/citycase", True),
        ("http://127.0.0.1:9999/citycase", True),
        ("http://localhost/citycase", True),
        ("http://[::1]:8080/in", True),
        ("http://hotline.example.cn/citycase", False),
        ("http://10.0.0.7/in", False),
    ],
)
def test_production_sends_to_https_or_this_machine_only(url: str, allowed: bool) -> None:
    problems = plain_sending("https://citycase.example.gov.cn", [endpoint(url)], allow_plain_http=False)
    assert problems == ([] if allowed else [problems[0]])
    if not allowed:
        assert problems[0].startswith(f"hotline:12345 is plain http ({url}): the citizens' descriptions and places")
    assert plain_sending("https://citycase.example.gov.cn", [endpoint(url)], allow_plain_http=True) == []


@pytest.mark.parametrize(
    ("public_url", "problem"),
    [
        ("http://127.0.0.1:8000", "CITYCASE_PUBLIC_URL is http://127.0.0.1:8000, this machine: the photo links"),
        ("https://localhost", "CITYCASE_PUBLIC_URL is https://localhost, this machine"),
        ("http://citycase.example.gov.cn", "CITYCASE_PUBLIC_URL http://citycase.example.gov.cn is plain http"),
    ],
)
def test_production_refuses_photo_links_to_this_machine_or_in_the_clear(public_url: str, problem: str) -> None:
    (found,) = plain_sending(public_url, [endpoint("https://hotline.example.cn")], allow_plain_http=False)
    assert found.startswith(problem)


def hours(count: float) -> timedelta:
    return timedelta(hours=count)
