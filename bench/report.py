"""The table of ``bench/README.md``: rewritten from ``results.json`` by every run, between two
markers, so the hand-written rest of the page (methods, before and after) stays as it is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

START = "<!-- results:start (written by make bench) -->"
END = "<!-- results:end -->"
SIZES = ("10k", "100k", "1M")


def _get(results: dict[str, Any], path: str) -> Any:
    value: Any = results
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _figure(value: Any, unit: str) -> str:
    if value is None:
        return "not measured"
    if isinstance(value, float) and value >= 100:
        value = round(value)
    return f"{value:,} {unit}".strip() if isinstance(value, int | float) else f"{value} {unit}"


def table(results: dict[str, Any]) -> str:
    """The markdown table of the headline figures, with their targets."""
    rows = [
        (
            "intake: reports accepted per second (one process, the city running)",
            "intake.reports_per_s",
            "/s",
            "≥ 1,000/s",
        ),
        ("intake: the same with no other service running", "intake.alone_reports_per_s", "/s", ""),
        ("intake: CPU per report (intake alone)", "intake.alone_cpu_ms_per_report", "ms", ""),
        ("intake: p50 at the steady rate", "intake.p50_ms", "ms", ""),
        ("intake: p99 at the steady rate", "intake.p99_ms", "ms", "≤ 100 ms"),
        ("intake: the steady rate", "intake.steady_rate", "/s", ""),
        ("floor: the bare filing endpoint, reports per second (bench/floor.py)", "floor.reports_per_s", "/s", ""),
        ("floor: CPU per report", "floor.cpu_ms_per_report", "ms", ""),
        ("intake alone / floor: reports per second (median of the rounds)", "floor.intake_ratio", "", "≥ 0.6"),
        ("floor / intake alone: CPU per report (median of the rounds)", "floor.cpu_ratio", "", ""),
        ("scale-out: intake two processes / one", "scale_out.intake.ratio", "", ""),
        ("scale-out: intake, one process (alone, saturated)", "scale_out.intake.one_reports_per_s", "/s", ""),
        ("scale-out: intake, two processes (alone, saturated)", "scale_out.intake.two_reports_per_s", "/s", ""),
        ("scale-out: intake CPU per report, one process", "scale_out.intake.one_cpu_ms_per_report", "ms", ""),
        ("scale-out: intake CPU per report, two processes", "scale_out.intake.two_cpu_ms_per_report", "ms", ""),
        ("tracing on / off: intake reports per second (alone)", "tracing.throughput_ratio", "", ""),
        ("tracing on / off: intake CPU per report", "tracing.cpu_ratio", "", ""),
        ("tracing: intake alone, off", "tracing.off_reports_per_s", "/s", ""),
        ("tracing: intake alone, on (OTLP to a local sink)", "tracing.on_reports_per_s", "/s", ""),
        ("tracing: spans received per report (0: nothing exported)", "tracing.spans_per_report", "", ""),
        ("report back: calls per second (one process)", "report_back.per_s", "/s", ""),
        ("report back: p99 at the steady rate", "report_back.p99_ms", "ms", ""),
        ("report → dispatched p50", "e2e.dispatched_p50_ms", "ms", ""),
        ("report → dispatched p99", "e2e.dispatched_p99_ms", "ms", "≤ 500 ms"),
        ("report → indicators p50", "e2e.indicators_p50_ms", "ms", ""),
        ("report → indicators p99", "e2e.indicators_p99_ms", "ms", "≤ 1,000 ms"),
        ("stream: replay events per second", "stream.replay_events_per_s", "/s", "≥ 20,000/s"),
        ("stream: bare consumer records per second", "stream.bare_consumer_events_per_s", "/s", ""),
        ("stream: replay / bare consumer", "stream.ratio", "", "≥ 0.30"),
        ("scale-out: stream two members / one", "scale_out.stream.ratio", "", ""),
        ("scale-out: stream catching up, one member", "scale_out.stream.one_events_per_s", "/s", ""),
        ("scale-out: stream catching up, two members", "scale_out.stream.two_events_per_s", "/s", ""),
        ("console: the built bundle, gzipped (scripts, styles, page)", "console.bundle.gzip_kb", "kB", ""),
        ("console: dashboard's first full render (4,014 cells), median", "console.first_render_ms", "ms", ""),
    ]
    for size in SIZES:
        rows.append((f"query: indicator p99 at {size} cases", f"query.indicator_p99_ms.{size}", "ms", "≤ 20 ms"))
        rows.append((f"query: plain SQL p99 at {size} cases", f"query.sql_p99_ms.{size}", "ms", ""))
    for size in SIZES:
        rows.append((f"query: monthly ranking p99 at {size} cases", f"query.ranking_p99_ms.{size}", "ms", ""))
        rows.append((f"query: ranking in plain SQL p99 at {size} cases", f"query.ranking_sql_p99_ms.{size}", "ms", ""))
    lines = ["| figure | measured | target |", "|---|---|---|"]
    lines += [f"| {label} | {_figure(_get(results, path), unit)} | {target} |" for label, path, unit, target in rows]
    for phase, name in (("intake_saturation", "intake saturated"), ("end_to_end", "end to end")):
        by_process = _get(results, f"city_cpu.{phase}.ms_per_report_by_process") or {}
        lines += [f"| city CPU per report, {name}: {group} | {ms} ms | |" for group, ms in by_process.items()]
        cpu = _get(results, f"city_cpu.{phase}")
        if cpu is not None:
            lines.append(
                f"| city CPU per report, {name}: all of it (load generator left out) | {cpu['ms_per_report']} ms | |"
            )
            lines.append(f"| cores 1,000 reports/s would keep busy ({name}) | {cpu['cores_for_1000_per_s']} | |")
    memory = _get(results, "memory.peak_rss_mb") or {}
    lines += [f"| peak RSS: {service} | {mb} MB | |" for service, mb in memory.items()]
    lines.append("")
    lines.append(
        f"Machine: {results.get('machine', 'unknown')}. Run of {results.get('started', '?')}, "
        f"{results.get('seconds', '?')} s in all."
    )
    return "\n".join(lines)


def write(results: dict[str, Any], readme: Path) -> None:
    """Put the table between the markers of ``readme`` (appended when the markers are missing)."""
    text = readme.read_text() if readme.exists() else "# Benchmark\n"
    block = f"{START}\n{table(results)}\n{END}"
    if START in text and END in text:
        before, rest = text.split(START, 1)
        after = rest.split(END, 1)[1]
        text = before + block + after
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    readme.write_text(text)
