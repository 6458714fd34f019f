"""The event bus: one interface, two backends (Apache Kafka, and the embedded durable log)."""

from shared.messaging.bus.base import (
    Bus,
    HeldBehind,
    Message,
    PublishFailed,
    Record,
    Subscription,
    TopicSpec,
    Unpublishable,
)

__all__ = [
    "Bus",
    "HeldBehind",
    "Message",
    "PublishFailed",
    "Record",
    "Subscription",
    "TopicSpec",
    "Unpublishable",
]
