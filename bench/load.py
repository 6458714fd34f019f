"""The load generator: ``python -m bench.load JOB.json RESULT.json``, run as a process of its own
so that its CPU is not the services' CPU and its measurements are not disturbed by theirs.

It speaks HTTP/1.1 over keep-alive connections with requests prepared in advance (bytes on the
wire), because on two cores the generator competes with the system it measures: a full client
(httpx) costs a tenth of a millisecond of CPU per request, which at a thousand requests a second
is a tenth of the machine. Responses are read to their ``content-length``; nothing else is parsed.

Two ways to load:

- **closed** (``rate`` 0): every connection sends its next request as soon as the last one is
  answered. The completed rate is the most the service sustains at that concurrency.
- **open** (``rate`` > 0): request *i* is due at ``start + i / rate`` whatever happened before;
  its latency runs from when it was due, so a server that falls behind is charged for the queue
  it built (no coordinated omission).
"""

from __future__ import annotations

import asyncio
import base64
import json
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import uvloop  # noqa: F401


@dataclass(frozen=True)
class Job:
    """What to send, how fast and for how long."""

    base_url: str
    requests: list[bytes]
    connections: int
    duration_s: float
    rate: float = 0.0
    warmup_s: float = 0.0
    keep_bodies: bool = False

    @classmethod
    def read(cls, path: Path) -> Job:
        """A job written by ``write_job``."""
        data = json.loads(path.read_text())
        data["requests"] = [base64.b64decode(raw) for raw in data["requests"]]
        return cls(**data)


def write_job(path: Path, job: Job) -> None:
    """Write a job for the generator process to read."""
    data = {**job.__dict__, "requests": [base64.b64encode(raw).decode() for raw in job.requests]}
    path.write_text(json.dumps(data))


def http_request(method: str, url_path: str, host: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    """One HTTP/1.1 request as it goes on the wire."""
    lines = [f"{method} {url_path} HTTP/1.1", f"host: {host}", f"content-length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


@dataclass
class _Outcome:
    statuses: dict[int, int] = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    # (request index, due or sent, answered, status, body) of every request, when asked for.
    records: list[tuple[int, float, float, int, str]] = field(default_factory=list)


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, raw: bytes) -> tuple[int, bytes]:
    writer.write(raw)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    marker = head.lower().find(b"\r\ncontent-length:")
    if marker < 0:
        raise ValueError("a response without content-length")
    end = head.find(b"\r\n", marker + 2)
    body = await reader.readexactly(int(head[marker + 17 : end]))
    return status, body


async def run(job: Job) -> dict[str, Any]:
    """Send the job's requests; the figures of the measured window (after the warm-up)."""
    target = urlsplit(job.base_url)
    host, port = target.hostname or "127.0.0.1", target.port or 80
    outcome = _Outcome()
    next_index = 0
    started = time.monotonic()
    measure_from = started + job.warmup_s
    stop_at = measure_from + job.duration_s

    async def connection() -> None:
        nonlocal next_index
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while True:
                index = next_index
                if index >= len(job.requests):
                    return
                next_index += 1
                due = started + index / job.rate if job.rate else time.monotonic()
                if due >= stop_at:
                    return
                wait = due - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                sent = due if job.rate else time.monotonic()
                try:
                    status, body = await _exchange(reader, writer, job.requests[index])
                except (OSError, asyncio.IncompleteReadError, ValueError):
                    outcome.errors += 1
                    writer.close()
                    reader, writer = await asyncio.open_connection(host, port)
                    continue
                answered = time.monotonic()
                if sent >= measure_from:
                    outcome.statuses[status] = outcome.statuses.get(status, 0) + 1
                    if 200 <= status < 300:
                        outcome.latencies_ms.append((answered - sent) * 1000)
                if job.keep_bodies:
                    outcome.records.append((index, sent, answered, status, body.decode()))
        finally:
            writer.close()

    cpu_before = time.process_time()
    await asyncio.gather(*(connection() for _ in range(job.connections)))
    elapsed = time.monotonic() - measure_from
    latencies = sorted(outcome.latencies_ms)
    return {
        "mode": "open" if job.rate else "closed",
        "target_rate": job.rate,
        "connections": job.connections,
        "seconds": round(elapsed, 3),
        "ok": len(latencies),
        "ok_per_s": round(len(latencies) / elapsed, 1) if elapsed > 0 else 0.0,
        "statuses": {str(code): count for code, count in sorted(outcome.statuses.items())},
        "errors": outcome.errors,
        "latency_ms": percentiles(latencies),
        "generator_cpu_s": round(time.process_time() - cpu_before, 2),
        "records": outcome.records,
    }


def percentiles(values: list[float]) -> dict[str, float]:
    """p50, p90, p99 and max of ``values`` in their unit, rounded (empty: zeros)."""
    if len(values) < 2:
        only = values[0] if values else 0.0
        return {"p50": only, "p90": only, "p99": only, "max": only}
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return {
        "p50": round(cuts[49], 2),
        "p90": round(cuts[89], 2),
        "p99": round(cuts[98], 2),
        "max": round(max(values), 2),
    }


def main() -> int:
    """Run the job in ``argv[1]``, write the figures to ``argv[2]``."""
    job = Job.read(Path(sys.argv[1]))
    try:
        import uvloop

        result = uvloop.run(run(job))
    except ImportError:
        result = asyncio.run(run(job))
    Path(sys.argv[2]).write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
