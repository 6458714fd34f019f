"""The event bus: one interface, two backends (Apache Kafka, and the embedded durable log)."""

from shared.messaging.bus.base import Bus, Message, Record, Subscription, TopicSpec

__all__ = ["Bus", "Message", "Record", "Subscription", "TopicSpec"]
