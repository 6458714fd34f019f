"""Open311 GeoReport v2 at ``/open311/v2``: discovery, the services, the service requests and
their updates (the read side, here), with the write side's ``POST requests`` and ``tokens``
(``intake.open311.submit``) in the same router.

The spec: https://wiki.open311.org/GeoReport_v2 (its methods, their arguments and errors),
https://wiki.open311.org/Service_Discovery, and FixMyStreet's ``servicerequestupdates``
(https://github.com/mysociety/fixmystreet/wiki/Open311-FMS---Proposed-differences-to-Open311).
Elements, in the order each document writes them:

- ``<discovery>``: changeset, contact, key_service, endpoints of ``<endpoint>``: specification,
  url, changeset, type, formats of ``<format>``;
- ``<services>`` of ``<service>``: service_code, service_name, description, metadata, type,
  keywords, group;
- ``<service_definition>``: service_code, attributes of ``<attribute>`` (variable, code, datatype,
  required, datatype_description, order, description, values of ``<value>``: key, name);
- ``<service_requests>`` of ``<request>`` and ``<service_request_updates>`` of
  ``<request_update>``: see ``intake.open311.service_requests``;
- ``<errors>`` of ``<error>``: code, description.

One city per server: ``jurisdiction_id`` may be left out, and names the city's ``id`` when given
(another is a 404, as the spec's "jurisdiction_id provided was not found"). The spec's statuses:
404 for what does not exist (a service, a request, a format), 403 for an API key, 400 for the
rest; every error under the mount, FastAPI's own included, is written as Open311's ``<errors>``.
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, FastAPI, Query, Request, Response
from fastapi.exceptions import RequestValidationError, WebSocketRequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from intake.open311 import submit
from intake.open311.formats import Format, Items, Open311Error, document, errors, format_of_path, record
from intake.open311.service_requests import (
    CLOSED,
    MOST_PER_ANSWER,
    OPEN,
    RequestSearch,
    find_requests,
    find_updates,
)
from intake.open311.submit import ensure_jurisdiction
from shared.city.loader import CATEGORIES_FILE
from shared.city.model import Category
from shared.core.clock import SystemClock
from shared.service.context import ServiceContext
from shared.web.context import Context

PREFIX = "/open311"
"""Where the runtime mounts the router (``intake.app``): its paths begin with ``/v2``."""
SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
DESCRIPTION = """\
Open311 GeoReport v2 (https://wiki.open311.org/GeoReport_v2/) for citizen apps: the city's categories as
services, requests posted with an API key (`python -m services open311 keys issue`) and verified on site by the
cell's inspector like a public report, and the status of each case, in JSON or XML as the path's format says.
Reading needs no key; posting needs the app's `api_key` (rate-limited per key). Errors are the spec's
`<errors>`, not the project's.
"""
"""The head of the mount's OpenAPI document."""
# "may not span more than 90 days"; "when not specified, the range defaults to most recent 90 days".
MOST_DAYS = timedelta(days=90)

router = APIRouter(prefix="/v2", tags=["open311"])

Jurisdiction = Annotated[
    str | None, Query(max_length=100, description="the city's id; optional, as this server serves one city")
]
# A W3C date-time (https://www.w3.org/TR/NOTE-datetime) as the spec takes it: a time needs its
# offset (Z or ±hh:mm), a date alone is the city's midnight.
_W3C = re.compile(r"\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?(?:Z|[+-]\d{2}:\d{2}))?")
_DATE_DOC = "W3C date-time with its offset (2026-11-02T09:00:00+08:00, or Z for UTC), or a date (the city's midnight)"


def _answers(what: str) -> dict[int | str, dict[str, Any]]:
    return {200: {"description": what, "content": {"text/xml": {}, "application/json": {}}}}


@router.get(
    "/discovery.{fmt}",
    summary="Service discovery: the endpoint, its formats, how to get a key",
    response_class=Response,
    responses=_answers("`<discovery>`: changeset, contact, key_service, endpoints"),
)
async def discovery(fmt: Format, ctx: Context) -> Response:
    """What a client reads first (https://wiki.open311.org/Service_Discovery). ``changeset``
    changes when the city's services do (its catalogue file); the endpoint is ``production``
    unless the city runs on a simulated clock (``test``: nothing is acted upon for real)."""
    changeset = _changeset(ctx)
    endpoint = {
        "specification": SPECIFICATION,
        "url": f"{ctx.settings.public_url.rstrip('/')}{PREFIX}/v2",
        "changeset": changeset,
        "type": "production" if isinstance(ctx.clock, SystemClock) else "test",
        "formats": Items("format", ["text/xml", "application/json"]),
    }
    return record(
        fmt,
        "discovery",
        {
            "changeset": changeset,
            "contact": f"{ctx.city.name}数字城管指挥中心 · The digital city management command center of"
            f" {ctx.city.name_en}: {ctx.settings.public_url}",
            "key_service": "向城市运行管理部门申请 API 密钥；只读请求无需密钥 · Ask the city's operators for an"
            " API key (they issue one per application); reading needs none",
            "endpoints": Items("endpoint", [endpoint]),
        },
    )


@router.get(
    "/services.{fmt}",
    summary="The services: the city's case categories",
    response_class=Response,
    responses=_answers("`<services>` of `<service>`"),
)
async def services(fmt: Format, ctx: Context, jurisdiction_id: Jurisdiction = None) -> Response:
    """Every case category of the city as a service: its code, its name in the city's language,
    an English description, its major class as the group. Requests are verified on site before
    they are filed, so a posted request is answered with a token first (``type`` batch)."""
    ensure_jurisdiction(ctx, jurisdiction_id, fmt)
    return document(fmt, "services", "service", [_service(category) for category in ctx.city.categories])


@router.get(
    "/services/{service_code}.{fmt}",
    summary="A service's definition: the attributes a request of it takes",
    response_class=Response,
    responses=_answers("`<service_definition>`: service_code, attributes"),
)
async def service_definition(
    service_code: str, fmt: Format, ctx: Context, jurisdiction_id: Jurisdiction = None
) -> Response:
    """The city's categories ask for no more than a request's own fields (its catalogue defines
    no attributes), so every definition's ``attributes`` is empty and ``GET services`` says
    ``metadata`` false. 404: a code the city does not have."""
    ensure_jurisdiction(ctx, jurisdiction_id, fmt)
    _ensure_services(ctx, [service_code], fmt)
    return record(fmt, "service_definition", {"service_code": service_code, "attributes": Items("attribute")})


@router.get(
    "/requests.{fmt}",
    summary="Service requests: by id, or reported in a range of at most 90 days",
    response_class=Response,
    responses=_answers("`<service_requests>` of `<request>`, most recently requested first, at most 1000"),
)
async def service_requests(
    fmt: Format,
    ctx: Context,
    jurisdiction_id: Jurisdiction = None,
    service_request_id: Annotated[
        str | None, Query(max_length=40_000, description="case numbers, comma separated; overrides the rest")
    ] = None,
    service_code: Annotated[str | None, Query(max_length=4000, description="service codes, comma separated")] = None,
    start_date: Annotated[str | None, Query(max_length=40, description=_DATE_DOC)] = None,
    end_date: Annotated[str | None, Query(max_length=40, description=_DATE_DOC)] = None,
    status: Annotated[str | None, Query(max_length=20, description="open, closed, or both comma separated")] = None,
) -> Response:
    """The filed cases asked for: each ``service_request_id`` given (numbers the city does not
    have are left out), or those reported (``requested_datetime``) from ``start_date`` to
    ``end_date``, of the services and statuses given. A range is at most 90 days; without dates
    it is the last 90 days, with one the 90 days from (or to) it. 400: a date that is not
    W3C's, or a range backwards or longer than 90 days; 404: a service the city does not have."""
    ensure_jurisdiction(ctx, jurisdiction_id, fmt)
    numbers = _listed(service_request_id)
    if len(numbers) > MOST_PER_ANSWER:
        raise Open311Error(400, f"at most {MOST_PER_ANSWER} service_request_id at once", fmt)
    if numbers:
        search = RequestSearch(numbers=numbers)
    else:
        codes = _listed(service_code)
        _ensure_services(ctx, codes, fmt)
        start, end = _range(ctx, start_date, end_date, fmt)
        search = RequestSearch(start=start, end=end, service_codes=codes, statuses=_statuses(status, fmt))
    return document(fmt, "service_requests", "request", await find_requests(ctx, search))


@router.get(
    "/requests/{service_request_id}.{fmt}",
    summary="A service request",
    response_class=Response,
    responses=_answers("`<service_requests>` with its one `<request>`"),
)
async def service_request(
    service_request_id: str, fmt: Format, ctx: Context, jurisdiction_id: Jurisdiction = None
) -> Response:
    """The filed case with this number. 404: no such case (a report being verified has a token,
    not yet a number)."""
    ensure_jurisdiction(ctx, jurisdiction_id, fmt)
    found = await find_requests(ctx, RequestSearch(numbers=[service_request_id]))
    if not found:
        raise Open311Error(404, f"service_request_id {service_request_id} not found", fmt)
    return document(fmt, "service_requests", "request", found)


@router.get(
    "/servicerequestupdates.{fmt}",
    summary="What happened to the service requests in a range of at most 90 days (FixMyStreet's extension)",
    response_class=Response,
    responses=_answers("`<service_request_updates>` of `<request_update>`, oldest first, at most 1000"),
)
async def service_request_updates(
    fmt: Format,
    ctx: Context,
    jurisdiction_id: Jurisdiction = None,
    start_date: Annotated[str | None, Query(max_length=40, description=_DATE_DOC)] = None,
    end_date: Annotated[str | None, Query(max_length=40, description=_DATE_DOC)] = None,
) -> Response:
    """Each step of every service request from ``start_date`` to ``end_date`` (the same range
    rules as ``GET requests``): confirmed on site, filed, dispatched, accepted, handled, checked,
    closed... with the request's status after it. A client polls with the time of its last poll;
    with 1000 updates in its range, it asks again from the last one's ``updated_datetime``."""
    ensure_jurisdiction(ctx, jurisdiction_id, fmt)
    start, end = _range(ctx, start_date, end_date, fmt)
    return document(fmt, "service_request_updates", "request_update", await find_updates(ctx, start, end))


# The write side shares the prefix, the format suffixes and the error bodies.
router.include_router(submit.router)


def _service(category: Category) -> dict[str, Any]:
    urgent = "; urgent, handled around the clock" if category.urgent else ""
    return {
        "service_code": category.code,
        "service_name": category.name,
        "description": f"{category.name_en} ({category.major_name_en}){urgent}",
        "metadata": False,
        "type": "batch",
        "keywords": ", ".join((category.name_en, category.major_name_en)),
        "group": category.major_name,
    }


def _changeset(ctx: ServiceContext) -> datetime:
    """When the city's services last changed: its catalogue file's time, in the city's zone (now,
    should the file have gone since the city was loaded: a client then reads the services again)."""
    zone = ZoneInfo(ctx.city.timezone)
    try:
        modified = (ctx.city.calendar_file.parent / CATEGORIES_FILE).stat().st_mtime
    except OSError:
        return ctx.clock.now().astimezone(zone).replace(microsecond=0)
    return datetime.fromtimestamp(int(modified), zone)


def _ensure_services(ctx: ServiceContext, codes: list[str], fmt: Format) -> None:
    known = {category.code for category in ctx.city.categories}
    unknown = [code for code in codes if code not in known]
    if unknown:
        raise Open311Error(404, f"service_code {', '.join(unknown)} not found", fmt)


def _listed(value: str | None) -> list[str]:
    """A comma-separated argument's values; an empty argument is one not given (the spec's
    "Optional Arguments")."""
    return [item.strip() for item in (value or "").split(",") if item.strip()]


def _statuses(value: str | None, fmt: Format) -> set[str]:
    statuses = {item.lower() for item in _listed(value)}
    wrong = sorted(statuses - {OPEN, CLOSED})
    if wrong:
        raise Open311Error(400, f"status {', '.join(wrong)}: the statuses are open and closed", fmt)
    return statuses


def _range(ctx: ServiceContext, start_date: str | None, end_date: str | None, fmt: Format) -> tuple[datetime, datetime]:
    """The range of at most 90 days the dates name (see ``service_requests``)."""
    zone = ZoneInfo(ctx.city.timezone)
    start = _instant(start_date, "start_date", zone, fmt)
    end = _instant(end_date, "end_date", zone, fmt)
    if start is None:
        end = end or ctx.clock.now()
        start = end - MOST_DAYS
    elif end is None:
        end = start + MOST_DAYS
    if end < start:
        raise Open311Error(400, "end_date is before start_date", fmt)
    if end - start > MOST_DAYS:
        raise Open311Error(400, "start_date to end_date may not span more than 90 days", fmt)
    return start, end


def _instant(value: str | None, name: str, zone: ZoneInfo, fmt: Format) -> datetime | None:
    if not value:
        return None
    # An offset's "+" sent unencoded in a query string arrives as a space; a date has no spaces.
    text = value.strip().replace(" ", "+")
    try:
        if not _W3C.fullmatch(text):
            raise ValueError(text)
        if len(text) == len("2026-11-02"):
            return datetime.combine(date.fromisoformat(text), time(), zone)
        return datetime.fromisoformat(text)
    except ValueError:
        raise Open311Error(
            400, f"{name} {value!r} is not a W3C date-time with its offset, e.g. 2026-11-02T09:00:00+08:00", fmt
        ) from None


# --- errors: Open311's bodies for everything the mount answers -----------------------------------

_ERRORS_SCHEMA = {
    "type": "array",
    "items": {
        "type": "object",
        "properties": {"code": {"type": ["integer", "string"]}, "description": {"type": "string"}},
        "required": ["code", "description"],
    },
}
_ERROR_DOCS: dict[int | str, dict[str, Any]] = {
    "default": {
        "description": "Open311's errors, `<errors>` of `<error>` (code, description) in the format of the path's"
        " suffix (XML when it names none the server speaks): 404 what does not exist, 403 an API key, 400 the rest",
        "content": {"text/xml": {}, "application/json": {"schema": _ERRORS_SCHEMA}},
    }
}
# What the project's answers say in headers that the rewritten answers keep.
_REWRITTEN_HEADERS = ("retry-after", "www-authenticate", "allow")


def install(app: FastAPI) -> None:
    """Make the mount's app answer every error in Open311's shape: its own refusals
    (``Open311Error``), FastAPI's 404, 405 and 422 (a 400 here, as the spec has it; a format the
    server does not speak is a 404), and the project's handlers' answers (503 when a dependency is
    down, 500) rewritten with their status and ``Retry-After``. Called before the routes are added,
    so that the documentation names these bodies."""
    app.router.responses = _ERROR_DOCS
    for kind, handler in list(app.exception_handlers.items()):
        if kind not in (RequestValidationError, WebSocketRequestValidationError, StarletteHTTPException):
            app.add_exception_handler(kind, _rewritten(handler))
    app.add_exception_handler(Open311Error, _on_open311_error)
    app.add_exception_handler(RequestValidationError, _on_invalid_request)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)


async def _on_open311_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Open311Error)
    return errors(exc.fmt, exc.status_code, exc.problems)


async def _on_invalid_request(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    fmt = format_of_path(request.url.path)
    if any(tuple(error["loc"][:2]) == ("path", "fmt") for error in exc.errors()):
        suffix = request.url.path.rpartition(".")[2]
        return errors(fmt, 404, [(404, f"no format {suffix!r}: ask for .xml or .json")])
    problems: list[tuple[str | int, str]] = [
        (400, f"{'.'.join(str(part) for part in error['loc'][1:])}: {error['msg']}") for error in exc.errors()
    ]
    return errors(fmt, 400, problems)


async def _on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    answer = errors(format_of_path(request.url.path), exc.status_code, [(exc.status_code, str(exc.detail))])
    answer.headers.update(exc.headers or {})
    return answer


def _rewritten(handler: Callable[..., Any]) -> Callable[[Request, Exception], Any]:
    """``handler``'s answer (the project's ``{code, message, details}``) as Open311's body."""

    async def rewrite(request: Request, exc: Exception) -> Response:
        answer = handler(request, exc)
        if inspect.isawaitable(answer):
            answer = await answer
        assert isinstance(answer, Response)
        status = 400 if answer.status_code == 422 else answer.status_code
        message = json.loads(bytes(answer.body)).get("message", "the request failed")
        rewritten = errors(format_of_path(request.url.path), status, [(status, message)])
        for name in _REWRITTEN_HEADERS:
            if name in answer.headers:
                rewritten.headers[name] = answer.headers[name]
        return rewritten

    return rewrite
