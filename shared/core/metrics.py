"""Prometheus metrics of the messaging backbone, shared by every service in a process."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

OUTBOX_PUBLISHED = Counter("citycase_outbox_published_total", "Outbox messages published to the bus.", ["service"])
# The outbox's state as the relay last read it (every few seconds, in the process that relays).
OUTBOX_PARKED_ROWS = Gauge(
    "citycase_outbox_parked_rows",
    "Outbox rows parked because the bus refuses them for good; they and the later rows of their case wait.",
    ["service"],
)
OUTBOX_BACKLOG_ROWS = Gauge(
    "citycase_outbox_backlog_rows", "Outbox rows waiting to be published, parked rows not counted.", ["service"]
)
OUTBOX_OLDEST_UNSENT_SECONDS = Gauge(
    "citycase_outbox_oldest_unsent_seconds",
    "Age of the oldest outbox row waiting to be published (parked rows not counted); 0 when none waits.",
    ["service"],
)
OUTBOX_PARKED = Counter("citycase_outbox_parked_total", "Outbox rows the relay parked.", ["service"])
EVENTS_CONSUMED = Counter(
    "citycase_events_consumed_total",
    "Records a consumer read, by outcome (applied, duplicate, ignored, refused, dead_lettered).",
    ["consumer", "outcome"],
)
DEAD_LETTERS_PENDING = Gauge(
    "citycase_dead_letters_pending",
    "Dead letters not redriven yet, by the consumer that gave up on them. Every process reports the"
    " whole dead-letter topic as it last read it: aggregate with max, not sum.",
    ["consumer"],
)
