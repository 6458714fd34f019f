"""The filing floor: ``python -m bench.floor --port P --topic T``, a measuring instrument, not a
service. A bare FastAPI endpoint doing the durable work of an inspector's filing and nothing else,
so that intake's figures can be read as a ratio to what this stack cannot go below on this machine.

Served like the services (uvicorn, uvloop, httptools, its own process; settings from the same
``CITYCASE_*`` environment), ``POST /floor/reports`` takes the very requests the benchmark sends to
``POST /intake/reports`` and, per request:

- parses the same JSON body into a pydantic model (the fields and bounds of intake's
  ``InspectorReportIn``), and checks the category is the city's;
- verifies the bearer token with PyJWT's ``jwt.decode``, the secret, algorithm, issuer and
  required claims of ``shared.core.auth``;
- places the point in its cell with ``City.locate``, the lookup intake uses;
- writes, in ONE asyncpg transaction on a fixed pool, the report, the case and two outbox rows
  (tables of its own in schema ``floor``, shaped like intake's, with their keys and indexes; each
  outbox row carries a JSON payload and CloudEvents-like headers of the size intake's have);
- answers 201 with a small JSON body.

And a relay in the same process: a loop reading unsent outbox rows in batches (woken by each
commit, else every 0.2 s as intake's relay polls), publishing them with aiokafka (``acks=all``,
idempotent, ``linger_ms=5``, as ``KafkaBus``) to a topic of its own, keyed by case, and marking them
sent.

Left out, relative to intake: the resend lookup by ``client_ref`` (the unique key still guards
it), duplicate detection, deadlines from the working calendar, case numbers from reserved blocks (a
counter here), the CloudEvents envelopes and the event catalogue's validation, the request guard,
metrics, logs and tracing, SQLAlchemy, intake's consumer keeping the case file, its timers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated, Any

import asyncpg
import jwt
import uvicorn
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from fastapi import FastAPI, Header, HTTPException
from pydantic import BaseModel, ConfigDict, Field

from services.tools.launcher import stop_with_parent
from shared.city.loader import load_city
from shared.core.settings import Settings

# What shared.core.auth signs with and asks of every token.
_ALGORITHM = "HS256"
_ISSUER = "citycase"
_REQUIRED_CLAIMS = ["exp", "sub", "role", "kind"]
_RELAY_BATCH = 500
_RELAY_POLL_S = 0.2
_TOPIC_ALREADY_EXISTS = 36

_SCHEMA = """
DROP SCHEMA IF EXISTS floor CASCADE;
CREATE SCHEMA floor;
CREATE TABLE floor.reports (
    id uuid PRIMARY KEY, source varchar(16) NOT NULL, reporter_id varchar(64), client_ref varchar(64),
    category_code varchar(32) NOT NULL, description text NOT NULL, lon float8 NOT NULL, lat float8 NOT NULL,
    cell_id varchar(32) NOT NULL, community_id varchar(32) NOT NULL, street_id varchar(32) NOT NULL,
    district_id varchar(32) NOT NULL, photos json NOT NULL, self_handled boolean NOT NULL,
    status varchar(24) NOT NULL, received_at timestamptz NOT NULL, case_number varchar(32) UNIQUE,
    decided_at timestamptz, filing_deadline timestamptz,
    CONSTRAINT uq_floor_client_ref UNIQUE (reporter_id, client_ref)
);
CREATE INDEX ON floor.reports (status, received_at, id);
CREATE TABLE floor.cases (
    id uuid PRIMARY KEY, case_number varchar(32) NOT NULL UNIQUE, category_code varchar(32) NOT NULL,
    source varchar(16) NOT NULL, lon float8 NOT NULL, lat float8 NOT NULL, cell_id varchar(32) NOT NULL,
    street_id varchar(32) NOT NULL, district_id varchar(32) NOT NULL, status varchar(24) NOT NULL,
    reported_at timestamptz NOT NULL, filed_at timestamptz NOT NULL, updated_at timestamptz NOT NULL
);
CREATE INDEX ON floor.cases (category_code, status, lat);
CREATE INDEX ON floor.cases (filed_at, id);
CREATE INDEX ON floor.cases (district_id, filed_at, id);
CREATE INDEX ON floor.cases (status, filed_at, id);
CREATE INDEX ON floor.cases (reported_at, id);
CREATE TABLE floor.outbox (
    seq bigserial PRIMARY KEY, message_id uuid NOT NULL UNIQUE, topic varchar(255) NOT NULL, key bytea,
    headers json NOT NULL, value bytea NOT NULL, created_at timestamptz NOT NULL, sent_at timestamptz,
    attempts integer NOT NULL DEFAULT 0
);
CREATE INDEX ON floor.outbox (seq) WHERE sent_at IS NULL;
CREATE INDEX ON floor.outbox (sent_at);
"""
_INSERT_REPORT = """
INSERT INTO floor.reports (id, source, reporter_id, client_ref, category_code, description, lon, lat, cell_id,
    community_id, street_id, district_id, photos, self_handled, status, received_at, case_number, decided_at)
VALUES ($1, 'inspector', $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, '[]', false, 'filed', $12, $13, $12)
"""
_INSERT_CASE = """
INSERT INTO floor.cases (id, case_number, category_code, source, lon, lat, cell_id, street_id, district_id,
    status, reported_at, filed_at, updated_at)
VALUES ($1, $2, $3, 'inspector', $4, $5, $6, $7, $8, 'filed', $9, $9, $9)
"""
_INSERT_OUTBOX = """
INSERT INTO floor.outbox (message_id, topic, key, headers, value, created_at)
VALUES ($1, $2, $3, $4, $5, $6), ($7, $2, $3, $8, $9, $6)
"""
_UNSENT = "SELECT seq, key, headers, value FROM floor.outbox WHERE sent_at IS NULL ORDER BY seq LIMIT $1"
_MARK_SENT = "UPDATE floor.outbox SET sent_at = now() WHERE seq = ANY($1::bigint[])"


class Point(BaseModel):
    """``Location`` of intake's API, WGS-84 only."""

    model_config = ConfigDict(extra="forbid")

    lon: float = Field(ge=-180, le=180)
    lat: float = Field(ge=-90, le=90)


class Filing(BaseModel):
    """The fields and bounds of intake's ``InspectorReportIn`` that the benchmark's reports use."""

    model_config = ConfigDict(extra="forbid")

    category_code: str = Field(min_length=1, max_length=32)
    description: str = Field(min_length=1, max_length=2000)
    location: Point
    client_ref: str | None = Field(default=None, max_length=64)
    self_handled: bool = False


def _headers(event_type: str, event_id: uuid.UUID, case_id: uuid.UUID, at: datetime) -> str:
    """CloudEvents binary-mode headers as the outbox stores them (``headers_to_json``'s shape)."""
    return json.dumps(
        [
            ["ce_specversion", "1.0"],
            ["ce_id", str(event_id)],
            ["ce_source", "/citycase/intake"],
            ["ce_type", event_type],
            ["ce_subject", str(case_id)],
            ["ce_time", at.isoformat()],
            ["ce_dataschema", f"https://citycase.example/schemas/{event_type}/1"],
            ["content-type", "application/json"],
        ]
    )


def build(settings: Settings, topic: str) -> FastAPI:
    """The instrument's app: the filing route, a readiness probe, the relay as a lifespan task."""
    city = load_city(settings.city_dir)
    secret = settings.jwt_secret
    numbers = itertools.count(1)
    state: dict[str, Any] = {}
    committed = asyncio.Event()

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        admin = await asyncpg.connect(
            host=settings.pg_host,
            port=settings.pg_port,
            user="citycase_admin",  # the benchmark's owner of the database, as bench.reset_database
            password="citycase_admin",
            database=settings.pg_database,
        )
        try:
            await admin.execute(_SCHEMA)
        finally:
            await admin.close()
        await _ensure_topic(settings, topic)
        pool = await asyncpg.create_pool(
            host=settings.pg_host,
            port=settings.pg_port,
            user="citycase_admin",
            password="citycase_admin",
            database=settings.pg_database,
            min_size=settings.pg_pool_size,
            max_size=settings.pg_pool_size,
        )
        producer = AIOKafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap_servers,
            client_id="citycase-bench-floor",
            acks="all",
            enable_idempotence=True,
            linger_ms=5,
        )
        await producer.start()
        state["pool"] = pool
        relay = asyncio.create_task(_relay(pool, producer, topic, committed))
        try:
            yield
        finally:
            relay.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await relay
            await producer.stop()
            await pool.close()

    app = FastAPI(lifespan=lifespan, openapi_url=None, docs_url=None, redoc_url=None)

    @app.get("/floor/readyz")
    async def ready() -> dict[str, str]:
        return {"status": "ready"}

    @app.post("/floor/reports", status_code=201)
    @app.post("/intake/reports", status_code=201)  # the benchmark's requests name intake's path
    async def file(body: Filing, authorization: Annotated[str, Header()]) -> dict[str, str]:
        try:
            claims = jwt.decode(
                authorization.removeprefix("Bearer "),
                secret,
                algorithms=[_ALGORITHM],
                issuer=_ISSUER,
                options={"verify_exp": False, "verify_iat": False, "require": _REQUIRED_CLAIMS},
            )
        except jwt.PyJWTError as exc:
            raise HTTPException(401, "invalid token") from exc
        if claims["role"] != "inspector" or claims["exp"] < datetime.now(UTC).timestamp():
            raise HTTPException(403, "not an inspector's valid token")
        try:
            city.category(body.category_code)
        except KeyError:
            raise HTTPException(422, "unknown category") from None
        cell = city.locate(body.location.lon, body.location.lat)
        if cell is None:
            raise HTTPException(422, "outside the city's grid")
        case_id, now = uuid.uuid4(), datetime.now(UTC)
        number = f"F{next(numbers):09d}"
        reporter = claims.get("insp") or claims["sub"]
        payload = {
            "case_id": str(case_id),
            "case_number": number,
            "category_code": body.category_code,
            "description": body.description,
            "location": {"lon": body.location.lon, "lat": body.location.lat},
            "place": {
                "cell_id": cell.id,
                "community_id": cell.community_id,
                "street_id": cell.street_id,
                "district_id": cell.district_id,
            },
            "source": "inspector",
            "reporter_id": reporter,
            "reported_at": now.isoformat(),
        }
        received, filed = uuid.uuid4(), uuid.uuid4()
        key = str(case_id).encode()
        async with state["pool"].acquire() as connection, connection.transaction():
            await connection.execute(
                _INSERT_REPORT,
                case_id,
                reporter,
                body.client_ref,
                body.category_code,
                body.description,
                body.location.lon,
                body.location.lat,
                cell.id,
                cell.community_id,
                cell.street_id,
                cell.district_id,
                now,
                number,
            )
            await connection.execute(
                _INSERT_CASE,
                case_id,
                number,
                body.category_code,
                body.location.lon,
                body.location.lat,
                cell.id,
                cell.street_id,
                cell.district_id,
                now,
            )
            await connection.execute(
                _INSERT_OUTBOX,
                received,
                topic,
                key,
                _headers("report.received", received, case_id, now),
                json.dumps({**payload, "status": "received"}).encode(),
                now,
                filed,
                _headers("case.filed", filed, case_id, now),
                json.dumps({**payload, "filed_at": now.isoformat(), "filed_by": reporter}).encode(),
            )
        committed.set()
        return {"id": str(case_id), "case_number": number, "status": "filed"}

    return app


async def _ensure_topic(settings: Settings, topic: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        if topic not in await admin.list_topics():
            response = await admin.create_topics([NewTopic(topic, settings.kafka_partitions, 1)])
            for name, code, *_ in response.topic_errors:
                if code not in (0, _TOPIC_ALREADY_EXISTS):
                    raise RuntimeError(f"cannot create topic {name}: error code {code}")
    finally:
        await admin.close()


async def _relay(pool: asyncpg.Pool, producer: AIOKafkaProducer, topic: str, committed: asyncio.Event) -> None:
    """Publish the unsent outbox rows in ``seq`` order, a batch at a time, each acknowledged by the
    broker before it is marked sent."""
    while True:
        committed.clear()  # before reading, so a commit after the read wakes the next round
        rows = await pool.fetch(_UNSENT, _RELAY_BATCH)
        if not rows:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_RELAY_POLL_S):
                    await committed.wait()
            continue
        deliveries = [
            await producer.send(
                topic,
                row["value"],
                key=row["key"],
                headers=[(name, value.encode()) for name, value in json.loads(row["headers"])],
            )
            for row in rows
        ]
        await asyncio.gather(*deliveries)
        await pool.execute(_MARK_SENT, [row["seq"] for row in rows])


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.floor", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--topic", required=True, help="the Kafka topic the relay publishes to")
    args = parser.parse_args()
    stop_with_parent()
    settings = Settings()
    uvicorn.run(
        build(settings, args.topic),
        host="127.0.0.1",
        port=args.port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
