"""Intake's filing without HTTP: ``python -m bench.filing``, a measuring instrument.

On the benchmark's PostgreSQL database (emptied first), in this process: the CPU of intake's use
case for an inspector's report (``intake.handlers.receive_report``: the duplicate check, the
report, the case and its number, the two events into the outbox, in one transaction), 16 reports
at a time as a saturated process has them in flight; then the CPU per event of intake's case file
applying the events those filings wrote (its consumer's ``apply``), half of them in batches of 40
as a busy consumer reads them, half one at a time as in a quiet city, where each event pays a
transaction, the inbox's check and mark and the case file's statements alone. No bus is started:
the outbox is read back from the database.

It takes the HTTP stack and the relay out of intake's figure, so a change to the filing's own path
shows at a tenth of the noise of a saturated process (bench/README.md, "Intake, second pass").
Each figure is the median of ``--rounds`` runs of ``--reports`` reports.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import time
import uuid
from collections.abc import Iterator

import uvloop
from sqlalchemy import select

from bench import workload
from bench.__main__ import bench_settings, reset_database
from intake import handlers
from intake.app import SPEC
from services.runtime.accounts import account_of
from services.runtime.runtime import ServiceRuntime, SharedParts, build_bus
from shared.city.model import City
from shared.core.auth import Role
from shared.core.clock import SystemClock
from shared.events.catalogue import ReportSource
from shared.messaging.bus import Record
from shared.messaging.tables import headers_from_json

IN_FLIGHT = 16
BATCH = 40


def _reports(city: City, seed: int) -> Iterator[handlers.NewReport]:
    """Inspectors' reports anywhere in the city, any category, each with the app's own id."""
    rng = random.Random(seed)
    # Reported under the inspector's id, as intake's route does.
    inspectors = [
        principal.inspector_id
        for principal in (account_of(user).principal for user in city.users)
        if principal.role is Role.INSPECTOR
    ]
    for cell, lon, lat in workload.points(city, rng):
        category = rng.choice(city.categories)
        yield handlers.NewReport(
            source=ReportSource.INSPECTOR,
            category_code=category.code,
            description=f"{category.name} · {cell.name}",
            lon=lon,
            lat=lat,
            reporter_id=rng.choice(inspectors),
            client_ref=str(uuid.UUID(int=rng.getrandbits(128))),
        )


async def one_round(count: int, seed: int) -> dict[str, float]:
    """CPU µs per filing and per case-file event, from an empty database."""
    settings = bench_settings(f"filing-{seed}")
    await reset_database(settings)
    shared = SharedParts.load(settings, SystemClock())
    intake = ServiceRuntime(SPEC, shared, build_bus(settings, "bench-filing"))
    await intake.migrate()
    reports = _reports(shared.city, seed)
    try:
        for _ in range(200):  # warm: statement caches, the case-number block
            await handlers.receive_report(intake.context, next(reports))
        measured = iter([next(reports) for _ in range(count)])

        async def reporter() -> None:
            for report in measured:
                await handlers.receive_report(intake.context, report)

        started = time.process_time()
        await asyncio.gather(*(reporter() for _ in range(IN_FLIGHT)))
        filing_us = (time.process_time() - started) / count * 1e6

        outbox = intake.store.outbox
        query = select(outbox.c.topic, outbox.c.key, outbox.c.headers, outbox.c.value).order_by(outbox.c.seq)
        async with intake.store.engine.connect() as connection:
            rows = (await connection.execute(query)).all()
        records = [
            Record(topic, 0, offset, key, value, headers_from_json(headers))
            for offset, (topic, key, headers, value) in enumerate(rows)
        ]
        (case_file,) = [consumer for consumer in intake.consumers if consumer.spec.name == "intake.case-file"]
        warm, rest = records[:400], records[400:]
        for start in range(0, len(warm), BATCH):
            await case_file.apply(warm[start : start + BATCH])
        batched, alone = rest[: len(rest) // 2], rest[len(rest) // 2 :]
        started = time.process_time()
        for start in range(0, len(batched), BATCH):
            await case_file.apply(batched[start : start + BATCH])
        event_us = (time.process_time() - started) / len(batched) * 1e6
        started = time.process_time()
        for record in alone:
            await case_file.apply([record])
        alone_us = (time.process_time() - started) / len(alone) * 1e6
    finally:
        await intake.store.engine.dispose()
    return {
        "filing_cpu_us": round(filing_us),
        "case_file_cpu_us_per_event": round(event_us, 1),
        "case_file_cpu_us_an_event_alone": round(alone_us, 1),
    }


async def main(count: int, rounds: int) -> dict[str, object]:
    runs = [await one_round(count, seed) for seed in range(1, rounds + 1)]
    return {
        "filing_cpu_us": statistics.median(run["filing_cpu_us"] for run in runs),
        "case_file_cpu_us_per_event": statistics.median(run["case_file_cpu_us_per_event"] for run in runs),
        "case_file_cpu_us_an_event_alone": statistics.median(run["case_file_cpu_us_an_event_alone"] for run in runs),
        "rounds": runs,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.filing", description=__doc__.splitlines()[0])
    parser.add_argument("--reports", type=int, default=2000, help="measured reports a round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds, each from an empty database")
    args = parser.parse_args()
    print(json.dumps(uvloop.run(main(args.reports, args.rounds)), indent=2))
