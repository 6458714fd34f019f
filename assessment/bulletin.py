"""The monthly bulletin (月度通报) as cities publish it, built from counters only, and its Excel form."""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping, Sequence
from datetime import date
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Font

from assessment import domain, queries
from assessment.domain import PeriodKind
from assessment.queries import Period
from shared.city.indicators import CITY, COUNTERS, INDICATORS
from shared.city.model import City
from shared.service.context import ServiceContext

TOP_CATEGORIES = 10
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def name_of(city: City, scope_kind: str, scope_id: str) -> str:
    """A scope's name for people (the id itself when the city does not know it)."""
    fixed = _fixed_names(city, scope_kind)
    if fixed is not None:
        return fixed.get(scope_id, scope_id)
    try:
        return str(_LOOKUPS[scope_kind](city, scope_id).name)
    except KeyError:
        return scope_id


def city_knows(city: City, scope_kind: str, scope_id: str) -> bool:
    """Whether ``scope_id`` names a scope of ``scope_kind`` in the city's configuration as it
    stands (a district merged away, an inspector gone, are not in it, though their counters are)."""
    fixed = _fixed_names(city, scope_kind)
    if fixed is not None:
        return scope_id in fixed
    try:
        _LOOKUPS[scope_kind](city, scope_id)
    except KeyError:
        return False
    return True


def _fixed_names(city: City, scope_kind: str) -> Mapping[str, str] | None:
    """The names of a kind whose scopes are fixed (not the city's configuration), by id."""
    if scope_kind == "city":
        return {CITY: city.name}
    return _FIXED_NAMES.get(scope_kind)


_LOOKUPS: Mapping[str, Callable[[City, str], Any]] = {
    "district": City.district,
    "street": City.street,
    "community": City.community,
    "cell": City.cell,
    "category": City.category,
    "department": City.department,
    "inspector": City.inspector,
}
_FIXED_NAMES: Mapping[str, Mapping[str, str]] = {
    "family": {"component": "部件 components", "event": "事件 events"},
    "source": {
        "inspector": "监督员 inspectors",
        "hotline": "热线 hotline",
        "public": "公众 public",
        "video": "视频 video",
    },
}


MAPPED_KINDS: tuple[str, ...] = ("cell", "community", "street", "district", "department", "inspector")
"""The scope kinds whose every scope the city lists, so that a map can colour each of them."""


def scope_ids(city: City, scope_kind: str) -> list[str]:
    """Every scope of ``scope_kind`` (one of ``MAPPED_KINDS``) the city has, in its order."""
    scopes: Mapping[str, Sequence[Any]] = {
        "cell": city.cells,
        "community": city.communities,
        "street": city.streets,
        "district": city.districts,
        "department": city.departments,
        "inspector": city.inspectors,
    }
    return [scope.id for scope in scopes[scope_kind]]


def mapped(
    city: City, scope_kind: str, by_scope: Mapping[str, Mapping[str, int]], indicator: str
) -> dict[str, float | int | None]:
    """``indicator`` of every scope of ``scope_kind``: each scope the city has (one without
    counters has none of the base counters, and no rate), then any other the counters name.
    ``InvalidInput`` for an indicator the scopes do not have, as for a ranking."""
    domain.ensure_scope_has(scope_kind, indicator)
    nothing = indicator_value(dict.fromkeys(COUNTERS, 0), indicator)
    values: dict[str, float | int | None] = dict.fromkeys(scope_ids(city, scope_kind), nothing)
    for scope_id in sorted(by_scope):
        values[scope_id] = indicator_value(by_scope[scope_id], indicator)
    return values


def indicator_value(values: Mapping[str, int], indicator: str) -> float | int | None:
    """One indicator (base counter or derived) from base counters."""
    if indicator in values:
        return values[indicator]
    return domain.derived(values)[indicator]


def ranked(
    city: City, scope_kind: str, by_scope: Mapping[str, Mapping[str, int]], indicator: str, *, descending: bool = True
) -> list[dict[str, Any]]:
    """Scopes ordered by ``indicator`` (those without a value last), ties broken by more ``due``
    then by id so a ranking is stable; equal values share a rank. ``InvalidInput`` for an
    indicator the scopes do not have (a department's on-time dispatch).
    """
    domain.ensure_scope_has(scope_kind, indicator)

    def sort_key(item: tuple[str, Mapping[str, int]]) -> tuple[int, float, int, str]:
        scope_id, values = item
        value = indicator_value(values, indicator)
        if value is None:
            return (1, 0.0, 0, scope_id)
        due = values["closed"] + values["overdue_open"]
        return (0, -float(value) if descending else float(value), -due, scope_id)

    rows: list[dict[str, Any]] = []
    previous: float | int | None = None
    rank = 0
    for position, (scope_id, values) in enumerate(sorted(by_scope.items(), key=sort_key), start=1):
        value = indicator_value(values, indicator)
        if value is None or value != previous:
            rank = position
        previous = value
        counters, indicators = domain.figures(scope_kind, values)
        rows.append(
            {
                "rank": rank if value is not None else None,
                "scope_id": scope_id,
                "name": name_of(city, scope_kind, scope_id),
                "value": value,
                "counters": counters,
                "indicators": indicators,
            }
        )
    return rows


async def monthly_bulletin(ctx: ServiceContext, month: date) -> dict[str, Any]:
    """The bulletin of the month that starts on ``month``."""
    city = ctx.city
    period = Period.bucket(PeriodKind.MONTH, month)
    totals = await queries.indicators(ctx, "city", CITY, period)

    async def breakdown(kind: str) -> dict[str, dict[str, int]]:
        return await queries.scopes_of_kind(ctx, kind, period)

    categories = await breakdown("category")
    top = sorted(categories.items(), key=lambda item: (-item[1]["reports"], item[0]))[:TOP_CATEGORIES]
    backlog = await queries.backlog_by_department(ctx, period.end)
    return {
        "city": city.name,
        "period": period.to_json(),
        "totals": {**totals, **domain.derived(totals)},
        "by_source": _named(city, "source", await breakdown("source")),
        "by_family": _named(city, "family", await breakdown("family")),
        "top_categories": [
            {
                "code": code,
                "name": name_of(city, "category", code),
                "reports": values["reports"],
                "filed": values["filed"],
            }
            for code, values in top
        ],
        "department_ranking": ranked(city, "department", await breakdown("department"), "on_time_closure_rate"),
        "district_ranking": ranked(city, "district", await breakdown("district"), "on_time_closure_rate"),
        "overdue_backlog": [
            {"department_id": department_id, "name": name_of(city, "department", department_id), "overdue_open": count}
            for department_id, count in sorted(backlog.items(), key=lambda item: (-item[1], item[0]))
        ],
    }


def _named(city: City, kind: str, by_scope: Mapping[str, Mapping[str, int]]) -> list[dict[str, Any]]:
    return [
        {"id": scope_id, "name": name_of(city, kind, scope_id), **values, **domain.derived(values)}
        for scope_id, values in sorted(by_scope.items())
    ]


_PERCENT = "0.00%"


def workbook(bulletin: Mapping[str, Any]) -> bytes:
    """The bulletin as an Excel workbook (.xlsx), one sheet per table, rates as percentages."""
    book = Workbook()
    _summary(book, bulletin)
    columns = [
        "reports",
        "filed",
        "effective_filing_rate",
        "due",
        "closed",
        "closed_on_time",
        "on_time_closure_rate",
        "satisfaction_rate",
    ]
    for title, rows in (("来源 Sources", bulletin["by_source"]), ("部件事件 Families", bulletin["by_family"])):
        sheet = book.create_sheet(title)
        _header(sheet, ["id", "name", *columns])
        for row in rows:
            sheet.append([row["id"], row["name"], *(row[c] for c in columns)])
        _percent_columns(sheet, columns, offset=3)

    sheet = book.create_sheet("高发问题 Top categories")
    _header(sheet, ["code", "name", "reports", "filed"])
    for row in bulletin["top_categories"]:
        sheet.append([row["code"], row["name"], row["reports"], row["filed"]])

    ranking_columns = [
        "due",
        "closed",
        "closed_on_time",
        "closure_rate",
        "on_time_closure_rate",
        "return_rate",
        "satisfaction_rate",
    ]
    for title, rows in (
        ("部门排名 Departments", bulletin["department_ranking"]),
        ("区排名 Districts", bulletin["district_ranking"]),
    ):
        sheet = book.create_sheet(title)
        _header(sheet, ["rank", "id", "name", *ranking_columns])
        for row in rows:
            values = {**row["counters"], **row["indicators"]}
            sheet.append([row["rank"], row["scope_id"], row["name"], *(values[c] for c in ranking_columns)])
        _percent_columns(sheet, ranking_columns, offset=4)

    sheet = book.create_sheet("超期积压 Overdue backlog")
    _header(sheet, ["department_id", "name", "overdue_open"])
    for row in bulletin["overdue_backlog"]:
        sheet.append([row["department_id"], row["name"], row["overdue_open"]])

    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _summary(book: Workbook, bulletin: Mapping[str, Any]) -> None:
    summary = book.active
    assert summary is not None
    summary.title = "概况 Summary"
    period = bulletin["period"]
    _header(summary, ["指标 indicator", "值 value"])
    summary.append(["城市 city", bulletin["city"]])
    summary.append(["期间 period", f"{period['start']} – {period['end']}"])
    for name in INDICATORS:
        summary.append([name, bulletin["totals"][name]])
        if name.endswith("_rate"):
            summary.cell(row=summary.max_row, column=2).number_format = _PERCENT


def _header(sheet: Any, names: list[str]) -> None:
    sheet.append(names)
    for cell in sheet[1]:
        cell.font = Font(bold=True)


def _percent_columns(sheet: Any, columns: list[str], *, offset: int) -> None:
    for index, name in enumerate(columns):
        if name.endswith("_rate"):
            for row in sheet.iter_rows(min_row=2, min_col=offset + index, max_col=offset + index):
                for cell in row:
                    cell.number_format = _PERCENT
