"""The city's reference data: grid, categories, departments, routing, inspectors, demo users.

A city is a folder of plain files (the demo one is ``deploy/cities/demo``; its README describes
every file), loaded once at service start by ``load_city``. Loading validates everything and
fails with one ``CityDataError`` that lists every problem, each naming its file and row or
feature, so a city's administrator can fix a whole folder in one pass.

The files::

    city.yaml         id, name, English name, time zone
    grid.geojson      unit grid cells (万米单元网格) with their community, street and district
    categories.yaml   case categories (CJ/T 214 shape) with their time limits
    departments.csv   the departments cases are dispatched to
    routing.csv       which department owns a category in an area
    inspectors.csv    grid inspectors and the cells each one patrols
    users.yaml        demo log-ins (plain-text passwords: demo only)
    calendar.yaml     the working calendar, read by the calendar module, not here
"""

from __future__ import annotations

import csv
import json
import re
import zoneinfo
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import shapely
import yaml
from pydantic import BaseModel, ValidationError
from shapely import Polygon

from shared.city.geo import GridIndex, area_m2
from shared.city.model import (
    ANY_CATEGORY,
    CITY_ID_PATTERN,
    AreaLevel,
    Category,
    City,
    Community,
    DemoUser,
    Department,
    District,
    GridCell,
    Inspector,
    RoutingRule,
    Street,
)

CITY_FILE = "city.yaml"
GRID_FILE = "grid.geojson"
CATEGORIES_FILE = "categories.yaml"
DEPARTMENTS_FILE = "departments.csv"
ROUTING_FILE = "routing.csv"
INSPECTORS_FILE = "inspectors.csv"
USERS_FILE = "users.yaml"
CALENDAR_FILE = "calendar.yaml"

# A declared cell area may differ this much from the area of its polygon: enough for areas
# measured in a projected system (Gauss-Krüger scale error is under 0.1 %), not for a wrong CRS.
AREA_TOLERANCE = 0.02
# Stop listing after this many problems: past it they are almost always one mistake repeated.
MAX_PROBLEMS = 50


class CityDataError(ValueError):
    """The city folder is inconsistent; ``problems`` names the file and row of each problem."""

    def __init__(self, folder: Path, problems: list[str]) -> None:
        self.folder = folder
        self.problems = tuple(problems)
        shown = problems[:MAX_PROBLEMS]
        more = f"\n  ... and {len(problems) - len(shown)} more" if len(problems) > len(shown) else ""
        super().__init__(f"city data in {folder} is invalid:\n  " + "\n  ".join(shown) + more)


class _Problems:
    """Collects problems across a whole folder, so one run reports them all."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.items: list[str] = []

    def add(self, where: str, message: str) -> None:
        self.items.append(f"{where}: {message}")

    def add_validation(self, where: str, error: ValidationError) -> None:
        for detail in error.errors():
            field = ".".join(str(part) for part in detail["loc"])
            # A model validator's own message reads better without pydantic's "Value error, ".
            message = str(detail["ctx"]["error"]) if detail["type"] == "value_error" else detail["msg"]
            self.add(where, f"{field}: {message}" if field else message)

    def raise_if_any(self) -> None:
        if self.items:
            raise CityDataError(self.folder, self.items)


_Model = TypeVar("_Model", bound=BaseModel)


def _validate(model: type[_Model], data: object, where: str, problems: _Problems) -> _Model | None:
    try:
        return model.model_validate(data)
    except ValidationError as error:
        problems.add_validation(where, error)
        return None


def _read_yaml(path: Path, problems: _Problems) -> dict[str, Any] | None:
    try:
        with path.open(encoding="utf-8") as stream:
            data = yaml.load(stream, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except FileNotFoundError:
        problems.add(path.name, "file not found")
        return None
    except yaml.YAMLError as error:
        problems.add(path.name, f"not valid YAML: {error}")
        return None
    if not isinstance(data, dict):
        problems.add(path.name, "expected a mapping at the top level")
        return None
    return data


def _read_csv(path: Path, columns: tuple[str, ...], problems: _Problems) -> Iterator[tuple[str, dict[str, str | None]]]:
    """Rows as ``("file line N", {column: value or None when empty})``."""
    try:
        stream = path.open(encoding="utf-8", newline="")
    except FileNotFoundError:
        problems.add(path.name, "file not found")
        return
    with stream:
        reader = csv.DictReader(stream)
        header = tuple(reader.fieldnames or ())
        if set(header) != set(columns):
            problems.add(f"{path.name} line 1", f"expected the columns {', '.join(columns)}; found {', '.join(header)}")
            return
        for row in reader:
            where = f"{path.name} line {reader.line_num}"
            if None in row:
                problems.add(where, "more values than columns")
                continue
            if None in row.values():
                problems.add(where, "fewer values than columns")
                continue
            yield where, {key: (value.strip() or None) if value is not None else None for key, value in row.items()}


def _find_duplicates(ids: Iterable[tuple[str, str]], what: str, problems: _Problems) -> None:
    """Report every id seen twice: ``ids`` are (where, id) pairs."""
    first_seen: dict[str, str] = {}
    for where, item_id in ids:
        if item_id in first_seen:
            problems.add(where, f"duplicate {what} {item_id!r} (first at {first_seen[item_id]})")
        else:
            first_seen[item_id] = where


def _load_manifest(folder: Path, problems: _Problems) -> dict[str, str]:
    """id, name, name_en and timezone; whatever is missing is a problem, but for the id, which
    defaults to the English name as a slug (Demo City: ``demo-city``)."""
    data = _read_yaml(folder / CITY_FILE, problems)
    if data is None:
        return {}
    manifest: dict[str, str] = {}
    for key in ("name", "name_en", "timezone"):
        value = data.get(key)
        if not isinstance(value, str) or not value.strip():
            problems.add(CITY_FILE, f"{key}: a non-empty string is required")
        else:
            manifest[key] = value.strip()
    if "timezone" in manifest:
        try:
            zoneinfo.ZoneInfo(manifest["timezone"])
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            problems.add(CITY_FILE, f"timezone: unknown time zone {manifest['timezone']!r}")
    if "id" in data:
        city_id = data["id"]
        if isinstance(city_id, str) and re.fullmatch(CITY_ID_PATTERN, city_id):
            manifest["id"] = city_id
        else:
            problems.add(CITY_FILE, f"id: {city_id!r} is not lowercase letters, digits, dots and dashes")
    elif "name_en" in manifest:
        manifest["id"] = city_id_of(manifest["name_en"])
        if not re.fullmatch(CITY_ID_PATTERN, manifest["id"]):
            problems.add(CITY_FILE, "id: name_en gives no id of letters and digits; write one")
    return manifest


def city_id_of(name_en: str) -> str:
    """The id a city without one in city.yaml gets: its English name, lowercased, each run of
    other characters a dash (``Demo City`` → ``demo-city``)."""
    return re.sub(r"[^a-z0-9]+", "-", name_en.lower()).strip("-")


_CELL_PROPERTIES = (
    "cell_id",
    "name",
    "community_id",
    "community_name",
    "street_id",
    "street_name",
    "district_id",
    "district_name",
    "area_m2",
)


class _Grid:
    """What grid.geojson yields: the hierarchy and the cells with their polygons."""

    def __init__(self) -> None:
        self.districts: dict[str, District] = {}
        self.streets: dict[str, Street] = {}
        self.communities: dict[str, Community] = {}
        self.cells: list[tuple[GridCell, Polygon]] = []


_ParsedCell = tuple[str, GridCell, dict[str, Any], Polygon]


def _load_grid(folder: Path, problems: _Problems) -> _Grid:
    grid = _Grid()
    features = _grid_features(folder / GRID_FILE, problems)
    parsed = [found for number, feature in enumerate(features) if (found := _parse_cell(number, feature, problems))]
    # Vectorised over every polygon at once: validity is the costly check.
    valid = shapely.is_valid([polygon for *_, polygon in parsed]).tolist()
    _hierarchy_problems(parsed, grid, problems)
    for (where, cell, _, polygon), is_valid in zip(parsed, valid, strict=True):
        west, south, east, north = polygon.bounds
        if not is_valid:
            problems.add(where, f"invalid polygon: {shapely.is_valid_reason(polygon)}")
        elif not (-180 <= west <= east <= 180 and -90 <= south <= north <= 90):
            problems.add(where, "coordinates must be WGS-84 longitude/latitude in degrees")
        else:
            area = area_m2(polygon)
            if abs(area - cell.area_m2) > AREA_TOLERANCE * area:
                problems.add(where, f"area_m2 {cell.area_m2:.0f} does not match the polygon's {area:.0f} m²")
            grid.cells.append((cell, polygon))
    _find_duplicates(((where, cell.id) for where, cell, *_ in parsed), "cell_id", problems)
    return grid


def _grid_features(path: Path, problems: _Problems) -> list[Any]:
    """The features of grid.geojson; none when the file is missing or not a FeatureCollection."""
    try:
        with path.open(encoding="utf-8") as stream:
            data = json.load(stream)
    except FileNotFoundError:
        problems.add(GRID_FILE, "file not found")
        return []
    except json.JSONDecodeError as error:
        problems.add(GRID_FILE, f"not valid JSON: {error}")
        return []
    features = data.get("features") if isinstance(data, dict) else None
    if not isinstance(features, list) or not features:
        problems.add(GRID_FILE, "expected a FeatureCollection with at least one feature")
        return []
    return features


def _parse_cell(number: int, feature: Any, problems: _Problems) -> _ParsedCell | None:
    """One feature as a cell and its polygon, or None with its problems noted."""
    where = f"{GRID_FILE} feature {number}"
    properties = feature.get("properties") if isinstance(feature, dict) else None
    geometry = feature.get("geometry") if isinstance(feature, dict) else None
    if not isinstance(properties, dict):
        problems.add(where, "no properties")
        return None
    if properties.get("cell_id"):
        where = f"{where} (cell {properties['cell_id']})"
    missing = [key for key in _CELL_PROPERTIES if properties.get(key) in (None, "")]
    if "community_id" in missing:
        problems.add(where, "the cell is outside any community (no community_id)")
        missing.remove("community_id")
    if missing:
        problems.add(where, f"missing properties: {', '.join(missing)}")
    if missing or not properties.get("community_id"):
        return None
    if not isinstance(geometry, dict) or geometry.get("type") != "Polygon" or not geometry.get("coordinates"):
        problems.add(where, "the geometry must be a GeoJSON Polygon")
        return None
    try:
        polygon = Polygon(geometry["coordinates"][0], geometry["coordinates"][1:])
    except (ValueError, TypeError, IndexError, shapely.errors.GEOSException) as error:
        problems.add(where, f"the polygon's coordinates are unusable: {error}")
        return None
    fields = ("name", "community_id", "street_id", "district_id", "area_m2")
    cell = _validate(GridCell, {"id": properties["cell_id"], **{f: properties[f] for f in fields}}, where, problems)
    return None if cell is None else (where, cell, properties, polygon)


def _hierarchy_problems(parsed: list[_ParsedCell], grid: _Grid, problems: _Problems) -> None:
    """Each community in one street, each street in one district, one name per id."""

    def agree(where: str, what: str, known: BaseModel, item: BaseModel) -> None:
        if known != item:
            problems.add(where, f"the {what} is {item!r} here but {known!r} in an earlier feature")

    for where, _, properties, _ in parsed:
        district = District(id=str(properties["district_id"]), name=str(properties["district_name"]))
        street = Street(id=str(properties["street_id"]), name=str(properties["street_name"]), district_id=district.id)
        community = Community(
            id=str(properties["community_id"]), name=str(properties["community_name"]), street_id=street.id
        )
        agree(where, "district", grid.districts.setdefault(district.id, district), district)
        agree(where, "street", grid.streets.setdefault(street.id, street), street)
        agree(where, "community", grid.communities.setdefault(community.id, community), community)


_LIMITS = ("filing", "dispatch", "handling", "check")


def _load_categories(folder: Path, problems: _Problems) -> list[Category]:
    data = _read_yaml(folder / CATEGORIES_FILE, problems)
    if data is None:
        return []
    majors = data.get("majors")
    if not isinstance(majors, list) or not majors:
        problems.add(CATEGORIES_FILE, "majors: a list of major classes is required")
        return []
    categories: list[tuple[str, Category]] = []
    major_codes: list[tuple[str, str]] = []
    for m, major in enumerate(majors):
        where = f"{CATEGORIES_FILE} majors[{m}]"
        if not isinstance(major, dict):
            problems.add(where, "expected a mapping")
            continue
        where = f"{where} ({major.get('code')})"
        unknown = set(major) - {"code", "name", "name_en", "family", "categories"}
        if unknown:
            problems.add(where, f"unknown keys: {', '.join(sorted(unknown))}")
        minors = major.get("categories")
        if not isinstance(minors, list) or not minors:
            problems.add(where, "categories: a list of categories is required")
            continue
        major_codes.append((where, str(major.get("code"))))
        for c, minor in enumerate(minors):
            minor_where = f"{where} categories[{c}]"
            if not isinstance(minor, dict):
                problems.add(minor_where, "expected a mapping")
                continue
            minor_where = f"{minor_where} ({minor.get('code')})"
            limits = minor.get("limits")
            if not isinstance(limits, dict):
                problems.add(minor_where, "limits: the time limits are missing (filing, dispatch, handling, check)")
                continue
            missing = [key for key in _LIMITS if key not in limits]
            unknown_limits = sorted(set(limits) - set(_LIMITS))
            if missing or unknown_limits:
                problems.add(
                    minor_where,
                    f"limits: expected {', '.join(_LIMITS)} in minutes"
                    + (f"; missing {', '.join(missing)}" if missing else "")
                    + (f"; unknown {', '.join(unknown_limits)}" if unknown_limits else ""),
                )
                continue
            fields = {key: value for key, value in minor.items() if key != "limits"}
            fields |= limits
            fields |= {
                "family": major.get("family"),
                "major_code": major.get("code"),
                "major_name": major.get("name"),
                "major_name_en": major.get("name_en"),
            }
            category = _validate(Category, fields, minor_where, problems)
            if category is not None:
                categories.append((minor_where, category))
    _find_duplicates(major_codes, "major class code", problems)
    _find_duplicates(((where, c.code) for where, c in categories), "category code", problems)
    return [category for _, category in categories]


def _load_rows(
    folder: Path,
    file_name: str,
    columns: tuple[str, ...],
    model: type[_Model],
    problems: _Problems,
    convert: Callable[[dict[str, str | None]], dict[str, Any]] | None = None,
) -> list[tuple[str, _Model]]:
    rows: list[tuple[str, _Model]] = []
    for where, row in _read_csv(folder / file_name, columns, problems):
        item = _validate(model, convert(row) if convert else row, where, problems)
        if item is not None:
            rows.append((where, item))
    return rows


def _load_users(folder: Path, problems: _Problems) -> list[tuple[str, DemoUser]]:
    data = _read_yaml(folder / USERS_FILE, problems)
    if data is None:
        return []
    entries = data.get("users")
    if not isinstance(entries, list):
        problems.add(USERS_FILE, "users: a list of users is required")
        return []
    users: list[tuple[str, DemoUser]] = []
    for number, entry in enumerate(entries):
        where = f"{USERS_FILE} users[{number}]"
        if isinstance(entry, dict) and entry.get("username"):
            where = f"{where} ({entry['username']})"
        user = _validate(DemoUser, entry, where, problems)
        if user is not None:
            users.append((where, user))
    return users


def _split_cells(row: dict[str, str | None]) -> dict[str, Any]:
    cells = row.get("cell_ids") or ""
    return {**row, "cell_ids": tuple(cell.strip() for cell in cells.split(";") if cell.strip())}


def load_city(path: Path) -> City:
    """Load and validate the city folder at ``path``; ``CityDataError`` lists every problem.

    Each file is parsed and checked on its own first; the references between files (a rule's
    department, an inspector's cells...) are checked only when every file parsed, so one
    broken row does not echo as a dozen unknown-id problems.
    """
    problems = _Problems(path)
    if not path.is_dir():
        problems.add(str(path), "not a directory")
        problems.raise_if_any()
    manifest = _load_manifest(path, problems)
    grid = _load_grid(path, problems)
    categories = _load_categories(path, problems)
    departments = _load_rows(path, DEPARTMENTS_FILE, ("id", "name", "name_en", "kind"), Department, problems)
    rules = _load_rows(
        path,
        ROUTING_FILE,
        ("id", "category_pattern", "area_level", "area_id", "department_id", "priority"),
        RoutingRule,
        problems,
    )
    inspectors = _load_rows(path, INSPECTORS_FILE, ("id", "name", "cell_ids"), Inspector, problems, _split_cells)
    users = _load_users(path, problems)
    _find_duplicates(((where, d.id) for where, d in departments), "department id", problems)
    _find_duplicates(((where, r.id) for where, r in rules), "rule id", problems)
    _find_duplicates(((where, i.id) for where, i in inspectors), "inspector id", problems)
    _find_duplicates(((where, u.username) for where, u in users), "username", problems)
    if not (path / CALENDAR_FILE).is_file():
        problems.add(CALENDAR_FILE, "file not found")
    problems.raise_if_any()

    index = GridIndex(grid.cells)
    for a, b in index.overlapping_pairs():
        problems.add(GRID_FILE, f"cells {a} and {b} overlap")
    _check_references(grid, categories, departments, rules, inspectors, users, problems)
    problems.raise_if_any()

    return City(
        id=manifest["id"],
        name=manifest["name"],
        name_en=manifest["name_en"],
        timezone=manifest["timezone"],
        districts=tuple(grid.districts.values()),
        streets=tuple(grid.streets.values()),
        communities=tuple(grid.communities.values()),
        categories=tuple(categories),
        departments=tuple(d for _, d in departments),
        routing_rules=tuple(r for _, r in rules),
        inspectors=tuple(i for _, i in inspectors),
        users=tuple(u for _, u in users),
        grid=index,
        calendar_file=path / CALENDAR_FILE,
    )


def _check_references(
    grid: _Grid,
    categories: list[Category],
    departments: list[tuple[str, Department]],
    rules: list[tuple[str, RoutingRule]],
    inspectors: list[tuple[str, Inspector]],
    users: list[tuple[str, DemoUser]],
    problems: _Problems,
) -> None:
    """Every id one file uses is defined in the file that owns it; every cell has one inspector."""

    department_ids = {d.id for _, d in departments}
    patterns = {ANY_CATEGORY} | {c.code for c in categories} | {c.major_code for c in categories}
    areas: dict[AreaLevel, Collection[str]] = {
        AreaLevel.DISTRICT: grid.districts.keys(),
        AreaLevel.STREET: grid.streets.keys(),
    }
    ties: dict[tuple[str, AreaLevel, str | None, int], str] = {}
    for where, rule in rules:
        if rule.department_id not in department_ids:
            problems.add(where, f"unknown department {rule.department_id!r}")
        if rule.category_pattern not in patterns:
            problems.add(where, f"category_pattern {rule.category_pattern!r} is no category code, major code or '*'")
        if rule.area_level is not AreaLevel.CITY and rule.area_id not in areas[rule.area_level]:
            problems.add(where, f"unknown {rule.area_level} {rule.area_id!r}")
        key = (rule.category_pattern, rule.area_level, rule.area_id, rule.priority)
        if key in ties:
            problems.add(where, f"ties with {ties[key]}: same category pattern, area and priority")
        else:
            ties[key] = where

    cell_ids = {cell.id for cell, _ in grid.cells}
    patrolled_by: dict[str, list[str]] = defaultdict(list)
    for where, inspector in inspectors:
        for cell_id in inspector.cell_ids:
            if cell_id not in cell_ids:
                problems.add(where, f"inspector {inspector.id} is assigned to unknown cell {cell_id!r}")
            patrolled_by[cell_id].append(inspector.id)
    for cell_id, patrollers in patrolled_by.items():
        if len(patrollers) > 1:
            problems.add(INSPECTORS_FILE, f"cell {cell_id} has several inspectors: {', '.join(patrollers)}")
    unpatrolled = sorted(cell_ids - patrolled_by.keys())
    if unpatrolled:
        shown = ", ".join(unpatrolled[:10]) + (" ..." if len(unpatrolled) > 10 else "")
        problems.add(INSPECTORS_FILE, f"{len(unpatrolled)} cells have no inspector: {shown}")

    inspector_ids = {i.id for _, i in inspectors}
    for where, user in users:
        if user.department_id is not None and user.department_id not in department_ids:
            problems.add(where, f"unknown department {user.department_id!r}")
        if user.inspector_id is not None and user.inspector_id not in inspector_ids:
            problems.add(where, f"unknown inspector {user.inspector_id!r}")
