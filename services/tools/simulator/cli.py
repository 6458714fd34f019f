"""``python -m services simulate``: its options, and turning them into a run."""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from services.tools.launcher import run_stoppable
from services.tools.simulator.client import SimulationError
from services.tools.simulator.plan import LONGEST_STEP
from services.tools.simulator.profile import ProfileError, load_profile
from services.tools.simulator.run import Finish, Options, simulate
from shared.city.loader import load_city
from shared.core.settings import SERVICE_NAMES, Settings

# Longer steps would blur the order of what happens within them (repeat reports come 30 minutes
# or more after what they repeat) and the time limits of urgent cases (10 minutes to file).
MAX_STEP_MINUTES = LONGEST_STEP / timedelta(minutes=1)


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``simulate`` command and its options."""
    parser = commands.add_parser(
        "simulate",
        help="drive the city through its HTTP APIs on simulated time",
        description="Simulate a city: reports from inspectors, cameras, the hotline and the public, and every "
        "actor's steps on each case, at rates that default to what real cities publish. Without URLs it "
        "starts the city itself: in this process (embedded mode) or one process per service (production).",
    )
    parser.add_argument("--days", type=int, default=1, help="simulated days of reports (default 1)")
    parser.add_argument("--seed", type=int, default=1, help="the same seed simulates the same city (default 1)")
    parser.add_argument("--scale", type=float, default=1.0, help="1.0 is Zhoushan: ~820 reports a day (default 1.0)")
    parser.add_argument("--start", help="first day, YYYY-MM-DD (default: a January Monday the calendar covers)")
    parser.add_argument("--mode", choices=("embedded", "production"), help="default from CITYCASE_MODE (embedded)")
    parser.add_argument("--data-dir", type=Path, help="where a city started here keeps its data (CITYCASE_DATA_DIR)")
    parser.add_argument("--url", help="drive a running city: the base URL serving every service")
    parser.add_argument(
        "--service-url",
        action="append",
        default=[],
        metavar="SERVICE=URL",
        help="drive a running city: the base URL of one service's process (repeat per service)",
    )
    parser.add_argument("--clock-file", type=Path, help="the clock file of the running city (CITYCASE_CLOCK_FILE)")
    parser.add_argument("--base-port", type=int, help="production mode: service processes listen from this port on")
    parser.add_argument("--profile", type=Path, help="rates and volumes, YAML or JSON (see services/tools/simulator)")
    parser.add_argument(
        "--set", action="append", default=[], metavar="NAME=VALUE", help="change one rate, e.g. sources.video=0.3"
    )
    parser.add_argument("--finish", choices=[f.value for f in Finish], default=Finish.SETTLE.value)
    parser.add_argument(
        "--step-minutes", type=float, default=5.0, help="simulated minutes per step, up to 10 (default 5)"
    )
    parser.add_argument("--concurrency", type=int, default=16, help="HTTP calls in flight per process (default 16)")
    parser.add_argument(
        "--patience-seconds",
        type=float,
        default=300.0,
        help="how long an action waits for the city to catch up before its case counts as stuck (default 300)",
    )


def run(args: argparse.Namespace) -> int:
    """Run the ``simulate`` command."""
    overrides: dict[str, Any] = {}
    if args.mode:
        overrides["mode"] = args.mode
    if args.data_dir:
        overrides["data_dir"] = args.data_dir
    settings = Settings(**overrides)
    try:
        if not 0 < args.step_minutes <= MAX_STEP_MINUTES:
            raise ValueError(f"--step-minutes must be more than 0 and at most {MAX_STEP_MINUTES}")
        profile = load_profile(args.profile, args.set)
        urls = _urls(args.url, args.service_url)
        options = Options(
            days=args.days,
            seed=args.seed,
            scale=args.scale,
            start=_start(args.start, settings),
            profile=profile,
            step=timedelta(minutes=args.step_minutes),
            concurrency=args.concurrency,
            patience_s=args.patience_seconds,
            finish=Finish(args.finish),
        )
        summary = run_stoppable(
            simulate(
                settings,
                options,
                urls=urls,
                clock_file=args.clock_file or settings.clock_file,
                base_port=args.base_port,
            )
        )
    except (ProfileError, SimulationError, ValueError) as exc:
        print(f"simulate: {exc}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("simulate: interrupted; the city it started has stopped, its data stays", file=sys.stderr)
        return 130
    print("\n".join(summary.lines()))
    return 0 if not summary.counts.get("stuck") and not summary.counts.get("errors") else 1


def _urls(url: str | None, service_urls: list[str]) -> dict[str, str] | None:
    if url is None and not service_urls:
        return None
    urls = dict.fromkeys(SERVICE_NAMES, url.rstrip("/")) if url else {}
    for item in service_urls:
        service, sep, base = item.partition("=")
        if not sep or service not in SERVICE_NAMES:
            raise ValueError(f"--service-url {item!r}: write SERVICE=URL with one of {', '.join(SERVICE_NAMES)}")
        urls[service] = base.rstrip("/")
    return urls


def _start(text: str | None, settings: Settings) -> datetime | None:
    """A date is midnight in the city's time zone; a date and time without a zone is the city's too."""
    if text is None:
        return None
    zone = ZoneInfo(load_city(settings.city_dir).timezone)
    instant = datetime.fromisoformat(text)
    if len(text) <= len("YYYY-MM-DD"):
        instant = datetime.combine(instant.date(), time(0))
    return instant if instant.tzinfo else instant.replace(tzinfo=zone)
