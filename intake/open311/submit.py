"""Open311 GeoReport v2's write side: ``POST requests`` and ``GET tokens/{token}``.

A request posted by a citizen app becomes a public report under intake's rules, as one sent to
``/intake/public/reports`` does: it goes to the cell's inspector to verify on site first (or joins
an open case of the same problem nearby), so the answer is a ``token`` (the report's id), which
``tokens/{token}`` turns into the ``service_request_id`` (the case number) once the report is filed.
The contact fields (``email``, ``device_id``, ``account_id``, ``first_name``, ``last_name``,
``phone``) are kept apart from the report as a hotline's citizen contact is, and are never answered
back, published, exported or logged.

Errors are the spec's (https://wiki.open311.org/GeoReport_v2, "POST Service Request", "Errors"):
403 for a missing, unknown or revoked ``api_key``; 404 for a ``service_code`` or
``jurisdiction_id`` the city does not have, or a token nobody was given; 400 for anything else
the request cannot be taken with, every such problem of a request named in one answer.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import select
from sqlalchemy.engine import RowMapping
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException as StarletteHTTPException

from intake import handlers
from intake.domain import ReportStatus
from intake.models import reports
from intake.open311 import keys
from intake.open311.formats import Format, Open311Error, document
from shared.db.driver import Row
from shared.events.catalogue import ReportSource
from shared.service.context import ServiceContext
from shared.web.bodies import Text
from shared.web.context import Context
from shared.web.limits import limits_of

router = APIRouter()

# The spec's bound: "free form text limited to 4,000 characters".
DESCRIPTION_LENGTH = 4000
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
# ``attribute[CODE]``, or ``attribute[CODE][]`` for each value of a multivaluelist.
_ATTRIBUTE = re.compile(r"attribute\[([^\[\]]+)\](\[\])?")
_ID = r"^[0-9A-Za-z_.-]+$"
_PHONE = r"^\+?[0-9(][0-9 ().-]{2,30}$"
_EMAIL = r"^[^@\s]+@[^@\s]+$"
_URL = r"^https?://\S+$"


class RequestForm(BaseModel):
    """The fields of ``POST requests`` besides ``api_key`` and the attributes, as the spec names
    them; an empty field counts as not sent (the spec's "Optional Arguments")."""

    model_config = ConfigDict(extra="ignore")

    jurisdiction_id: str | None = Field(default=None, max_length=100)
    service_code: str = Field(max_length=32, pattern=_ID, description="a code GET services lists")
    lat: float | None = Field(default=None, ge=-90, le=90, allow_inf_nan=False, description="WGS-84")
    long: float | None = Field(default=None, ge=-180, le=180, allow_inf_nan=False, description="WGS-84")
    address_string: Text | None = Field(
        default=None, max_length=500, description="taken only beside lat and long: the city has no geocoder"
    )
    address_id: str | None = Field(
        default=None, max_length=100, description="taken only beside lat and long: the city has no address registry"
    )
    description: Text | None = Field(default=None, max_length=DESCRIPTION_LENGTH)
    media_url: str | None = Field(
        default=None, max_length=2048, pattern=_URL, description="kept as given, never fetched"
    )
    # The citizen's contact: out of every repr, so that a form in a traceback or a log does not carry it.
    email: str | None = Field(default=None, max_length=254, pattern=_EMAIL, description="private", repr=False)
    device_id: Text | None = Field(default=None, max_length=128, description="private", repr=False)
    account_id: Text | None = Field(default=None, max_length=128, description="private", repr=False)
    first_name: Text | None = Field(default=None, max_length=50, description="private", repr=False)
    last_name: Text | None = Field(default=None, max_length=50, description="private", repr=False)
    phone: str | None = Field(default=None, max_length=32, pattern=_PHONE, description="private", repr=False)

    def contact(self) -> handlers.Contact | None:
        """What the form says of the citizen, or None when it says nothing."""
        name = " ".join(part for part in (self.first_name, self.last_name) if part) or None
        contact = handlers.Contact(name, self.phone, self.email, self.device_id, self.account_id)
        return None if contact == handlers.Contact() else contact


def _form_schema() -> dict[str, Any]:
    schema = RequestForm.model_json_schema()
    schema["properties"] = {
        "api_key": {"type": "string", "description": "the key the city issued to the app"},
        **schema["properties"],
    }
    schema["required"] = ["api_key", *schema.get("required", [])]
    schema["additionalProperties"] = {
        "type": "string",
        "description": "attribute[CODE]=value (attribute[CODE][]=value for each value of a list), as"
        " GET services/{service_code} defines them",
    }
    return schema


_FORM_DOCS: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {media_type: {"schema": _form_schema()} for media_type in _FORM_TYPES},
    }
}
_ANSWERS: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "`token` (verification first), or `service_request_id` when the report joined an open"
        " request; with `service_notice`",
        "content": {Format.JSON.content_type: {}, Format.XML.content_type: {}},
    }
}


@router.post(
    "/requests.{fmt}",
    summary="A citizen app posts a service request (form-encoded)",
    response_class=Response,
    responses=_ANSWERS,
    openapi_extra=_FORM_DOCS,
)
async def post_request(fmt: Format, request: Request, ctx: Context) -> Response:
    """A public report that an inspector verifies on site first: answered with a ``token`` for
    ``tokens/{token}``, or with the ``service_request_id`` of the open request it joined (the same
    problem reported nearby). Sent ``application/x-www-form-urlencoded`` as the spec says, or as
    ``multipart/form-data``. 403: ``api_key`` missing, unknown or revoked; 429 (``Retry-After``):
    the key's requests of the last minute are used up; 404: an unknown ``service_code`` or
    ``jurisdiction_id``; 400: no ``lat`` and ``long`` (an ``address_string`` or ``address_id``
    alone cannot be placed), a point outside the city, a field too long or malformed, an attribute
    the service does not define."""
    form = await _read_form(request, fmt)
    try:
        key = await keys.admit(ctx.store, limits_of(request), _single(form, "api_key", fmt))
    except keys.KeyRefused as refused:
        raise Open311Error(403, str(refused), fmt) from None
    fields = _fields(form, fmt)
    ensure_jurisdiction(ctx, fields.get("jurisdiction_id"), fmt)
    sent = _validated(fields, fmt)
    if sent.service_code not in {category.code for category in ctx.city.categories}:
        raise Open311Error(404, f"service_code {sent.service_code} is not one of the city's services", fmt)
    lon, lat = _point(ctx, sent, fmt)
    _ensure_no_attributes(form, sent.service_code, fmt)
    row, _ = await handlers.receive_report(
        ctx,
        handlers.NewReport(
            source=ReportSource.PUBLIC,
            category_code=sent.service_code,
            description=sent.description or "",
            lon=lon,
            lat=lat,
            reporter_id=key.reporter_id,
            contact=sent.contact(),
            media_url=sent.media_url,
        ),
    )
    return document(fmt, "service_requests", "request", [await _posted(ctx, row)])


@router.get(
    "/tokens/{token}.{fmt}",
    summary="The service_request_id a posted request became",
    response_class=Response,
    responses={200: {"description": "`service_request_id` (empty until filed) and `token`"}},
)
async def get_token(
    token: str,
    fmt: Format,
    ctx: Context,
    jurisdiction_id: Annotated[str | None, Query(max_length=100)] = None,
) -> Response:
    """``service_request_id`` is the case number once an inspector's verification filed the
    report (or the number of the open request it joined), empty while it waits. 404: a token no
    ``POST requests`` answered, or a report not accepted as a service request (the inspector found
    no such problem, or an operator declined it): it never will be one, and polling can stop."""
    ensure_jurisdiction(ctx, jurisdiction_id, fmt)
    report = await _posted_report(ctx, token)
    if report is None:
        raise Open311Error(404, f"no token {token}", fmt)
    if report["status"] == ReportStatus.REJECTED:
        raise Open311Error(404, f"token {token}: the report was not accepted as a service request", fmt)
    number = await _case_number(ctx, report)
    return document(fmt, "service_requests", "request", [{"service_request_id": number, "token": token}])


async def _read_form(request: Request, fmt: Format) -> FormData:
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type not in _FORM_TYPES:
        raise Open311Error(
            400,
            "send the request form-encoded: Content-Type application/x-www-form-urlencoded (or multipart/form-data)",
            fmt,
        )
    try:
        # Media is named by media_url: a file in the form is not a field of the spec.
        return await request.form(max_files=0, max_fields=200)
    except StarletteHTTPException as exc:
        raise Open311Error(400, f"the form cannot be read: {exc.detail}", fmt) from None


def _single(form: FormData, name: str, fmt: Format) -> str | None:
    values = form.getlist(name)
    if len(values) > 1:
        raise Open311Error(400, f"{name} is given {len(values)} times; give it once", fmt)
    if not values:
        return None
    value = values[0]
    assert isinstance(value, str)  # the form is read with max_files=0: no file reaches here
    return value or None


def _fields(form: FormData, fmt: Format) -> dict[str, str]:
    """The spec's fields the form holds (an empty one is not sent); each must come once."""
    fields = {name: _single(form, name, fmt) for name in RequestForm.model_fields}
    return {name: value for name, value in fields.items() if value is not None}


def _refusal(problems: list[str], fmt: Format) -> Open311Error:
    """A 400 naming every problem found with a request, one error each."""
    refusal = Open311Error(400, "; ".join(problems), fmt)
    refusal.problems = [(400, problem) for problem in problems]
    return refusal


def _validated(fields: Mapping[str, str], fmt: Format) -> RequestForm:
    try:
        return RequestForm.model_validate(fields)
    except ValidationError as exc:
        # Each problem by the field's name and what is wrong; never the value sent, which may be
        # the citizen's contact.
        raise _refusal([_problem(error) for error in exc.errors()], fmt) from None


def _problem(error: Mapping[str, Any]) -> str:
    name = ".".join(str(part) for part in error["loc"])
    if error["type"] == "missing":
        return f"{name} is required"
    if error["type"] in ("string_too_long", "too_long"):  # the latter: a bound checked after a validator
        return f"{name}: at most {error['ctx']['max_length']} characters"
    return f"{name}: {error['msg']}"


def ensure_jurisdiction(ctx: ServiceContext, jurisdiction_id: str | None, fmt: Format) -> None:
    """One city per server, so ``jurisdiction_id`` may be left out; given, it must be the city's."""
    if jurisdiction_id and jurisdiction_id != ctx.city.id:
        raise Open311Error(404, f"jurisdiction_id {jurisdiction_id} not found: this server's is {ctx.city.id}", fmt)


def _point(ctx: ServiceContext, sent: RequestForm, fmt: Format) -> tuple[float, float]:
    """Where the problem is: ``lat`` and ``long`` inside the city's grid."""
    if sent.lat is None or sent.long is None:
        if sent.lat is not None or sent.long is not None:
            raise Open311Error(400, "lat and long are sent together", fmt)
        given = [name for name in ("address_string", "address_id") if getattr(sent, name) is not None]
        if given:
            raise Open311Error(
                400,
                f"{' and '.join(given)} alone cannot be placed: this city has no geocoder; send lat and long (WGS-84)",
                fmt,
            )
        raise Open311Error(400, "lat and long (WGS-84) are required", fmt)
    if ctx.city.locate(sent.long, sent.lat) is None:
        raise Open311Error(400, f"lat {sent.lat}, long {sent.long} is outside {ctx.city.name_en}", fmt)
    return sent.long, sent.lat


def _ensure_no_attributes(form: FormData, service_code: str, fmt: Format) -> None:
    """Attributes are the answers a service definition asks for; the city's services define none
    (``GET services/{service_code}`` lists no attributes), so a request may carry none."""
    problems: list[str] = []
    for name in dict.fromkeys(form.keys()):
        if not name.startswith("attribute"):
            continue
        found = _ATTRIBUTE.fullmatch(name)
        if found is None:
            problems.append(f"{name}: an attribute is sent as attribute[CODE]=value")
        else:
            problems.append(f"attribute {found.group(1)}: service {service_code} defines no such attribute")
    if problems:
        raise _refusal(problems, fmt)


async def _posted(ctx: ServiceContext, row: Row) -> dict[str, Any]:
    """The answer to a posted request, in the spec's order: the request's id or a token, and the
    notice of what happens next. A public report is never filed as it arrives: it waits for the
    inspector, unless it joined an open case."""
    if row["status"] == ReportStatus.MERGED:
        number = await _case_number(ctx, row)
        notice = f"The same problem was reported nearby and is service request {number}: this report joins it."
        return {"service_request_id": number, "service_notice": notice}
    due = _local(ctx, row["verification_due_at"])
    notice = (
        f"An inspector verifies the report on site by {due}; once filed it is a service request,"
        f" whose service_request_id tokens/{row['id']} answers."
    )
    return {"token": str(row["id"]), "service_notice": notice}


def _local(ctx: ServiceContext, instant: datetime) -> str:
    return instant.astimezone(ZoneInfo(ctx.city.timezone)).isoformat(timespec="minutes")


async def _posted_report(ctx: ServiceContext, token: str) -> RowMapping | None:
    """The report ``POST requests`` answered ``token`` for: a public report an app sent."""
    try:
        report_id = UUID(token)
    except ValueError:
        return None
    query = select(reports.c.status, reports.c.case_number, reports.c.merged_into).where(
        reports.c.id == report_id,
        reports.c.source == ReportSource.PUBLIC,
        reports.c.reporter_id.startswith(keys.REPORTER_PREFIX, autoescape=True),
    )
    async with ctx.store.engine.connect() as connection:
        return (await connection.execute(query)).mappings().first()


async def _case_number(ctx: ServiceContext, report: Mapping[Any, Any]) -> str | None:
    """The number of the case a report became, or joined; None while it waits."""
    if report["merged_into"] is None:
        number: str | None = report["case_number"]
        return number
    query = select(reports.c.case_number).where(reports.c.id == report["merged_into"])
    async with ctx.store.engine.connect() as connection:
        return (await connection.execute(query)).scalar()
