"""The metrics an operator acts on, read from a running process's ``/metrics`` as a scraper would:
a stalled relay moves the outbox gauges and turns readiness not-ready (and back), a stopped consumer
shows a growing lag (an inbox consumer's from its group's offsets, the stream's from its own stored
positions), the stream's freshness moves when it applies an event, and requests are counted per
route template with the mounted services' prefixes.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from services.runtime.app import create_app
from services.runtime.runtime import Runtime
from shared.core.clock import SimulatedClock
from shared.core.ids import new_id
from shared.core.settings import Mode, Settings
from shared.messaging.bus import Message
from shared.messaging.bus.embedded import EmbeddedLog
from tests.e2e.harness import PASSWORDS, START

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@asynccontextmanager
async def process(tmp_path: Path, services: list[str], **settings: Any) -> AsyncIterator[httpx.AsyncClient]:
    """An embedded process running ``services``, started and ready, its gauges read every 0.1 s."""
    app = create_app(
        services,
        Settings(mode=Mode.EMBEDDED, data_dir=tmp_path, metrics_refresh_seconds=0.1, **settings),
        SimulatedClock(START),
    )
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://citycase") as client,
    ):
        client.app = app  # type: ignore[attr-defined]
        await until(client, lambda: client.get("/readyz"), lambda answer: answer.status_code == 200)
        yield client


def runtime_of(client: httpx.AsyncClient) -> Runtime:
    runtime: Runtime = client.app.state.runtime  # type: ignore[attr-defined]
    return runtime


async def until(client: httpx.AsyncClient, ask: Callable[[], Any], holds: Callable[[Any], object]) -> Any:
    """Ask until the answer satisfies ``holds`` (the gauges are read every 0.1 s), at most 20 s."""
    answer: Any = None
    try:
        async with asyncio.timeout(20):
            while not holds(answer := await ask()):
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"never held; last answer: {str(getattr(answer, 'text', answer))[:1500]}") from None
    return answer


async def samples(client: httpx.AsyncClient) -> Samples:
    """Every sample of ``/metrics``, by name and labels."""
    text = (await client.get("/metrics")).text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def lags_by(found: Samples, *, consumer: str, topic: str, records: int) -> bool:
    return total(found, "citycase_consumer_lag_records", consumer=consumer, topic=topic) == records


def value(found: Samples, name: str, **labels: str) -> float | None:
    return found.get((name, frozenset(labels.items())))


def series(found: Samples, name: str, **labels: str) -> int:
    """How many of ``name``'s samples have labels including ``labels``."""
    wanted = set(labels.items())
    return sum(1 for n, have in found if n == name and wanted <= have)


def total(found: Samples, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(v for (n, have), v in found.items() if n == name and wanted <= have)


async def test_a_stalled_relay_moves_the_backlog_gauge_and_turns_readiness_not_ready(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with process(tmp_path, ["intake"], outbox_stall_seconds=0.5) as client:
        runtime = runtime_of(client)
        (intake,) = runtime.services
        failures_before = total(await samples(client), "citycase_outbox_publish_failures_total", service="intake")
        publish = EmbeddedLog.publish

        async def broker_away(self: EmbeddedLog, messages: Any) -> None:
            raise ConnectionError("the broker is away")

        # The bus still answers its pings: only the relay's publishes fail, as in the trial.
        monkeypatch.setattr(EmbeddedLog, "publish", broker_away)
        async with intake.store.transaction() as tx:
            for _ in range(3):
                tx.send(Message(runtime.settings.topic_case_events, b"case", b"{}"))

        found = await until(
            client, lambda: samples(client), lambda s: value(s, "citycase_outbox_backlog_rows", service="intake") == 3
        )
        assert total(found, "citycase_outbox_publish_failures_total", service="intake") > failures_before
        assert value(found, "citycase_outbox_publish_failures_total", service="intake", reason="unavailable")
        runtime.shared.clock.advance(timedelta(minutes=5))  # type: ignore[attr-defined]
        await until(
            client,
            lambda: samples(client),
            lambda s: (value(s, "citycase_outbox_oldest_unsent_seconds", service="intake") or 0) >= 300,
        )
        for path, check in (("/readyz", "intake.outbox"), ("/intake/readyz", "outbox")):
            answer = await until(client, partial(client.get, path), lambda a: a.status_code == 503)
            body = answer.json()
            assert body["ready"] is False
            assert body["checks"][check].startswith("stalled: 3 row(s) waiting"), body
            assert body["checks"]["bus"] == "ok"
            # An orchestrator's probe that leaves the outbox out: ready, and the stall still reported.
            probed = await client.get(path, params={"exclude": ["bus", "outbox"]})
            assert probed.status_code == 200, probed.text
            assert probed.json()["checks"][check].startswith("stalled:")
            assert probed.json()["excluded"] == ["bus", "outbox"]
            assert (await client.get(path, params={"exclude": "everything"})).status_code == 422

        monkeypatch.setattr(EmbeddedLog, "publish", publish)
        await until(client, lambda: client.get("/readyz"), lambda a: a.status_code == 200)
        await until(
            client, lambda: samples(client), lambda s: value(s, "citycase_outbox_backlog_rows", service="intake") == 0
        )


async def test_the_lag_gauge_shows_a_stopped_consumer_and_the_stream_its_freshness(tmp_path: Path) -> None:
    # A topic of its own: the metrics are the pytest process's, and an embedded city another test
    # left serving in it would set the same consumers' series on the default topic.
    async with process(tmp_path, ["intake", "assessment"], topic_case_events=f"lag-test-{uuid4()}") as client:
        runtime = runtime_of(client)
        topic = runtime.settings.topic_case_events
        stream = "assessment.indicators"
        # The freshness series is the pytest process's: another test's stream may have set it.
        fresh_before = value(await samples(client), "citycase_stream_last_applied_timestamp_seconds", consumer=stream)
        # A record no consumer can read: each running consumer dead-letters it and moves on.
        await runtime.bus.publish([Message(topic, b"case-1", b"not an event")])
        found = await until(
            client,
            lambda: samples(client),
            lambda s: (
                value(s, "citycase_stream_last_applied_timestamp_seconds", consumer=stream) not in (None, fresh_before)
            ),
        )
        applied_at = value(found, "citycase_stream_last_applied_timestamp_seconds", consumer=stream)
        await until(
            client,
            lambda: samples(client),
            # Read past the record (the end offsets counted it, and the consumers stand at it).
            lambda s: all(
                series(s, "citycase_consumer_lag_records", consumer=consumer, topic=topic)
                and total(s, "citycase_consumer_lag_records", consumer=consumer, topic=topic) == 0
                for consumer in ("intake.case-file", stream)
            ),
        )
        # ...and the inbox consumer has committed past it, so what follows is all it has not read.
        (inbox,) = [
            runner
            for service in runtime.services
            for runner in service.consumers
            if runner.spec.name == "intake.case-file"
        ]

        async def committed() -> int:
            return sum((await runtime.bus.committed_offsets(inbox.spec.name, [topic])).values())

        await until(client, committed, lambda offsets: offsets == 1)

        for name in ("intake-intake.case-file", f"assessment-{stream}"):
            (task,) = [t for t in runtime._tasks if t.get_name() == name]
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        # Stopped, they read nothing more: the lag is the records published since, and grows.
        for count, lag in ((2, 2), (3, 5)):
            await runtime.bus.publish([Message(topic, f"case-{n}".encode(), b"not an event") for n in range(count)])
            for consumer in ("intake.case-file", stream):
                lagging = partial(lags_by, consumer=consumer, topic=topic, records=lag)
                await until(client, lambda: samples(client), lagging)
        # Stopped, the stream applies nothing: its freshness stays where it was.
        found = await samples(client)
        assert value(found, "citycase_stream_last_applied_timestamp_seconds", consumer=stream) == applied_at


async def test_requests_are_counted_per_route_template_with_the_mounts_prefix(tmp_path: Path) -> None:
    async with process(tmp_path, ["intake"]) as client:
        token = (
            await client.post("/auth/token", data={"username": "shiftlead", "password": PASSWORDS["shiftlead"]})
        ).json()["access_token"]
        lead = {"Authorization": f"Bearer {token}"}
        before = await samples(client)
        asked = [
            ("GET", f"/intake/reports/{new_id()}", lead, "/intake/reports/{report_id}", "404"),
            ("GET", f"/intake/reports/{new_id()}", lead, "/intake/reports/{report_id}", "404"),
            ("GET", "/open311/v2/discovery.json", {}, "/open311/v2/discovery.{fmt}", "200"),
            ("GET", "/healthz", {}, "/healthz", "200"),
            # Refused by the guard before routing, still the route's.
            ("POST", f"/intake/reports/{new_id()}/file", {}, "/intake/reports/{report_id}/file", "401"),
            ("GET", f"/intake/no-such-thing/{new_id()}", lead, "unmatched", "404"),
            ("GET", "/cases/some-case", {"Accept": "text/html"}, "console", None),
        ]
        for method, path, headers, _, _ in asked:
            await client.request(method, path, headers=headers)
        after = await samples(client)
        for method, path, _, route, status in asked:
            labels = {"method": method, "route": route} | ({"status": status} if status else {})
            counted = total(after, "citycase_http_requests_total", **labels) - total(
                before, "citycase_http_requests_total", **labels
            )
            assert counted == sum(1 for m, _, _, r, s in asked if (m, r, s) == (method, route, status)), (path, route)
            assert total(after, "citycase_http_request_duration_seconds_count", method=method, route=route) >= 1
        # Never the raw path: no series names a report's id.
        assert not [key for key in after if any("-" in v and "reports/" in v for _, v in key[1])]
        # Nor a method the caller invents: one series for all of them.
        for invented in ("PROPFIND", "MKCALENDAR"):
            await client.request(invented, "/healthz")
        methods = {
            dict(key[1]).get("method") for key in await samples(client) if key[0] == "citycase_http_requests_total"
        }
        assert "other" in methods
        assert not methods & {"PROPFIND", "MKCALENDAR"}


OBSERVABILITY = Path(__file__).parents[2] / "deploy" / "observability"
_SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}


async def test_the_alert_rules_and_the_dashboard_name_only_metrics_a_process_serves(tmp_path: Path) -> None:
    async with process(tmp_path, ["all"]) as client:
        families = list(text_string_to_metric_families((await client.get("/metrics")).text))
    served = {family.name + suffix for family in families for suffix in _SUFFIXES.get(family.type, ("",))}
    rules = yaml.safe_load((OBSERVABILITY / "alerts.yml").read_text())
    alerts = [rule for group in rules["groups"] for rule in group["rules"]]
    assert all(group["name"] and group["rules"] for group in rules["groups"])
    assert len({rule["alert"] for rule in alerts}) == len(alerts)
    for rule in alerts:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule["alert"]
        assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        assert rule["annotations"]["runbook"], rule["alert"]
        assert rule.get("for", "0m")[-1] in "smh", rule["alert"]
        assert rule["expr"].count("(") == rule["expr"].count(")"), rule["alert"]
    dashboard = json.loads((OBSERVABILITY / "dashboard.json").read_text())
    expressions = [rule["expr"] for rule in alerts]
    expressions += [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    named = {name for expr in expressions for name in re.findall(r"\bcitycase_[a-z0-9_]+", expr)}
    assert named - served == set()
    # Every family of the process is in the rules or on the dashboard.
    # (The text format's ``_created`` samples of counters and histograms parse as families of their own.)
    ours = {f.name for f in families if f.name.startswith("citycase_") and not f.name.endswith("_created")}
    assert {family for family in ours if not any(name.startswith(family) for name in named)} == set()


async def test_a_relay_whose_publish_hangs_gives_the_round_up_and_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with process(tmp_path, ["intake"], outbox_stall_seconds=0.5) as client:
        runtime = runtime_of(client)
        (intake,) = runtime.services
        publish = EmbeddedLog.publish
        hanging = asyncio.Event()

        async def broker_hangs(self: EmbeddedLog, messages: Any) -> None:
            hanging.set()
            await asyncio.Event().wait()  # a broker that takes the connection and never answers

        monkeypatch.setattr(EmbeddedLog, "publish", broker_hangs)
        async with intake.store.transaction() as tx:
            tx.send(Message(runtime.settings.topic_case_events, b"case", b"{}"))
        async with asyncio.timeout(10):
            await hanging.wait()
        answer = await until(client, partial(client.get, "/intake/readyz"), lambda a: a.status_code == 503)
        assert answer.json()["checks"]["outbox"].startswith("stalled: 1 row(s) waiting")

        # The hung round is given up after the stall time; the next one, on a broker that answers, publishes.
        monkeypatch.setattr(EmbeddedLog, "publish", publish)
        await until(
            client, lambda: samples(client), lambda s: value(s, "citycase_outbox_backlog_rows", service="intake") == 0
        )
        await until(client, lambda: client.get("/intake/readyz"), lambda a: a.status_code == 200)
