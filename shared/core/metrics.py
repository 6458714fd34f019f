"""The Prometheus metrics every service of a process shares: the messaging backbone, the timers and
the HTTP answers."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

OUTBOX_PUBLISHED = Counter("citycase_outbox_published_total", "Outbox messages published to the bus.", ["service"])
# The outbox's state as every process running the service last read it (every few seconds, apart
# from the relay, so a stalled relay still moves them): aggregate with max, not sum.
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
OUTBOX_PUBLISH_FAILURES = Counter(
    "citycase_outbox_publish_failures_total",
    "Publishes of outbox rows the bus did not store, by reason: refused (the bus refuses a row for good;"
    " it is charged an attempt), timeout (not acknowledged in time), unavailable (any other failure that"
    " may pass: the broker down or unreachable).",
    ["service", "reason"],
)
CONSUMER_LAG = Gauge(
    "citycase_consumer_lag_records",
    "Records of a partition the consumer has not applied yet: the partition's end offset minus the"
    " consumer group's committed offset (the stream's own stored position). Read every few seconds by"
    " every process running the consumer, apart from the consumer's loop, so a stopped consumer shows"
    " a growing lag: aggregate with max, not sum.",
    ["consumer", "topic", "partition"],
)
STREAM_LAST_APPLIED = Gauge(
    "citycase_stream_last_applied_timestamp_seconds",
    "When the last event the stream applied was appended to the log (unix seconds): the state is as"
    " fresh as that. Stale only while the lag is above zero; a quiet city applies nothing.",
    ["consumer"],
)
TIMER_DUE = Gauge(
    "citycase_timer_due",
    "Deadlines passed that the service's timer has not reported yet (it reports every few seconds).",
    ["service", "timer"],
)
TIMER_OLDEST_DUE_SECONDS = Gauge(
    "citycase_timer_oldest_due_seconds",
    "How long ago the earliest unreported deadline passed, on the city's clock; 0 when none is due.",
    ["service", "timer"],
)
HTTP_REQUESTS = Counter(
    "citycase_http_requests_total",
    "HTTP requests answered, by method, route template (the mount's prefix included; 'unmatched' when"
    " no route took it, 'console' for the console's pages) and status code.",
    ["method", "route", "status"],
)
HTTP_REQUEST_DURATION = Histogram(
    "citycase_http_request_duration_seconds",
    "Time from a request's arrival to the end of its answer, by method and route template.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
