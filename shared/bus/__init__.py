"""The event bus: one interface, two backends (Apache Kafka, and the embedded durable log)."""

from shared.bus.base import Bus, Message, Record, Subscription, TopicSpec

__all__ = ["Bus", "Message", "Record", "Subscription", "TopicSpec"]
