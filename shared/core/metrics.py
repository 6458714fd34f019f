"""Prometheus metrics of the messaging backbone, shared by every service in a process."""

from __future__ import annotations

from prometheus_client import Counter

OUTBOX_PUBLISHED = Counter("citycase_outbox_published_total", "Outbox messages published to the bus.", ["service"])
EVENTS_CONSUMED = Counter(
    "citycase_events_consumed_total",
    "Records a consumer read, by outcome (applied, duplicate, ignored, dead_lettered).",
    ["consumer", "outcome"],
)
