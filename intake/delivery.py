"""Delivering what intake sends other systems (``intake.outbound``): the hotlines' receipts, status
changes and replies, and the departments' case changes.

Intake owns it because intake made the messages: it is the service that follows every event of
every case and keeps the hotline's work order, and the schedule belongs beside the case file that
fills it. Two parts, both in every intake process:

- The **schedule**: a consumer of the integration topic writes each message into ``deliveries``,
  once (its id is the key), due at once, in the order the case's messages were made.
- The **sender**: it picks the rows that are due and first in line for their endpoint and case
  (an earlier undelivered row of the same endpoint and case, dead or waiting for its next attempt,
  holds the later ones back: a hotline never hears "closed" before "dispatched"), at most
  ``delivery_concurrency_per_endpoint`` of one endpoint at once (a hanging endpoint holds its own
  share of the sender, not all of it), holds each under a lease while it sends, so several intake
  processes never send one row at once, signs it for its endpoint, and posts it with its
  idempotency key (``Idempotency-Key``, and ``webhook-id`` under Standard Webhooks): the same key
  on every attempt, so a receiver that got a message whose answer was lost knows the retry for
  what it is. A 2xx answer delivers it. Anything else (another status, no answer within the
  endpoint's timeout, no connection) is a failed attempt, recorded with its reason; the next is
  due after ``first_delay * 2**(n-1)`` seconds, capped at ``max_delay``, with equal jitter (half
  of that, plus a random part of the other half), kept in the row so a restart loses nothing.
  After ``max_age`` of trying (and, where the endpoint sets one, after ``max_attempts``), the row
  is dead, with the reason, and the rows behind it wait until an operator redrives it
  (``python -m services deliveries redrive``, ``POST /intake/deliveries/redrive``) or, when the
  endpoint will never take it, discards it (``deliveries discard``, ``POST
  /intake/deliveries/discard``: who, when and why are kept with the row).

The age counts from the first attempt, not from when the message was made: a message that waited
behind another for a day still gets its own tries, and a redriven one a fresh set.

The schedule is on the city's clock (a simulated city retries on simulated time). The lease is not:
it covers an HTTP exchange, whose timeout runs in real time, so it is taken and checked on the
system clock. A simulated city's clock may run many times faster than the request, and a lease on
it would run out while the request is still in flight, letting another sender post the same
message at once.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import random
from collections import Counter as Tally
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID

import httpx
from prometheus_client import Counter, Gauge
from sqlalchemy import ColumnElement, Select, and_, delete, exists, func, select, union_all, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import RowMapping

from intake.models import deliveries
from intake.outbound import OutboundMessage
from shared.core import tracing
from shared.core.clock import Clock, SystemClock
from shared.core.errors import DomainError, NotFound
from shared.core.ids import new_id
from shared.core.logs import SERVICE, working_on
from shared.core.settings import Mode
from shared.db.keyset import Keyset, Page, Position
from shared.events.envelope import Event
from shared.integration.endpoints import Endpoint, Integrations, RetryPolicy
from shared.integration.signing import IDEMPOTENCY_KEY, sign
from shared.messaging.store import ServiceStore, Transaction
from shared.service.context import ServiceContext

log = logging.getLogger(__name__)

DELIVERIES_PENDING = Gauge(
    "citycase_deliveries_pending",
    "Messages for another system not delivered yet and not dead, per endpoint. Every intake process"
    " reports the whole table as it last read it: aggregate with max, not sum.",
    ["endpoint"],
)
DELIVERIES_OLDEST_PENDING_SECONDS = Gauge(
    "citycase_deliveries_oldest_pending_seconds",
    "Age of the oldest message still to be delivered to the endpoint (dead ones not counted); 0 when none.",
    ["endpoint"],
)
DELIVERIES_DEAD = Gauge(
    "citycase_deliveries_dead",
    "Messages given up on (dead letters), waiting for a redrive, per endpoint; the later messages of"
    " their cases wait behind them.",
    ["endpoint"],
)
DELIVERY_ATTEMPTS = Counter(
    "citycase_delivery_attempts_total", "Requests made to deliver a message, per endpoint.", ["endpoint"]
)
DELIVERY_FAILURES = Counter(
    "citycase_delivery_failures_total",
    "Attempts that did not deliver, per endpoint and reason (status_4xx, status_5xx, status_other,"
    " timeout, connection, error, not_configured).",
    ["endpoint", "reason"],
)

# How long past its endpoint's timeout a sender's lease on a row lasts: a sender that died while
# sending lets another take the row over after that.
_LEASE_MARGIN = timedelta(seconds=5)
# What of an endpoint's answer to a failed attempt is kept with the row (for an operator).
_ANSWER_KEPT = 300
_METRICS_EVERY_S = 10.0
_PURGE_EVERY_S = 300.0


class DeliveryState(StrEnum):
    """Where a message for another system stands."""

    PENDING = "pending"  # due at ``next_attempt_at``, or waiting behind an earlier one of its case
    DELIVERED = "delivered"
    DEAD = "dead"  # given up on, with the reason; redriven (or discarded) by an operator
    DISCARDED = "discarded"  # a dead message an operator chose never to send: who, when and why kept


# The states that hold the later messages of their endpoint and case back.
UNDELIVERED = (DeliveryState.PENDING, DeliveryState.DEAD)


class NotDead(DomainError):
    """Only a dead message is discarded: a pending one may still be delivered, a delivered one was."""

    status = 409
    code = "not_dead"


# --- the rules ------------------------------------------------------------------------------


def backoff(policy: RetryPolicy, failed_attempts: int, rng: random.Random) -> timedelta:
    """How long to wait after ``failed_attempts`` failures before the next attempt: exponential
    (``first_delay * 2**(n-1)``, capped at ``max_delay``), with equal jitter: half of that, plus a
    random part of the other half. The random half keeps the retries of many messages to an
    endpoint that was down from all coming back at once; the fixed half keeps each message's
    retries spaced out as they grow (full jitter may pick a wait near none again and again, and
    spend a message's attempts in minutes)."""
    half = policy.ceiling(failed_attempts) / 2
    return timedelta(seconds=half + rng.uniform(0, half))


@dataclass(frozen=True, slots=True)
class Failure:
    """Why an attempt did not deliver: a reason (the metric's label), the status if the endpoint
    answered, and what happened, for an operator."""

    reason: str
    detail: str
    status: int | None = None

    @classmethod
    def of_status(cls, status: int, answer: bytes) -> Failure:
        """The endpoint answered with a status other than 2xx."""
        family = {4: "status_4xx", 5: "status_5xx"}.get(status // 100, "status_other")
        text = answer[:_ANSWER_KEPT].decode("utf-8", errors="replace").strip()
        return cls(family, f"HTTP {status}" + (f": {text}" if text else ""), status)


@dataclass(frozen=True, slots=True)
class Attempted:
    """A row's columns after a failed attempt: due again later, or dead."""

    changes: dict[str, Any]
    dead: bool


def after_failure(
    policy: RetryPolicy,
    *,
    attempts: int,
    first_attempt_at: datetime,
    now: datetime,
    failure: Failure,
    rng: random.Random,
) -> Attempted:
    """The row after its ``attempts``-th attempt failed at ``now``: dead when its tries have lasted
    ``max_age`` or that was its last attempt (where the policy counts them), else due again after
    the backoff."""
    changes: dict[str, Any] = {
        "attempts": attempts,
        "first_attempt_at": first_attempt_at,
        "last_attempt_at": now,
        "last_status": failure.status,
        "last_error": failure.detail,
    }
    tried_for = now - first_attempt_at
    out_of_attempts = policy.max_attempts is not None and attempts >= policy.max_attempts
    too_old = policy.max_age_hours is not None and tried_for >= timedelta(hours=policy.max_age_hours)
    if out_of_attempts or too_old:
        of = "" if policy.max_attempts is None else f" of {policy.max_attempts}"
        reason = f"{failure.detail} (attempt {attempts}{of}, tried for {_span(tried_for)})"
        return Attempted({**changes, "state": DeliveryState.DEAD, "dead_at": now, "dead_reason": reason}, True)
    return Attempted({**changes, "next_attempt_at": now + backoff(policy, attempts, rng)}, False)


def _span(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{seconds:02d}s"


def first_in_line() -> ColumnElement[bool]:
    """Whether a row is the first undelivered one of its endpoint and case: no earlier row of the
    same endpoint and case is pending or dead (a delivered or discarded one is done with). Only
    such a row is sent (per-case order)."""
    earlier = deliveries.alias("earlier")
    return ~exists().where(
        earlier.c.endpoint == deliveries.c.endpoint,
        earlier.c.case_id == deliveries.c.case_id,
        earlier.c.seq < deliveries.c.seq,
        earlier.c.state.in_(UNDELIVERED),
    )


# --- what intake refuses to start with ------------------------------------------------------


def check_integrations(ctx: ServiceContext) -> None:
    """Refuse to start intake with integrations that would fail it later: a secret missing from
    its environment (the other services' processes read none); in production, with anything to
    send, photo links that point at this machine or messages that cross the network in the clear.
    """
    ctx.integrations.resolve_secrets()
    settings = ctx.settings
    if settings.mode is not Mode.PRODUCTION or not ctx.integrations.endpoints:
        return
    problems = plain_sending(settings.public_url, ctx.integrations.endpoints, settings.allow_plain_http_endpoints)
    if problems:
        raise RuntimeError("production sends messages to other systems, but:\n  " + "\n  ".join(problems))


def plain_sending(public_url: str, endpoints: Iterable[Endpoint], allow_plain_http: bool) -> list[str]:
    """What production refuses in what intake sends: a public url on this machine (every photo
    link in a reply would point the receiver at itself), and plain http to another machine: a
    work order's description, its place and a case's details are the citizens' and would travel
    unencrypted (the signature proves who sent a message, it hides nothing), and the hotline
    fetches the photos with its account's token. Loopback is this machine, so never on the wire;
    ``allow_plain_http`` is for a network the city runs itself."""
    problems = []
    link = urlsplit(public_url)
    if _on_this_machine(link.hostname):
        problems.append(
            f"CITYCASE_PUBLIC_URL is {public_url}, this machine: the photo links sent with the replies would"
            " point the hotline at itself; set it to the address the city is reached at from outside"
        )
    elif link.scheme == "http" and not allow_plain_http:
        problems.append(
            f"CITYCASE_PUBLIC_URL {public_url} is plain http: the hotline fetches the photos with its"
            " account's token, which would travel unencrypted; use https (or"
            " CITYCASE_ALLOW_PLAIN_HTTP_ENDPOINTS=true on a network the city runs itself)"
        )
    for endpoint in endpoints:
        url = urlsplit(endpoint.url)
        if url.scheme == "http" and not allow_plain_http and not _on_this_machine(url.hostname):
            problems.append(
                f"{endpoint.name} is plain http ({endpoint.url}): the citizens' descriptions and places would"
                " travel unencrypted; use https (or CITYCASE_ALLOW_PLAIN_HTTP_ENDPOINTS=true on a network the"
                " city runs itself)"
            )
    return problems


def _on_this_machine(host: str | None) -> bool:
    if host is None:
        return False
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# --- the schedule: the integration topic into ``deliveries`` --------------------------------


async def schedule(tx: Transaction, events: Sequence[Event]) -> None:
    """Write each message of the integration topic as a delivery due now, in the order they came
    (a case's messages are in order on the topic); a message written before changes nothing."""
    now = tx.clock.now()
    rows = [_row(event.data, now) for event in events if isinstance(event.data, OutboundMessage)]
    if not rows:
        return
    insert = postgresql.insert(deliveries) if tx.on_postgresql else sqlite.insert(deliveries)
    await tx.connection.execute(insert.on_conflict_do_nothing(index_elements=["message_id"]), rows)


async def schedule_one(tx: Transaction, event: Event) -> None:
    """Schedule one message (a batch of one)."""
    await schedule(tx, [event])


def _row(message: OutboundMessage, now: datetime) -> dict[str, Any]:
    return {
        "message_id": message.message_id,
        "endpoint": message.endpoint,
        "case_id": message.case_id,
        "kind": message.kind.value,
        # Written once: every attempt sends (and signs) the same bytes.
        "body": json.dumps(message.body, ensure_ascii=False, separators=(",", ":")),
        "state": DeliveryState.PENDING,
        "created_at": now,
        "attempts": 0,
        "next_attempt_at": now,
    }


# --- the sender -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Claimed:
    """A row this sender holds under its lease while it sends it."""

    seq: int
    message_id: UUID
    endpoint: str
    case_id: UUID
    body: str
    attempts: int
    first_attempt_at: datetime | None
    claim: UUID


class Sender:
    """Sends the due deliveries of one intake process until cancelled."""

    def __init__(
        self,
        store: ServiceStore,
        integrations: Integrations,
        clock: Clock,
        *,
        concurrency: int = 16,
        per_endpoint: int = 4,
        poll_seconds: float = 1.0,
        retention: timedelta = timedelta(days=7),
        transport: httpx.AsyncBaseTransport | None = None,
        rng: random.Random | None = None,
        lease_clock: Clock | None = None,
    ) -> None:
        self.store = store
        self.integrations = integrations
        self.clock = clock
        # The lease covers a request, which runs in real time whatever the city's clock does.
        self.lease_clock = lease_clock or SystemClock()
        self.concurrency = concurrency
        self.per_endpoint = per_endpoint
        self.poll_seconds = poll_seconds
        self.retention = retention
        self.rng = rng or random.Random()
        # Redirects are not followed: a webhook that moved is a failure an operator should see.
        self.client = httpx.AsyncClient(transport=transport, follow_redirects=False)
        # The lease outlasts the slowest endpoint's timeout.
        slowest = max((endpoint.retry.timeout_seconds for endpoint in integrations.endpoints), default=10.0)
        self.lease = timedelta(seconds=slowest) + _LEASE_MARGIN
        self._in_flight: dict[asyncio.Task[None], _Claimed] = {}

    @classmethod
    def of(cls, ctx: ServiceContext) -> Sender:
        """The sender of a running intake service, tuned by its settings."""
        settings = ctx.settings
        return cls(
            ctx.store,
            ctx.integrations,
            ctx.clock,
            concurrency=settings.delivery_concurrency,
            per_endpoint=settings.delivery_concurrency_per_endpoint,
            poll_seconds=settings.delivery_poll_seconds,
            retention=timedelta(hours=settings.delivery_retention_hours),
        )

    async def run(self) -> None:
        """Send what is due, as many at once as ``concurrency`` allows, forever; the metrics every
        few seconds, and delivered rows past their retention cleared now and then."""
        SERVICE.set(self.store.service)  # in the log lines of this task (its own context) for its life
        loop = asyncio.get_running_loop()
        last_metrics = last_purge = -float("inf")
        try:
            while True:
                try:
                    started = await self.start_due()
                    if loop.time() - last_metrics > _METRICS_EVERY_S:
                        await self.refresh_metrics()
                        last_metrics = loop.time()
                    if loop.time() - last_purge > _PURGE_EVERY_S:
                        await self.purge_delivered()
                        last_purge = loop.time()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.warning("the delivery sender failed a round; trying again", exc_info=True)
                    started = 0
                if not started:
                    await self._wait(self.poll_seconds)
        finally:
            await self.close()

    async def start_due(self) -> int:
        """Claim the rows that are due and first in line, as many as there are free places (and
        each endpoint has places left), and start sending them; the number started."""
        free = self.concurrency - len(self._in_flight)
        if free <= 0:
            return 0
        claimed = await self._claim(free, list(self._in_flight.values()))
        for row in claimed:
            task = asyncio.create_task(self._deliver(row), name=f"delivery-{row.message_id}")
            self._in_flight[task] = row
            task.add_done_callback(self._in_flight.pop)
        return len(claimed)

    async def send_due(self) -> int:
        """Send every row that is due now, and wait for the answers; the number sent (tests and
        tools: the running sender does this continuously)."""
        sent = 0
        while started := await self.start_due():
            sent += started
            await self._wait(None)
        await self._wait(None)
        return sent

    async def _wait(self, timeout_s: float | None) -> None:
        """Until a request in flight ends (or all, when ``timeout_s`` is None), or ``timeout_s``."""
        if not self._in_flight:
            if timeout_s is not None:
                await asyncio.sleep(timeout_s)
            return
        when = asyncio.ALL_COMPLETED if timeout_s is None else asyncio.FIRST_COMPLETED
        await asyncio.wait(list(self._in_flight), timeout=timeout_s, return_when=when)

    async def close(self) -> None:
        """Stop the requests in flight and hand their rows back (due again at once), and close the
        HTTP client."""
        claims = [row.claim for row in self._in_flight.values()]
        tasks = list(self._in_flight)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if claims:
            try:
                async with self.store.transaction() as tx:
                    await tx.connection.execute(
                        update(deliveries).where(deliveries.c.claim.in_(claims)).values(claim=None, claimed_until=None)
                    )
            except Exception:  # the leases run out by themselves
                log.warning("could not hand back %d delivery lease(s)", len(claims), exc_info=True)
        await self.client.aclose()

    async def _claim(self, limit: int, in_flight: Sequence[_Claimed]) -> list[_Claimed]:
        """Take up to ``limit`` due rows first in line under a new lease, soonest due first, at
        most ``per_endpoint`` of an endpoint counting those ``in_flight`` (which are never taken
        again while this sender still sends them, whatever their lease says).

        One statement: a row another sender claimed meanwhile no longer matches when this one
        gets to it (PostgreSQL checks the condition again on the row it waited for; SQLite runs
        one writer at a time), so two senders never hold one row.
        """
        now = self.clock.now()
        leased_at = self.lease_clock.now()
        claim = new_id()
        unclaimed = (deliveries.c.claimed_until.is_(None)) | (deliveries.c.claimed_until <= leased_at)
        conditions = [
            deliveries.c.state == DeliveryState.PENDING,
            deliveries.c.next_attempt_at <= now,
            unclaimed,
            first_in_line(),
        ]
        if in_flight:
            conditions.append(deliveries.c.seq.not_in([row.seq for row in in_flight]))
        busy = Tally(row.endpoint for row in in_flight)
        configured = [endpoint.name for endpoint in self.integrations.endpoints]
        # The soonest due of each endpoint, as many as it has places left: one short read each on
        # the index of due rows per endpoint, however long another endpoint's backlog.
        each = [
            _soonest([*conditions, deliveries.c.endpoint == name], self.per_endpoint - busy[name])
            for name in configured
            if busy[name] < self.per_endpoint
        ]
        # Rows of an endpoint no longer configured are taken too: they are dead at once, unsent.
        each.append(_soonest([*conditions, deliveries.c.endpoint.not_in(configured)], self.per_endpoint))
        candidates = union_all(*each).subquery()
        due = (
            select(candidates.c.seq)
            .order_by(candidates.c.next_attempt_at, candidates.c.seq)
            .limit(limit)
            # Its own query, run once: not correlated with the rows the update walks.
            .correlate(None)
        )
        statement = (
            update(deliveries)
            .where(deliveries.c.seq.in_(due.scalar_subquery()), deliveries.c.state == DeliveryState.PENDING, unclaimed)
            .values(claim=claim, claimed_until=leased_at + self.lease)
            .returning(
                deliveries.c.seq,
                deliveries.c.message_id,
                deliveries.c.endpoint,
                deliveries.c.case_id,
                deliveries.c.body,
                deliveries.c.attempts,
                deliveries.c.first_attempt_at,
            )
        )
        async with self.store.transaction() as tx:
            rows = (await tx.connection.execute(statement)).all()
        claimed = [
            _Claimed(
                row.seq, row.message_id, row.endpoint, row.case_id, row.body, row.attempts, row.first_attempt_at, claim
            )
            for row in rows
        ]
        return sorted(claimed, key=lambda row: row.seq)

    async def _deliver(self, row: _Claimed) -> None:
        """Send one row and record what came of it. Should the record fail (the database away),
        the row stays leased until the lease runs out, and is sent again then. While tracing, the
        attempt is a trace of its own (the row does not keep its case's)."""
        attributes = {"citycase.endpoint": row.endpoint, "citycase.case_id": str(row.case_id)}
        with working_on(case_id=row.case_id, event_id=row.message_id), tracing.span("delivery", attributes):
            try:
                await self._attempt(row)
            except Exception:
                log.warning(
                    "delivery %s to %s: the attempt was not recorded", row.message_id, row.endpoint, exc_info=True
                )

    async def _attempt(self, row: _Claimed) -> None:
        try:
            endpoint = self.integrations.endpoint(row.endpoint)
        except KeyError:
            await self._record_dead(row, Failure("not_configured", f"no endpoint {row.endpoint} in integrations.yaml"))
            return
        DELIVERY_ATTEMPTS.labels(row.endpoint).inc()
        failed = await self._post(endpoint, row)
        if failed is None:
            await self._record_delivered(row)
            return
        DELIVERY_FAILURES.labels(row.endpoint, failed.reason).inc()
        await self._record_failure(row, endpoint.retry, failed)

    async def _post(self, endpoint: Endpoint, row: _Claimed) -> Failure | None:
        """One attempt: None when the endpoint answered 2xx, else why not."""
        body = row.body.encode()
        message_id = str(row.message_id)
        headers = {
            "content-type": "application/json",
            IDEMPOTENCY_KEY: message_id,
            **sign(endpoint.signer, message_id, self.clock.now(), body),
        }
        timeout = endpoint.retry.timeout_seconds
        try:
            # The whole exchange within the timeout: httpx's own applies to each read, and an
            # endpoint that trickles its answer would hold the row far longer.
            async with asyncio.timeout(timeout):
                request = self.client.build_request(
                    "POST", endpoint.url, content=body, headers=headers, timeout=timeout
                )
                response = await self.client.send(request, stream=True)
                try:
                    if response.is_success:
                        return None
                    return Failure.of_status(response.status_code, await _beginning(response))
                finally:
                    await response.aclose()
        except (TimeoutError, httpx.TimeoutException):
            return Failure("timeout", f"no answer within {timeout:g} s")
        except httpx.TransportError as exc:
            return Failure("connection", _described(exc))
        except Exception as exc:  # whatever an endpoint's answer makes the client raise is its failure
            return Failure("error", _described(exc))

    async def _record_delivered(self, row: _Claimed) -> None:
        now = self.clock.now()
        await self._record(
            row,
            state=DeliveryState.DELIVERED,
            attempts=row.attempts + 1,
            first_attempt_at=row.first_attempt_at or now,
            last_attempt_at=now,
            delivered_at=now,
            last_error=None,
        )

    async def _record_failure(self, row: _Claimed, policy: RetryPolicy, failure: Failure) -> None:
        now = self.clock.now()
        attempted = after_failure(
            policy,
            attempts=row.attempts + 1,
            first_attempt_at=row.first_attempt_at or now,
            now=now,
            failure=failure,
            rng=self.rng,
        )
        await self._record(row, **attempted.changes)
        if attempted.dead:
            log.error(
                "delivery %s to %s is dead; the later messages of its case wait for a redrive: %s",
                row.message_id,
                row.endpoint,
                attempted.changes["dead_reason"],
            )

    async def _record_dead(self, row: _Claimed, failure: Failure) -> None:
        DELIVERY_FAILURES.labels(row.endpoint, failure.reason).inc()
        now = self.clock.now()
        await self._record(row, state=DeliveryState.DEAD, dead_at=now, dead_reason=failure.detail)
        log.error("delivery %s is dead: %s", row.message_id, failure.detail)

    async def _record(self, row: _Claimed, **changes: Any) -> None:
        """Write the outcome, and end the lease, if the row is still this sender's (a sender whose
        lease ran out lets the outcome of the one that took over stand)."""
        async with self.store.transaction() as tx:
            await tx.connection.execute(
                update(deliveries)
                .where(deliveries.c.seq == row.seq, deliveries.c.claim == row.claim)
                .values(claim=None, claimed_until=None, **changes)
            )

    async def refresh_metrics(self) -> None:
        """Read the rows to be delivered and the dead ones, per endpoint, into the gauges."""
        now = self.clock.now()
        query = (
            select(deliveries.c.endpoint, deliveries.c.state, func.count(), func.min(deliveries.c.created_at))
            .where(deliveries.c.state.in_(UNDELIVERED))
            .group_by(deliveries.c.endpoint, deliveries.c.state)
        )
        async with self.store.engine.connect() as connection:
            rows = (await connection.execute(query)).all()
        endpoints = {endpoint.name for endpoint in self.integrations.endpoints} | {row[0] for row in rows}
        for name in endpoints:
            DELIVERIES_PENDING.labels(name).set(0)
            DELIVERIES_DEAD.labels(name).set(0)
            DELIVERIES_OLDEST_PENDING_SECONDS.labels(name).set(0)
        for endpoint, state, count, oldest in rows:
            if state == DeliveryState.DEAD:
                DELIVERIES_DEAD.labels(endpoint).set(count)
            else:
                DELIVERIES_PENDING.labels(endpoint).set(count)
                DELIVERIES_OLDEST_PENDING_SECONDS.labels(endpoint).set(max((now - oldest).total_seconds(), 0.0))

    async def purge_delivered(self) -> int:
        """Delete the delivered rows older than the retention; the number deleted. (Only the
        undelivered rows hold later ones back; the topic's consumer remembers the message ids.)"""
        before = self.clock.now() - self.retention
        async with self.store.transaction() as tx:
            result = await tx.connection.execute(
                delete(deliveries).where(
                    deliveries.c.state == DeliveryState.DELIVERED, deliveries.c.delivered_at < before
                )
            )
        return int(getattr(result, "rowcount", 0) or 0)


def _soonest(conditions: Sequence[ColumnElement[bool]], count: int) -> Select[tuple[int, datetime]]:
    """The ``count`` soonest due rows meeting ``conditions`` (their seq and due time), as a query
    of its own (a member of a UNION ALL takes no LIMIT of its own on SQLite)."""
    soonest = (
        select(deliveries.c.seq, deliveries.c.next_attempt_at)
        .where(*conditions)
        .order_by(deliveries.c.next_attempt_at, deliveries.c.seq)
        .limit(count)
        .correlate(None)
        .subquery()
    )
    return select(soonest.c.seq, soonest.c.next_attempt_at)


def _described(error: Exception) -> str:
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


async def _beginning(response: httpx.Response) -> bytes:
    """The first bytes of an answer, for the record (an endpoint may answer with anything)."""
    kept = b""
    async for chunk in response.aiter_bytes():
        kept += chunk
        if len(kept) >= _ANSWER_KEPT:
            break
    return kept[:_ANSWER_KEPT]


# --- operators: what is pending or dead, and the redrive -----------------------------------


@dataclass(frozen=True, slots=True)
class Selection:
    """Which deliveries an operator means: of an endpoint, of a case, or these message ids (any
    together narrow each other)."""

    endpoint: str | None = None
    case_id: UUID | None = None
    ids: tuple[UUID, ...] = ()

    @property
    def is_empty(self) -> bool:
        """Whether it names nothing (a redrive of everything must be asked for by name)."""
        return self.endpoint is None and self.case_id is None and not self.ids

    def conditions(self) -> list[Any]:
        """The selection as SQL conditions."""
        conditions = []
        if self.endpoint is not None:
            conditions.append(deliveries.c.endpoint == self.endpoint)
        if self.case_id is not None:
            conditions.append(deliveries.c.case_id == self.case_id)
        if self.ids:
            conditions.append(deliveries.c.message_id.in_(self.ids))
        return conditions


# The operators' lists of deliveries, oldest first (ties by message id).
OLDEST_FIRST = Keyset(deliveries.c.created_at, deliveries.c.message_id)


async def listed(
    store: ServiceStore, state: DeliveryState, selection: Selection, limit: int, after: Position | None = None
) -> Page:
    """A page of the deliveries in ``state`` (pending, dead or discarded) among ``selection``,
    oldest first."""
    query = select(deliveries).where(deliveries.c.state == state, *selection.conditions())
    return await OLDEST_FIRST.read(store.engine, query, after, limit)


async def unknown_ids(store: ServiceStore, ids: Sequence[UUID]) -> list[UUID]:
    """The message ids among ``ids`` that name no delivery."""
    if not ids:
        return []
    query = select(deliveries.c.message_id).where(deliveries.c.message_id.in_(ids))
    async with store.engine.connect() as connection:
        known = set((await connection.execute(query)).scalars())
    return [message_id for message_id in ids if message_id not in known]


async def redrive(store: ServiceStore, clock: Clock, selection: Selection) -> list[RowMapping]:
    """Give the dead deliveries of ``selection`` a fresh set of attempts, the first due now (the
    rows waiting behind them follow once they are delivered); the rows redriven."""
    now = clock.now()
    statement = (
        update(deliveries)
        .where(and_(deliveries.c.state == DeliveryState.DEAD, *selection.conditions()))
        .values(
            state=DeliveryState.PENDING,
            attempts=0,
            first_attempt_at=None,
            next_attempt_at=now,
            dead_at=None,
            dead_reason=None,
        )
        .returning(*deliveries.c)
    )
    async with store.transaction() as tx:
        rows = list((await tx.connection.execute(statement)).mappings().all())
    return sorted(rows, key=lambda row: row["seq"])


async def discard(store: ServiceStore, clock: Clock, ids: Sequence[UUID], by: str, reason: str) -> list[RowMapping]:
    """Give up on the dead deliveries ``ids`` for good: each is marked discarded, by whom, when and
    why, and no longer holds the later messages of its case back. For a message its endpoint will
    never take (it refuses its content), which a redrive would only send to its death again.

    :class:`~shared.core.errors.NotFound` for an id that names no delivery, :class:`NotDead` for
    one that is not dead (pending, delivered, or discarded already); nothing is discarded then.
    """
    now = clock.now()
    async with store.transaction() as tx:
        named = select(deliveries.c.message_id, deliveries.c.state).where(deliveries.c.message_id.in_(ids))
        found = {row.message_id: row.state for row in await tx.connection.execute(named)}
        unknown = [str(message_id) for message_id in ids if message_id not in found]
        if unknown:
            raise NotFound("no message with these ids", {"ids": unknown})
        alive = {str(message_id): state for message_id, state in found.items() if state != DeliveryState.DEAD}
        if alive:
            raise NotDead("only dead messages are discarded; these are not dead", {"states": alive})
        statement = (
            update(deliveries)
            .where(deliveries.c.message_id.in_(ids), deliveries.c.state == DeliveryState.DEAD)
            .values(state=DeliveryState.DISCARDED, discarded_at=now, discarded_by=by, discard_reason=reason)
            .returning(*deliveries.c)
        )
        rows = sorted((await tx.connection.execute(statement)).mappings().all(), key=lambda row: row["seq"])
    for row in rows:
        log.warning(
            "delivery %s to %s (case %s) discarded by %s: %s",
            row["message_id"],
            row["endpoint"],
            row["case_id"],
            by,
            reason,
        )
    return rows
