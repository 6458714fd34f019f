"""A simulation run: start or reach the city, drive it day after day on simulated time, let the
event flow settle, and sum up what happened.
"""

from __future__ import annotations

import asyncio
import functools
import socket
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any, TextIO
from zoneinfo import ZoneInfo

from services.runtime.local import serve
from services.tools.launcher import launch
from services.tools.simulator.actors import Actors, Tally, deadline_passed
from services.tools.simulator.client import CityClient, SimulationError
from services.tools.simulator.plan import LONGEST_STEP, Merging, Planner, covered, default_start
from services.tools.simulator.profile import Profile
from services.tools.simulator.scheduler import Scheduler, Script, SettableClock
from shared.city.calendar import WorkingCalendar, load_calendar
from shared.city.loader import load_city
from shared.city.model import City
from shared.core.auth import Role
from shared.core.clock import SIMULATION_CLOCK_FILE, FileClock
from shared.core.ids import new_id
from shared.core.settings import SERVICE_NAMES, Mode, Settings

# How a simulation tunes the city it starts. Timers wake often, so that time passing is seen
# promptly while simulated minutes go by in milliseconds. A relay wakes as its process commits an
# outbox row, so its polling only catches what that missed: polling every 50 ms cost an idle city
# a quarter of a core (profiles/simulator). Tokens and log-in sessions last in simulated time: at
# a shift's length a simulated day spent a quarter of its calls renewing them, which tells
# nothing about the city. And a simulated city's people, who all log in and report from the
# simulator's address at many times the real pace, are not a flood.
SIMULATION_TUNING: dict[str, Any] = {
    "timer_interval_seconds": 0.1,
    "outbox_poll_seconds": 1.0,
    "access_token_ttl_minutes": 24 * 60.0,
    "refresh_token_ttl_hours": 7 * 24.0,
    "rate_public_reports_per_address": "1000000/minute",
    "rate_login_attempts_per_address": "1000000/minute",
}


class Finish(StrEnum):
    """What happens after the last simulated day."""

    SETTLE = "settle"  # no new reports; the cases still open run to their end
    STOP = "stop"  # time stops at the end of the last day; open cases stay open


@dataclass(frozen=True)
class Options:
    """One simulation run."""

    days: int = 1
    seed: int = 1
    scale: float = 1.0
    start: datetime | None = None
    profile: Profile = field(default_factory=Profile)
    step: timedelta = timedelta(minutes=5)
    concurrency: int = 16
    # How long (real time) an action waits for the city to get where it can happen, e.g. through a
    # broker outage, before its case counts as stuck.
    patience_s: float = 300.0
    quiet_s: float = 3.0
    finish: Finish = Finish.SETTLE


@dataclass
class Summary:
    """What a run did, as counted from the city's answers."""

    start: datetime
    end: datetime
    counts: dict[str, int]
    overdue_open: int
    open_cases: int
    wall_s: float
    calls: int
    retries: int

    @property
    def awaiting_decision(self) -> int:
        """Reports neither filed, rejected nor merged when the run ended (review, verification)."""
        c = self.counts
        return c.get("reports", 0) - c.get("filed", 0) - c.get("rejected", 0) - c.get("merged", 0)

    @property
    def calls_per_s(self) -> float:
        """HTTP calls per second of wall time."""
        return self.calls / self.wall_s if self.wall_s else 0.0

    def rate(self, part: str, whole: str | int) -> float:
        """``part`` ÷ ``whole`` (a count's name or a number), 0 when there is nothing to divide."""
        denominator = self.counts.get(whole, 0) if isinstance(whole, str) else whole
        return self.counts.get(part, 0) / denominator if denominator else 0.0

    def lines(self) -> list[str]:
        """The summary as a reader wants it."""
        c = self.counts
        due = c.get("closed", 0) + self.overdue_open
        dispatches = c.get("accepted", 0) + c.get("returned", 0)
        sources = ", ".join(f"{s} {c.get('reports.' + s, 0)}" for s in ("inspector", "video", "hotline", "public"))
        return [
            f"simulated {self.start:%Y-%m-%d %H:%M} → {self.end:%Y-%m-%d %H:%M} (UTC)",
            f"reports        {c.get('reports', 0):>9}   ({sources})",
            f"filed          {c.get('filed', 0):>9}   effective filing rate {self.rate('filed', 'reports'):.2%}"
            f"  (rejected {c.get('rejected', 0)}, merged as duplicates {c.get('merged', 0)},"
            f" awaiting a decision {self.awaiting_decision})",
            f"self-handled   {c.get('self_handled', 0):>9}",
            f"closed         {c.get('closed', 0):>9}   on time {c.get('closed_on_time', 0)}:"
            f" on-time closure rate {self.rate('closed_on_time', due):.2%}"
            f" (due {due}, overdue open {self.overdue_open})",
            f"returns        {c.get('returned', 0):>9}   {self.rate('returned', dispatches):.2%} of dispatches"
            f"  (dispatched by hand {c.get('dispatched_by_hand', 0)}, from coordination {c.get('coordination', 0)})",
            f"reworks        {c.get('check_failed', 0):>9} {self.rate('check_failed', 'handled'):.2%} of handled cases",
            f"extensions     {c.get('extension_requested', 0):>9}   approved {c.get('extension_approved', 0)},"
            f" denied {c.get('extension_denied', 0)}",
            f"suspensions    {c.get('suspended', 0):>9}   resumed {c.get('resumed', 0)}",
            f"deadlines missed {c.get('deadline_missed', 0):>7}   cancelled {c.get('cancelled', 0)}",
            f"still open     {self.open_cases:>9}   stuck {c.get('stuck', 0)}, errors {c.get('errors', 0)}",
            f"wall time      {self.wall_s:>8.1f}s   {self.calls} HTTP calls, {self.calls_per_s:.0f}/s"
            f" ({self.retries} retries while events travelled)",
        ]


async def simulate(
    settings: Settings,
    options: Options,
    *,
    urls: Mapping[str, str] | None = None,
    clock_file: Path | None = None,
    base_port: int | None = None,
    out: TextIO = sys.stdout,
) -> Summary:
    """Run a simulation. With ``urls`` (service → base URL) it drives a running city whose clock
    file is ``clock_file``; without, it starts the city itself: all services in this process in
    the embedded mode, one process per service in the production mode. The city's data stays.
    """
    if not timedelta(0) < options.step <= LONGEST_STEP:
        # Longer steps would blur the order of what happens within them (see plan.LONGEST_STEP).
        raise SimulationError(f"the time step must be more than 0 and at most {LONGEST_STEP}")
    city = load_city(settings.city_dir)
    calendar = load_calendar(city.calendar_file)
    zone = ZoneInfo(city.timezone)
    # What intake takes for one problem: a running city at ``urls`` is taken to use these settings too.
    merging = Merging.of(settings)
    if urls is not None:
        if clock_file is None:
            raise SimulationError("a running city moves with its clock file: give the one it was started with")
        clock = FileClock(clock_file, writable=True)
        start = options.start or clock.now()
        if start < clock.now():
            raise SimulationError(f"the city's clock is at {clock.now():%Y-%m-%d %H:%M}Z already: start later")
        _check_calendar(calendar, zone, start, options.days)
        clock.set(start)
        return await _drive(urls, clock, city, calendar, merging, options, out)
    start = options.start or default_start(calendar, zone, options.days, date.today())
    _check_calendar(calendar, zone, start, options.days)
    if settings.mode is Mode.EMBEDDED and settings.event_log_path.exists():
        raise SimulationError(
            f"{settings.data_dir} holds a city already: simulate into an empty data directory (--data-dir)"
        )
    # The clock file stays with the data: it tells when the simulation ended, and the city's
    # processes, started on it, make the folder remember it, so that the city served from this
    # folder later runs on the time the simulation left it at (shared.core.clock.clock_of_folder).
    clock_path = (settings.data_dir / SIMULATION_CLOCK_FILE).resolve()
    file_clock = FileClock.create(clock_path, start)
    tuned = settings.model_copy(update={**SIMULATION_TUNING, "clock_file": clock_path})
    if settings.mode is Mode.EMBEDDED:
        async with serve(tuned) as url:
            return await _drive(dict.fromkeys(SERVICE_NAMES, url), file_clock, city, calendar, merging, options, out)
    print(f"starting {len(SERVICE_NAMES)} service processes (logs in {settings.data_dir / 'logs'})", file=out)
    async with launch(tuned, SERVICE_NAMES, _ports(base_port), log_dir=settings.data_dir / "logs") as processes:
        return await _drive(processes.urls, file_clock, city, calendar, merging, options, out)


def _check_calendar(calendar: WorkingCalendar, zone: ZoneInfo, start: datetime, days: int) -> None:
    first = start.astimezone(zone).date()
    if not covered(calendar, first, first + timedelta(days=days + 21)):
        raise SimulationError(
            f"the city's calendar does not cover {first} to three weeks after the last day: deadlines there"
            " would be refused; start earlier (--start) or add the years to calendar.yaml"
        )


def _ports(base_port: int | None) -> dict[str, int]:
    if base_port is not None:
        return {service: base_port + n for n, service in enumerate(SERVICE_NAMES)}
    ports: dict[str, int] = {}
    for service in SERVICE_NAMES:
        # Ask the system for free ports; a race with another program binding one is unlikely.
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            ports[service] = probe.getsockname()[1]
    return ports


async def _drive(
    urls: Mapping[str, str],
    clock: SettableClock,
    city: City,
    calendar: WorkingCalendar,
    merging: Merging,
    options: Options,
    out: TextIO,
) -> Summary:
    passwords = {user.username: user.password for user in city.users if user.password is not None}
    client = CityClient(urls, clock, passwords, concurrency=options.concurrency, patience_s=options.patience_s)
    try:
        await client.wait_ready()
        began = time.monotonic()
        start = clock.now()
        zone = ZoneInfo(city.timezone)
        scheduler = Scheduler(clock, options.step)
        tally = Tally()
        actors = Actors(client, scheduler, city, calendar, new_id().hex[-12:], tally)
        await actors.prepare()
        if await actors.city_has_history():
            print(
                "warning: this city holds reports already; its indicators will include them, and its open cases"
                " may absorb simulated reports as duplicates",
                file=out,
            )
        planner = Planner(city, calendar, options.profile, options.seed, options.scale, merging)
        first_day = start.astimezone(zone).date()
        end = datetime.combine(first_day + timedelta(days=options.days), datetime.min.time(), tzinfo=zone)

        def plan(day: date) -> Script:
            async def arrive() -> None:
                for arrival in planner.day(day):
                    if arrival.at >= start:
                        scheduler.start(arrival.at, functools.partial(actors.follow, arrival))
                following = day + timedelta(days=1)
                if following < end.date():
                    scheduler.start(datetime.combine(following, datetime.min.time(), tzinfo=zone), plan(following))

            return arrive

        scheduler.start(start, plan(first_day))
        progress = _Progress(out, client, tally, zone, began, start, end)
        await scheduler.run(end=end if options.finish is Finish.STOP else None, on_advance=progress.advanced)
        await scheduler.cancel()
        if options.finish is Finish.STOP and clock.now() < end:
            clock.set(end)  # the last day runs to its end, and deadlines passing until then count
        progress.day_done()
        progress.close()
        overdue = await _settle(client, actors, tally, options)
        return Summary(
            start=start,
            end=clock.now(),
            counts=dict(tally.counts),
            overdue_open=overdue,
            open_cases=len(tally.open_cases),
            wall_s=time.monotonic() - began,
            calls=client.calls,
            retries=client.retries,
        )
    finally:
        await client.aclose()


async def _settle(client: CityClient, actors: Actors, tally: Tally, options: Options) -> int:
    """Wait until the city is quiet: every deadline already passed reported missed by the timer,
    every event published and consumed. Returns how many open cases are overdue.
    """
    now = client.clock.now()

    async def overdue(case_id: str) -> bool:
        case = await client.call(actors.role(Role.SHIFT_LEAD), "GET", "dispatch", f"/cases/{case_id}")
        if not deadline_passed(case, now):
            return False
        if case["deadline_missed_at"] is None:
            await actors.missed(case_id)
        return True

    overdue_open = sum(await asyncio.gather(*(overdue(case_id) for case_id in list(tally.open_cases))))
    quiet_since = time.monotonic()
    flow = await client.event_flow()
    async with asyncio.timeout(max(120.0, options.patience_s * 4)):
        while time.monotonic() - quiet_since < options.quiet_s:
            await asyncio.sleep(0.25)
            latest = await client.event_flow()
            if latest != flow:
                flow, quiet_since = latest, time.monotonic()
    return overdue_open


class _Progress:
    """A line per simulated day; on a terminal, also a bar under them with the simulated time, the
    share of the simulated days done and the time that leaves, redrawn in place."""

    def __init__(
        self,
        out: TextIO,
        client: CityClient,
        tally: Tally,
        zone: ZoneInfo,
        began: float,
        start: datetime,
        end: datetime,
    ) -> None:
        self.out = out
        self.client = client
        self.tally = tally
        self.zone = zone
        self.began = began
        self.start = start
        self.end = end
        self.live = out.isatty()
        self.day: date | None = None
        self.reports = 0
        self.calls = 0
        self.since = began
        self.now = start
        self.drawn_at = 0.0

    def advanced(self, now: datetime) -> None:
        """Called as the clock moves; prints when a day has passed, and redraws the bar."""
        self.now = now
        today = now.astimezone(self.zone).date()
        if self.day is None:
            self.day = today
        elif today != self.day:
            self.day_done()
            self.day = today
        if self.live and time.monotonic() - self.drawn_at >= _REDRAW_S:
            self._draw()

    def day_done(self) -> None:
        """Print the day just finished."""
        if self.day is None:
            return
        elapsed = time.monotonic() - self.since
        reports = self.tally.counts["reports"] - self.reports
        calls = self.client.calls - self.calls
        self._clear()
        print(
            f"{self.day}  {reports:>6} reports  {calls:>7} calls  {calls / elapsed if elapsed else 0:>6.0f} calls/s"
            f"  open {len(self.tally.open_cases):>6}  wall {time.monotonic() - self.began:>7.1f}s",
            file=self.out,
            flush=True,
        )
        self.reports, self.calls, self.since = self.tally.counts["reports"], self.client.calls, time.monotonic()
        if self.live:
            self._draw()

    def close(self) -> None:
        """Take the bar away (the summary follows)."""
        self._clear()
        self.live = False

    def _draw(self) -> None:
        self.drawn_at = time.monotonic()
        elapsed = self.drawn_at - self.began
        share = min(1.0, max(0.0, (self.now - self.start) / (self.end - self.start)))
        filled = round(share * _BAR_WIDTH)
        if share >= 1.0:
            left = "the open cases run to their end"
        elif share > 0.0:
            # Simulated time is the measure: a day's reports come mostly by day, so this is rough
            # within the first day and close after a few.
            left = f"ETA {_duration(elapsed * (1 - share) / share)}"
        else:
            left = "ETA --"
        line = (
            f"{self.now.astimezone(self.zone):%Y-%m-%d %H:%M} [{'#' * filled}{'.' * (_BAR_WIDTH - filled)}]"
            f" {share:4.0%}  reports {self.tally.counts['reports']}  open {len(self.tally.open_cases)}"
            f"  {_duration(elapsed)} elapsed, {left}"
        )
        self.out.write(f"\r\x1b[2K{line}")
        self.out.flush()

    def _clear(self) -> None:
        if self.live:
            self.out.write("\r\x1b[2K")


# The bar is redrawn at most this often (seconds), and is this many characters wide.
_REDRAW_S = 0.25
_BAR_WIDTH = 24


def _duration(seconds: float) -> str:
    """``1h02m``, ``4m05s`` or ``12s``."""
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"
