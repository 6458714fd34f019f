"""Which failures of a Kafka send are the record's own (park it after its attempts) and which may
pass (retry the batch, never charge the row).
"""

from __future__ import annotations

import pytest
from aiokafka.errors import (
    InvalidTopicError,
    KafkaConnectionError,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    NotEnoughReplicasAfterAppendError,
    NotEnoughReplicasError,
    NotLeaderForPartitionError,
    OutOfOrderSequenceNumber,
    RecordListTooLargeError,
    RequestTimedOutError,
    TopicAuthorizationFailedError,
    UnknownTopicOrPartitionError,
)

from shared.messaging.bus import HeldBehind, PublishFailed, Unpublishable
from shared.messaging.bus.kafka import delivery_failure


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        # As the broker answers a record over the topic's max.message.bytes: no text of its own.
        (MessageSizeTooLargeError(), "too large for its topic"),
        # As aiokafka refuses a record over max_request_size before sending it.
        (MessageSizeTooLargeError("The message is 1048700 bytes when serialized"), "1048700 bytes"),
        (RecordListTooLargeError(), "too large for its topic"),
        (InvalidTopicError(), "name is invalid"),
        (TopicAuthorizationFailedError("citycase.dead-letter"), "may not write to the topic"),
    ],
)
def test_a_refusal_of_the_record_itself_is_unpublishable_with_its_reason(error: Exception, reason: str) -> None:
    failure = delivery_failure(error)
    assert isinstance(failure, Unpublishable)
    assert str(failure).startswith("Kafka refused the record")
    assert reason in str(failure)


@pytest.mark.parametrize(
    "error",
    [
        KafkaTimeoutError(),
        RequestTimedOutError(),
        KafkaConnectionError("connection refused"),
        NotEnoughReplicasError(),
        NotEnoughReplicasAfterAppendError(),
        NotLeaderForPartitionError(),
        # The records behind a refused one in its partition: innocent, they pass next time.
        OutOfOrderSequenceNumber(),
        # A topic the metadata does not show yet, or a broker down: the bus asks the broker itself.
        UnknownTopicOrPartitionError(),
        HeldBehind("an earlier message of key b'case-1' was not sent"),
        TimeoutError("not acknowledged in time"),
    ],
)
def test_a_failure_that_may_pass_is_left_as_it_is(error: Exception) -> None:
    assert delivery_failure(error) is error


def test_a_partial_publish_names_what_was_not_stored_and_the_first_reason() -> None:
    failed = PublishFailed({3: TimeoutError("late"), 1: Unpublishable("too large")})
    assert set(failed.failures) == {1, 3}
    assert str(failed) == "2 message(s) not stored; the first: Unpublishable('too large')"
