"""The command line: ``python -m services run all|intake|... [--mode embedded|production]``, and
``launch``, ``gateway``, ``migrate``, ``city``, ``calendar load``, ``assessment rebuild``, ``reconcile``,
``simulate``, ``outbox``, ``dead-letters``, ``deliveries``, ``open311 keys``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import logging
import os
import sys
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeAlias
from uuid import UUID
from zoneinfo import ZoneInfo

import uvicorn
from fastapi import FastAPI
from pwdlib import PasswordHash

from intake.delivery import DeliveryState, Selection
from intake.delivery import discard as discard_deliveries
from intake.delivery import listed as listed_deliveries
from intake.delivery import redrive as redrive_deliveries
from intake.delivery import unknown_ids as unknown_delivery_ids
from intake.open311 import keys as open311_keys
from services.runtime.app import create_app
from services.runtime.gateway import gateway_app
from services.runtime.registry import load_specs
from services.runtime.runtime import build_bus
from services.tools.banner import AnnouncingServer
from services.tools.launcher import launch, run_stoppable, settings_env, stop_with_parent
from services.tools.rebuild import MemberFailed
from services.tools.rebuild import rebuild as rebuild_assessment
from services.tools.reconcile import RECONCILED_SERVICES, Endpoints
from services.tools.reconcile import run as reconcile_run
from services.tools.simulator import cli as simulator_cli
from services.tools.simulator.run import SIMULATION_TUNING
from shared.city.calendar import OfficialYears, load_calendar, read_official_year
from shared.city.loader import CityDataError, load_city
from shared.core.clock import FileClock, SystemClock, clock_of_folder
from shared.core.errors import DomainError
from shared.core.logs import configure_logging
from shared.core.settings import SERVICE_NAMES, Mode, Settings
from shared.db.engine import create_engine
from shared.db.migrations import upgrade_to_head
from shared.messaging.dead_letters import DeadLetter, DeadLetters, DeadLettersUnavailable, readable
from shared.messaging.parking import parked_rows, unpark
from shared.messaging.store import ServiceStore
from shared.service.spec import ServiceSpec

Command = Callable[[argparse.Namespace, Settings], int]
# A string: argparse's subparsers action is generic only to type checkers.
Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line and run the command."""
    parser = argparse.ArgumentParser(prog="python -m services", description="citycase services")
    commands = parser.add_subparsers(dest="command", required=True)
    for add in (
        _add_run,
        _add_migrate,
        _add_assessment,
        _add_launch,
        _add_gateway,
        _add_city,
        _add_calendar,
        _add_reconcile,
        _add_outbox,
        _add_dead_letters,
        _add_deliveries,
        _add_open311,
        _add_accounts,
    ):
        add(commands)
    simulator_cli.add_parser(commands)
    args = parser.parse_args(argv)
    overrides = {"mode": args.mode} if getattr(args, "mode", None) else {}
    settings = Settings(**overrides)
    try:
        # A service's process is named for its services; any other for its command.
        configure_logging(settings.log_format, settings.log_level, getattr(args, "service", None) or args.command)
    except ValueError as exc:
        parser.error(f"CITYCASE_LOG_LEVEL: {exc}")
    if args.command == "simulate":
        return simulator_cli.run(args)
    try:
        command: Command = args.run_command
        return command(args, settings)
    except _UsageError as exc:
        parser.error(str(exc))


class _UsageError(ValueError):
    """The command line names something that does not exist: argparse's usage error."""


def _add_accounts(commands: Commands) -> None:
    accounts = commands.add_parser("accounts", help="the city's log-ins")
    actions = accounts.add_subparsers(dest="action", required=True)
    hashing = actions.add_parser(
        "hash-password",
        help="read a password (asked for, or one line of standard input) and print its Argon2 hash for users.yaml",
    )
    hashing.set_defaults(run_command=_hash_password)


def _hash_password(_args: argparse.Namespace, _settings: Settings) -> int:
    if sys.stdin.isatty():
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            print("the two passwords differ", file=sys.stderr)
            return 2
    else:
        password = sys.stdin.readline().rstrip("\n")
    if len(password) < 12:
        print("a password needs 12 characters or more", file=sys.stderr)
        return 2
    print(PasswordHash.recommended().hash(password))
    return 0


def _add_run(commands: Commands) -> None:
    run = commands.add_parser("run", help="serve one service, or all of them in one process")
    run.add_argument("service", choices=("all", *SERVICE_NAMES))
    _add_mode(run)
    run.add_argument("--host", help="interface to listen on (default from CITYCASE_HTTP_HOST)")
    run.add_argument("--port", type=int, help="port to listen on (default from CITYCASE_HTTP_PORT)")
    run.add_argument(
        "--stop-with-parent", action="store_true", help="stop when the program that started this one ends (launch)"
    )
    run.add_argument(
        "--workers",
        type=_positive,
        default=1,
        help="processes serving on the one port (production mode): each with its own consumers and relay "
        "candidate, sharing nothing but the database and the bus, as replicas do; one that dies is replaced",
    )
    run.set_defaults(run_command=_serve)


def _ensure_workers_may_share(workers: int, settings: Settings) -> None:
    """Several processes of one service need production mode: the embedded city's SQLite files and
    event log belong to one process."""
    if workers > 1 and settings.mode is not Mode.PRODUCTION:
        raise _UsageError("--workers needs production mode (PostgreSQL and Kafka)")


def _positive(text: str) -> int:
    number = int(text)
    if number < 1:
        raise argparse.ArgumentTypeError(f"at least 1, not {number}")
    return number


# The service the workers of ``run --workers`` serve: they read it, as their settings, from the
# environment their supervisor leaves them (uvicorn starts them afresh, from an import string).
_WORKERS_SERVE = "CITYCASE_WORKERS_SERVE"


def workers_app() -> FastAPI:
    """One worker's app, for uvicorn's supervisor of ``run --workers``."""
    stop_with_parent()
    settings = Settings()
    service = os.environ[_WORKERS_SERVE]
    configure_logging(settings.log_format, settings.log_level, service)
    return create_app([service], settings, own_process=True)


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    if args.stop_with_parent:
        stop_with_parent()
    port = settings.http_port if args.port is None else args.port
    _ensure_workers_may_share(args.workers, settings)
    if args.workers > 1:
        os.environ.update({**settings_env(settings), _WORKERS_SERVE: args.service})
        uvicorn.run(
            "services.tools.cli:workers_app",
            factory=True,
            workers=args.workers,
            host=args.host or settings.http_host,
            port=port,
            log_config=None,
        )
        return 0
    app = create_app([args.service], settings, own_process=True)
    # log_config=None: uvicorn's lines go through the process's handler (configure_logging), in its format.
    config = uvicorn.Config(app, host=args.host or settings.http_host, port=port, log_config=None)
    server = AnnouncingServer(config, settings)
    with contextlib.suppress(KeyboardInterrupt):
        server.run()
    return 0 if server.started else 1


def _add_migrate(commands: Commands) -> None:
    migrate = commands.add_parser("migrate", help="bring service schemas to the newest revision")
    migrate.add_argument(
        "services", nargs="*", metavar="SERVICE", help=f"all (the default) or some of: {', '.join(SERVICE_NAMES)}"
    )
    _add_mode(migrate)
    migrate.set_defaults(run_command=_migrate_schemas)


def _migrate_schemas(args: argparse.Namespace, settings: Settings) -> int:
    try:
        specs = load_specs(args.services or ["all"])
    except ValueError as exc:
        raise _UsageError(str(exc)) from exc
    asyncio.run(_migrate(specs, settings))
    return 0


def _add_assessment(commands: Commands) -> None:
    assessment = commands.add_parser("assessment", help="the assessment stream's maintenance")
    assessment_commands = assessment.add_subparsers(dest="action", required=True)
    rebuild = assessment_commands.add_parser(
        "rebuild", help="replay the case event log from the start into fresh counters"
    )
    _add_mode(rebuild)
    rebuild.add_argument(
        "--workers",
        type=_positive,
        default=1,
        help="processes replaying at once (production mode): members of one consumer group, splitting the "
        "log's partitions (default 1: this process)",
    )
    rebuild.set_defaults(run_command=_replay)


def _replay(args: argparse.Namespace, settings: Settings) -> int:
    _ensure_workers_may_share(args.workers, settings)
    try:
        replay = rebuild_assessment(settings, args.workers)
    except MemberFailed as exc:
        print(f"assessment rebuild: {exc}", file=sys.stderr)
        return 1
    print(f"replayed {replay.events} events in {replay.seconds:.1f}s ({replay.events_per_second:,.0f} events/s)")
    return 0


def _add_launch(commands: Commands) -> None:
    launch = commands.add_parser(
        "launch", help="start every service, each in its own process (production mode), until Ctrl-C"
    )
    _add_mode(launch)
    launch.add_argument("--base-port", type=int, default=8100, help="the first service's port (default 8100)")
    launch.add_argument(
        "--port",
        type=int,
        help="the gateway's port: the console and every service's API at one address (default from CITYCASE_HTTP_PORT)",
    )
    launch.add_argument("--clock-file", type=Path, help="run on simulated time kept in this file (created)")
    launch.add_argument("--start", help="with --clock-file: the simulated start, YYYY-MM-DD (default: now)")
    launch.set_defaults(run_command=_launch)


def _add_gateway(commands: Commands) -> None:
    gateway = commands.add_parser(
        "gateway",
        help="the console at / and every service's API at one address, in front of a process per service (launch"
        " starts it)",
    )
    gateway.add_argument(
        "--service-url",
        action="append",
        required=True,
        metavar="SERVICE=URL",
        help="where a service's process listens, e.g. intake=http://127.0.0.1:8100 (once per service; the first"
        " also answers log-in, the city's data, the calendar and operations)",
    )
    gateway.add_argument("--host", help="interface to listen on (default from CITYCASE_HTTP_HOST)")
    gateway.add_argument("--port", type=int, help="port to listen on (default from CITYCASE_HTTP_PORT)")
    gateway.add_argument(
        "--stop-with-parent", action="store_true", help="stop when the program that started this one ends (launch)"
    )
    gateway.set_defaults(run_command=_serve_gateway)


def _serve_gateway(args: argparse.Namespace, settings: Settings) -> int:
    if args.stop_with_parent:
        stop_with_parent()
    app = gateway_app(_service_urls(args.service_url), settings.console_dir)
    # uvicorn logs every request already; httpx would log each one again as the gateway passes it.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # The gateway is where the city's network begins: a caller's X-Forwarded-For is not believed.
    uvicorn.run(
        app,
        host=args.host or settings.http_host,
        port=args.port or settings.http_port,
        proxy_headers=False,
        log_config=None,  # the process's handler and format (configure_logging)
    )
    return 0


def _add_city(commands: Commands) -> None:
    city = commands.add_parser("city", help="check a city's reference data folder and summarise it")
    city.add_argument("folder", nargs="?", type=Path, help="default from CITYCASE_CITY_DIR (the demo city)")
    city.set_defaults(run_command=lambda args, settings: _check_city(args.folder or settings.city_dir))


def _add_calendar(commands: Commands) -> None:
    calendar = commands.add_parser("calendar", help="the city's working calendar")
    calendar_commands = calendar.add_subparsers(dest="action", required=True)
    load = calendar_commands.add_parser(
        "load",
        help="load a year's official days from the State Council's notice; provisional deadlines are recomputed",
        description="FILE is YAML: 'holidays: [...]' (days off besides Saturdays and Sundays) and 'workdays: [...]'"
        " (Saturdays or Sundays worked). The year is kept in CITYCASE_CALENDAR_DIR (default: the data folder's"
        " calendar/), where every running process of the city adopts it within a few seconds and recomputes the"
        " deadlines it counted on the provisional year; a process started later reads it at start.",
    )
    load.add_argument("year", type=int, help="the year, e.g. 2027")
    load.add_argument("file", type=Path, help="the year's holidays and workdays (YAML)")
    load.set_defaults(run_command=_load_calendar_year)


def _load_calendar_year(args: argparse.Namespace, settings: Settings) -> int:
    try:
        official = read_official_year(args.year, args.file)
        path = OfficialYears(settings.official_years_path).save(official)
    except (ValueError, OSError) as exc:
        print(exc, file=sys.stderr)
        return 1
    print(
        f"{official.year}: {len(official.holidays)} holidays, {len(official.workdays)} make-up working days,"
        f" saved to {path}; running services adopt it and recompute their provisional deadlines"
    )
    return 0


def _add_reconcile(commands: Commands) -> None:
    reconcile = commands.add_parser(
        "reconcile",
        help="recount every indicator in batch from the services' records and compare with the stream's counters",
        description="Exit status: 0 when both paths agree, 1 when values differ (they are listed), 2 when they"
        " could not be compared.",
    )
    reconcile.add_argument(
        "--url",
        help="base URL of a process serving every service (default http://CITYCASE_HTTP_HOST:CITYCASE_HTTP_PORT)",
    )
    reconcile.add_argument(
        "--service-url",
        action="append",
        default=[],
        metavar="SERVICE=URL",
        help="base URL of one service's own process, e.g. dispatch=http://dispatch:8000 (repeatable)",
    )
    reconcile.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for each answer (default 60)")
    reconcile.set_defaults(run_command=_reconcile)


def _reconcile(args: argparse.Namespace, settings: Settings) -> int:
    base = args.url or f"http://{settings.http_host}:{settings.http_port}"
    return reconcile_run(settings, Endpoints(base, _service_urls(args.service_url)), args.timeout)


def _launch(args: argparse.Namespace, settings: Settings) -> int:
    base_port: int = args.base_port
    clock_file: Path | None = args.clock_file
    start: str | None = args.start
    if settings.mode is not Mode.PRODUCTION:
        print(
            "launch starts one process per service, which is the production mode (--mode production);"
            " the embedded mode runs every service in one process: python -m services run all",
            file=sys.stderr,
        )
        return 2
    if clock_file is not None:
        zone = ZoneInfo(load_city(settings.city_dir).timezone)
        instant = datetime.fromisoformat(start).replace(tzinfo=zone) if start else datetime.now(UTC)
        FileClock.create(clock_file.resolve(), instant)
        # A simulation will drive this city: let its timers see simulated time passing promptly.
        settings = settings.model_copy(update={"clock_file": clock_file.resolve(), **SIMULATION_TUNING})
    ports = {service: base_port + n for n, service in enumerate(SERVICE_NAMES)}

    async def serve_until_interrupted() -> None:
        async with launch(settings, SERVICE_NAMES, ports) as processes:
            for service, url in processes.urls.items():
                print(f"{service:>10}: {url}/{service}/docs", flush=True)
            entry = await processes.start_gateway(args.port or settings.http_port, settings)
            print(f"{'console':>10}: {entry}/ (and every service's API, through the gateway)", flush=True)
            print("every service is ready; Ctrl-C stops them all", flush=True)
            while processes.alive():
                await asyncio.sleep(0.5)
            print("a service process exited: stopping the others", file=sys.stderr)

    with contextlib.suppress(KeyboardInterrupt, asyncio.CancelledError):
        run_stoppable(serve_until_interrupted())
    return 0


def _add_outbox(commands: Commands) -> None:
    outbox = commands.add_parser("outbox", help="outbox rows the relay parked because the bus refuses them")
    actions = outbox.add_subparsers(dest="action", required=True)
    parked = actions.add_parser("parked", help="list the parked rows, with why, and the rows waiting behind them")
    parked.add_argument(
        "services", nargs="*", metavar="SERVICE", help=f"all (the default) or some of: {', '.join(SERVICE_NAMES)}"
    )
    _add_mode(parked)
    parked.set_defaults(run_command=lambda args, settings: asyncio.run(_list_parked(args.services, settings)))
    retry = actions.add_parser(
        "retry", help="hand parked rows back to the relay once their cause is fixed (a topic created, a limit raised)"
    )
    retry.add_argument("service", choices=SERVICE_NAMES)
    retry.add_argument("seqs", nargs="*", type=int, metavar="SEQ", help="the rows to retry (default: every parked row)")
    _add_mode(retry)
    retry.set_defaults(run_command=lambda args, settings: asyncio.run(_retry_parked(args.service, args.seqs, settings)))


async def _list_parked(services: Sequence[str], settings: Settings) -> int:
    try:
        specs = load_specs(services or ["all"])
    except ValueError as exc:
        raise _UsageError(str(exc)) from exc
    for spec in specs:
        async with _outbox_store(spec, settings) as store:
            rows = await parked_rows(store)
        print(f"{spec.name}: {len(rows)} parked row(s)")
        for row in rows:
            key = row.key.decode("utf-8", errors="replace") if row.key is not None else "-"
            print(
                f"  seq {row.seq}  topic {row.topic}  key {key}  {row.size} bytes  {row.attempts} attempts"
                f"  parked {row.parked_at:%Y-%m-%d %H:%M:%S}Z  {row.held_behind} waiting behind it\n    {row.reason}"
            )
    return 0


async def _retry_parked(service: str, seqs: Sequence[int], settings: Settings) -> int:
    (spec,) = load_specs([service])
    async with _outbox_store(spec, settings) as store:
        retried = await unpark(store, seqs or None)
    print(f"{service}: {retried} parked row(s) handed back to the relay")
    if seqs and retried < len(set(seqs)):
        print(f"{service}: {len(set(seqs)) - retried} of the rows named were not parked", file=sys.stderr)
        return 1
    return 0


@contextlib.asynccontextmanager
async def _outbox_store(spec: ServiceSpec, settings: Settings) -> AsyncIterator[ServiceStore]:
    engine = create_engine(settings.database_url(spec.name))
    try:
        yield ServiceStore(
            spec.name, engine, spec.metadata, clock=SystemClock(), case_events_topic=settings.topic_case_events
        )
    finally:
        await engine.dispose()


def _add_dead_letters(commands: Commands) -> None:
    dead_letters = commands.add_parser(
        "dead-letters",
        help="the records consumers gave up on: list, show and redrive them",
        description="Embedded mode: the running city holds the event log; stop it, or use GET /ops/dead-letters.",
    )
    actions = dead_letters.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="the dead letters not redriven yet, oldest first")
    listing.add_argument("--consumer", help="only those of this consumer")
    show = actions.add_parser("show", help="one dead letter: the reason, the record's headers and value")
    show.add_argument("id", type=UUID)
    redrive = actions.add_parser("redrive", help="send dead letters again to the consumer that failed on them")
    target = redrive.add_mutually_exclusive_group(required=True)
    target.add_argument("id", nargs="?", type=UUID, help="the dead letter to send again")
    target.add_argument("--all", action="store_true", help="every pending dead letter (of --consumer)")
    redrive.add_argument("--consumer", help="with --all: only those of this consumer")
    for action in (listing, show, redrive):
        _add_mode(action)
        action.set_defaults(run_command=lambda args, settings: asyncio.run(_dead_letters(args, settings)))


async def _dead_letters(args: argparse.Namespace, settings: Settings) -> int:
    bus = build_bus(settings, client_id="citycase-dead-letters")
    try:
        await bus.start()
    except Exception as exc:  # no broker answers, or the running embedded city holds its log
        print(f"cannot open the event bus: {exc} (a running embedded city: GET /ops/dead-letters)", file=sys.stderr)
        await bus.close()
        return 2
    try:
        letters = DeadLetters(bus, settings.topic_dead_letter)
        if args.action == "list":
            pending = await letters.pending(args.consumer)
            print(f"{len(pending)} dead letter(s) pending")
            for letter in pending:
                print(_dead_letter_line(letter))
        elif args.action == "show":
            seen = await letters.inspect(args.id)
            print(_dead_letter_line(seen.letter))
            print(f"redriven: {seen.redriven_at or 'no'}")
            print(f"key: {'-' if seen.key is None else readable(seen.key)[0]}")
            for name, value in seen.headers:
                print("header {}: {} ({})".format(name, *readable(value)))
            print("value ({1}):\n{0}".format(*readable(seen.value)))
        else:
            sent = await letters.redrive_all(args.consumer) if args.all else [await letters.redrive(args.id)]
            print(f"{len(sent)} dead letter(s) sent again")
            for letter in sent:
                print(_dead_letter_line(letter))
        return 0
    except DeadLettersUnavailable as exc:
        print(exc.message, file=sys.stderr)
        return 2
    except DomainError as exc:  # no such dead letter, or redriven already
        print(exc.message, file=sys.stderr)
        return 1
    finally:
        await bus.close()


def _dead_letter_line(letter: DeadLetter) -> str:
    origin = f"{letter.origin.topic}/{letter.origin.partition}/{letter.origin.offset}" if letter.origin else "-"
    event = f"{letter.event_type or '-'} {letter.event_id or '-'} subject {letter.subject or '-'}"
    return (
        f"{letter.id}  {letter.dead_lettered_at:%Y-%m-%d %H:%M:%S}Z  {letter.consumer or '-'}  from {origin}"
        f"  {event}\n    {letter.reason}"
    )


def _add_deliveries(commands: Commands) -> None:
    deliveries = commands.add_parser(
        "deliveries",
        help="messages for other systems (hotlines, departments): list, redrive or discard the dead ones",
    )
    actions = deliveries.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="the messages given up on (dead), or still to deliver, oldest first")
    shown = listing.add_mutually_exclusive_group()
    shown.add_argument("--pending", action="store_true", help="the messages still to deliver instead")
    shown.add_argument("--discarded", action="store_true", help="the dead messages discarded instead")
    redrive = actions.add_parser(
        "redrive",
        help="give dead messages a fresh set of attempts, the first at once (the later ones of their cases follow)",
        description="Name the messages: --endpoint, --case, --id (repeatable); given together, each narrows.",
    )
    for action in (listing, redrive):
        action.add_argument("--endpoint", help="hotline:<id> or department:<id>")
        action.add_argument("--case", type=UUID, help="a case id")
        _add_mode(action)
    redrive.add_argument("--id", type=UUID, action="append", default=[], help="a message id (repeatable)")
    discard = actions.add_parser(
        "discard",
        help="give up on dead messages for good, with the reason (the later ones of their cases go on)",
        description="For a message its endpoint will never take. Who (your user name), when and why are kept.",
    )
    discard.add_argument("--id", type=UUID, action="append", required=True, help="a message id (repeatable)")
    discard.add_argument("--reason", required=True, help="why it is never to be sent (kept with it)")
    _add_mode(discard)
    listing.set_defaults(run_command=lambda args, settings: asyncio.run(_list_deliveries(args, settings)))
    redrive.set_defaults(run_command=lambda args, settings: asyncio.run(_redrive_deliveries(args, settings)))
    discard.set_defaults(run_command=lambda args, settings: asyncio.run(_discard_deliveries(args, settings)))


async def _list_deliveries(args: argparse.Namespace, settings: Settings) -> int:
    state = DeliveryState.PENDING if args.pending else DeliveryState.DISCARDED if args.discarded else DeliveryState.DEAD
    selection = Selection(args.endpoint, args.case)
    async with _outbox_store(_intake_spec(), settings) as store:
        page = await listed_deliveries(store, state, selection, limit=1000)
    print(f"{len(page.rows)}{'+' if page.following else ''} {state.value} message(s)")
    for row in page.rows:
        print(_delivery_line(row))
    return 0


async def _redrive_deliveries(args: argparse.Namespace, settings: Settings) -> int:
    selection = Selection(args.endpoint, args.case, tuple(args.id))
    if selection.is_empty:
        raise _UsageError("deliveries redrive: name the messages with --endpoint, --case or --id")
    async with _outbox_store(_intake_spec(), settings) as store:
        unknown = await unknown_delivery_ids(store, selection.ids)
        if unknown:
            print(f"no message with id {', '.join(map(str, unknown))}", file=sys.stderr)
            return 1
        # The city's clock: a simulated city's redriven messages are due on its own time.
        clock = clock_of_folder(settings.data_dir, settings.clock_file, real_time=settings.real_time)
        redriven = await redrive_deliveries(store, clock, selection)
    print(f"{len(redriven)} dead message(s) sent again")
    for row in redriven:
        print(_delivery_line(row))
    return 0


async def _discard_deliveries(args: argparse.Namespace, settings: Settings) -> int:
    reason = args.reason.strip()
    if not reason:
        raise _UsageError("deliveries discard: --reason says why the messages are never to be sent")
    async with _outbox_store(_intake_spec(), settings) as store:
        # The city's clock, as for a redrive: a simulated city's discards happen on its own time.
        clock = clock_of_folder(settings.data_dir, settings.clock_file, real_time=settings.real_time)
        try:
            discarded = await discard_deliveries(store, clock, args.id, f"{getpass.getuser()} (cli)", reason)
        except DomainError as exc:  # no such message, or one that is not dead
            print(f"{exc.message}: {exc.details}", file=sys.stderr)
            return 1
    print(f"{len(discarded)} dead message(s) discarded")
    for row in discarded:
        print(_delivery_line(row))
    return 0


def _add_open311(commands: Commands) -> None:
    open311 = commands.add_parser("open311", help="Open311 GeoReport v2, the door for citizen apps")
    subjects = open311.add_subparsers(dest="subject", required=True)
    keys = subjects.add_parser("keys", help="the API keys of the citizen apps that post service requests")
    actions = keys.add_subparsers(dest="action", required=True)
    issue = actions.add_parser("issue", help="issue a key to an application and print it (shown this once)")
    issue.add_argument("application", help="the application's name, e.g. 'FixMyStreet Beijing' (the reports' reporter)")
    issue.add_argument(
        "--per-minute",
        type=int,
        default=open311_keys.DEFAULT_PER_MINUTE,
        help=f"requests the key may post a minute (default {open311_keys.DEFAULT_PER_MINUTE})",
    )
    listing = actions.add_parser("list", help="every key issued, revoked ones too (never the keys themselves)")
    revoke = actions.add_parser("revoke", help="refuse a key from now on")
    revoke.add_argument("id", type=UUID, help="the key's id, as list shows it")
    for action in (issue, listing, revoke):
        _add_mode(action)
        action.set_defaults(run_command=lambda args, settings: asyncio.run(_open311_keys(args, settings)))


async def _open311_keys(args: argparse.Namespace, settings: Settings) -> int:
    spec = _intake_spec()
    engine = create_engine(settings.database_url(spec.name))
    try:
        if settings.migrate_on_start:
            # As a service would at its start: a key may be issued before the city first runs.
            await upgrade_to_head(spec.name, engine)
        # The city's clock: a simulated city's keys are issued and revoked on its own time.
        clock = clock_of_folder(settings.data_dir, settings.clock_file, real_time=settings.real_time)
        store = ServiceStore(
            spec.name, engine, spec.metadata, clock=clock, case_events_topic=settings.topic_case_events
        )
        if args.action == "issue":
            issued, key = await open311_keys.issue(store, args.application, args.per_minute)
            print(f"{_key_line(issued)}\nthe key, shown this once (only its SHA-256 is kept):", file=sys.stderr)
            print(key)
        elif args.action == "list":
            issued_keys = await open311_keys.listed(store)
            print(f"{len(issued_keys)} key(s)")
            for issued in issued_keys:
                print(_key_line(issued))
        else:
            print(_key_line(await open311_keys.revoke(store, args.id)))
        return 0
    except DomainError as exc:  # a name the key cannot carry, no key with this id
        print(exc.message, file=sys.stderr)
        return 1
    finally:
        await engine.dispose()


def _key_line(key: open311_keys.ApiKey) -> str:
    state = "active" if key.revoked_at is None else f"revoked {key.revoked_at:%Y-%m-%d %H:%M:%S}Z"
    return f"{key.id}  {key.application}  {key.per_minute}/minute  issued {key.created_at:%Y-%m-%d %H:%M:%S}Z  {state}"


def _intake_spec() -> ServiceSpec:
    (spec,) = load_specs(["intake"])
    return spec


def _delivery_line(row: Mapping[Any, Any]) -> str:
    line = (
        f"{row['message_id']}  {row['endpoint']}  case {row['case_id']}  {row['kind']}  {row['attempts']} attempt(s)"
        f"  made {row['created_at']:%Y-%m-%d %H:%M:%S}Z"
    )
    reason = row["dead_reason"] or row["last_error"]
    if row["discarded_at"] is not None:
        discarded = f"discarded by {row['discarded_by']} at {row['discarded_at']:%Y-%m-%d %H:%M:%S}Z"
        reason = f"{discarded}: {row['discard_reason']}\n    dead: {reason}"
    return line + (f"\n    {reason}" if reason else "")


def _add_mode(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--mode", choices=[m.value for m in Mode], help="default from CITYCASE_MODE (embedded)")


def _service_urls(pairs: Sequence[str]) -> dict[str, str]:
    urls: dict[str, str] = {}
    for pair in pairs:
        service, _, url = pair.partition("=")
        if service not in RECONCILED_SERVICES or not url.startswith(("http://", "https://")):
            raise _UsageError(
                f"--service-url {pair!r}: expected SERVICE=http(s)://... with SERVICE one of"
                f" {', '.join(RECONCILED_SERVICES)}"
            )
        urls[service] = url
    return urls


def _check_city(folder: Path) -> int:
    try:
        city = load_city(folder)
        calendar = load_calendar(city.calendar_file)
    except (CityDataError, ValueError, OSError) as exc:
        print(f"{folder}: {exc}", file=sys.stderr)
        return 1
    print(f"{city.name} ({city.name_en}), {city.timezone}, from {folder}")
    for what, count in (
        ("districts", len(city.districts)),
        ("streets", len(city.streets)),
        ("communities", len(city.communities)),
        ("grid cells", len(city.cells)),
        ("categories", len(city.categories)),
        ("departments", len(city.departments)),
        ("routing rules", len(city.routing_rules)),
        ("inspectors", len(city.inspectors)),
        ("users", len(city.users)),
    ):
        print(f"{what:>14}: {count}")
    hours = ", ".join(f"{start:%H:%M}-{end:%H:%M}" for start, end in calendar.working_hours)
    print(f"{'working hours':>14}: {hours}")
    return 0


async def _migrate(specs: Sequence[ServiceSpec], settings: Settings) -> None:
    for spec in specs:
        engine = create_engine(settings.database_url(spec.name))
        try:
            print(f"{spec.name}: schema {await upgrade_to_head(spec.name, engine)}")
        finally:
            await engine.dispose()


if __name__ == "__main__":
    sys.exit(main())
