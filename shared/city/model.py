"""The city's reference data as the services use it: grid, categories, departments, routing,
inspectors, demo users. ``shared.city.loader`` reads and validates a city folder into a ``City``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

from shared.city.geo import Datum, GridIndex, to_wgs84
from shared.core.auth import Role
from shared.events.catalogue import CategoryFamily, GridPlace


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# --- the grid hierarchy ---------------------------------------------------------------------


class District(_Frozen):
    """A district (区), the top level of the grid hierarchy below the city."""

    id: str = Field(min_length=1)
    name: str = Field(min_length=1)


class Street(_Frozen):
    """A street office area (街道), inside one district."""

    id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    district_id: str = Field(min_length=1)


class Community(_Frozen):
    """A community (社区), inside one street."""

    id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    street_id: str = Field(min_length=1)


class GridCell(_Frozen):
    """A unit grid cell (万米单元网格, CJ/T 213), about 10,000 m²; its polygon lives in the GridIndex."""

    id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    community_id: str = Field(min_length=1)
    street_id: str = Field(min_length=1)
    district_id: str = Field(min_length=1)
    area_m2: float = Field(gt=0)

    @property
    def place(self) -> GridPlace:
        """Where the cell sits in the hierarchy, as events carry it."""
        return GridPlace(
            cell_id=self.id, community_id=self.community_id, street_id=self.street_id, district_id=self.district_id
        )


# --- categories and departments ---------------------------------------------------------------


class Category(_Frozen):
    """A case category (CJ/T 214 minor class) with its time limits in minutes.

    ``time_basis`` says how the minutes count: ``working`` minutes inside the city's working
    hours and days, or ``calendar`` minutes around the clock (urgent categories, 24×7).
    """

    code: str = Field(min_length=1)
    name: str = Field(min_length=1)
    name_en: str = Field(min_length=1)
    family: CategoryFamily
    major_code: str = Field(min_length=1)
    major_name: str = Field(min_length=1)
    major_name_en: str = Field(min_length=1)
    urgent: bool
    time_basis: Literal["working", "calendar"]
    filing: int = Field(gt=0)
    dispatch: int = Field(gt=0)
    handling: int = Field(gt=0)
    check: int = Field(gt=0)

    @model_validator(mode="after")
    def _consistent(self) -> Category:
        if not self.code.startswith(f"{self.major_code}-"):
            raise ValueError(f"code {self.code!r} does not start with its major class {self.major_code!r}-")
        # An urgent problem (a missing manhole cover) cannot wait for Monday morning.
        if self.urgent and self.time_basis != "calendar":
            raise ValueError("an urgent category runs on calendar time (time_basis: calendar)")
        return self


class DepartmentKind(StrEnum):
    """What sort of body a department is; rankings and reports group by it."""

    MUNICIPAL_BUREAU = "municipal_bureau"
    DISTRICT_GOVERNMENT = "district_government"
    STREET_OFFICE = "street_office"
    SANITATION = "sanitation"
    PARKS = "parks"
    UTILITY_COMPANY = "utility_company"
    COORDINATION = "coordination"
    OTHER = "other"


class Department(_Frozen):
    """A department (专业部门 / 责任单位) that receives and handles dispatched cases."""

    id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    name_en: str = Field(min_length=1)
    kind: DepartmentKind


# --- routing ----------------------------------------------------------------------------------


class AreaLevel(StrEnum):
    """How wide an area a routing rule covers."""

    CITY = "city"
    DISTRICT = "district"
    STREET = "street"


ANY_CATEGORY = "*"
_AREA_RANK = {AreaLevel.STREET: 0, AreaLevel.DISTRICT: 1, AreaLevel.CITY: 2}


class RoutingRule(_Frozen):
    """Which department owns cases of some categories in some area.

    ``category_pattern`` is a category code (``01-01-04``), a major class code (``01-01``, every
    category of that class) or ``*`` (every category). ``area_level`` is ``city`` (``area_id``
    empty), ``district`` or ``street`` (``area_id`` names it).

    Among the rules matching a case, the first in this order wins:

    1. lower ``priority``;
    2. then the more specific category: exact code, then major class, then ``*``;
    3. then the smaller area: street, then district, then city.

    Rules written with the same priority therefore behave as "the specific beats the general",
    and category comes before area because the category names the kind of owner (a power
    manhole cover belongs to the power company wherever it is) while the area picks among
    local owners; a lower priority overrides both when a city needs it to. Two rules that
    match the same case and are equal on all three have the same pattern, area and priority:
    the loader rejects such pairs, so the order never falls back on file order.
    """

    id: str = Field(min_length=1)
    category_pattern: str = Field(min_length=1)
    area_level: AreaLevel
    area_id: str | None = None
    department_id: str = Field(min_length=1)
    priority: int = Field(ge=0)

    @model_validator(mode="after")
    def _area_named(self) -> RoutingRule:
        if self.area_level is AreaLevel.CITY and self.area_id is not None:
            raise ValueError("a city-wide rule takes no area_id")
        if self.area_level is not AreaLevel.CITY and self.area_id is None:
            raise ValueError(f"a {self.area_level} rule needs the area_id of its {self.area_level}")
        return self

    def matches_category(self, category: Category) -> bool:
        """Whether the rule's pattern covers ``category``."""
        return self.category_pattern in (ANY_CATEGORY, category.major_code, category.code)

    def covers(self, place: GridPlace) -> bool:
        """Whether the rule's area contains ``place``."""
        if self.area_level is AreaLevel.CITY:
            return True
        if self.area_level is AreaLevel.DISTRICT:
            return place.district_id == self.area_id
        return place.street_id == self.area_id

    def rank(self, category: Category) -> tuple[int, int, int]:
        """The sort key of the order above, for a category the rule matches."""
        specificity = 0 if self.category_pattern == category.code else 1 if self.category_pattern != ANY_CATEGORY else 2
        return self.priority, specificity, _AREA_RANK[self.area_level]


# --- people -----------------------------------------------------------------------------------


class Inspector(_Frozen):
    """A grid inspector (网格监督员) and the cells they patrol."""

    id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    cell_ids: tuple[str, ...] = Field(min_length=1)


class DemoUser(_Frozen):
    """A log-in of the city's ``users.yaml``: a ``password_hash`` (Argon2, made by ``python -m
    services accounts hash-password``), or, for a demonstration only, a plain-text ``password``
    — production mode refuses those.

    An inspector user names the inspector they are, a department user the department they act
    for; other roles name neither.
    """

    username: str = Field(min_length=1)
    password: str | None = Field(default=None, min_length=1, repr=False)
    password_hash: str | None = Field(default=None, pattern=r"^\$argon2(id|i|d)\$", repr=False)
    role: Role
    display_name: str = Field(min_length=1)
    department_id: str | None = None
    inspector_id: str | None = None

    @model_validator(mode="after")
    def _links_fit_role(self) -> DemoUser:
        if (self.password is None) == (self.password_hash is None):
            raise ValueError("give either password_hash or (for a demonstration) password")
        if (self.role is Role.DEPARTMENT) != (self.department_id is not None):
            raise ValueError("department_id is required for the department role and only for it")
        if (self.role is Role.INSPECTOR) != (self.inspector_id is not None):
            raise ValueError("inspector_id is required for the inspector role and only for it")
        return self


# --- the city -------------------------------------------------------------------------------

_Item = TypeVar("_Item")

# The city's id names it to systems outside (Open311's jurisdiction_id, sent in query strings and
# form fields): letters, digits, dots and dashes, so it never needs escaping.
CITY_ID_PATTERN = r"^[a-z0-9](?:[a-z0-9.-]{0,62}[a-z0-9])?$"


def _by_key(items: Iterable[_Item], key: Callable[[_Item], str]) -> dict[str, _Item]:
    return {key(item): item for item in items}


def _ranked(rules: Iterable[RoutingRule], category: Category) -> tuple[RoutingRule, ...]:
    """The rules matching ``category``, best first."""
    return tuple(sorted((r for r in rules if r.matches_category(category)), key=lambda r: r.rank(category)))


class City(_Frozen):
    """Everything the services know of the city, loaded once at start (see ``load_city``).

    ``id`` is how systems outside name the city (Open311's ``jurisdiction_id``, e.g. ``demo.citycase``).
    """

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    id: str = Field(pattern=CITY_ID_PATTERN)
    name: str
    name_en: str
    timezone: str
    districts: tuple[District, ...]
    streets: tuple[Street, ...]
    communities: tuple[Community, ...]
    categories: tuple[Category, ...]
    departments: tuple[Department, ...]
    routing_rules: tuple[RoutingRule, ...]
    inspectors: tuple[Inspector, ...]
    users: tuple[DemoUser, ...]
    grid: GridIndex[GridCell] = Field(exclude=True, repr=False)
    calendar_file: Path

    _districts: dict[str, District] = PrivateAttr()
    _streets: dict[str, Street] = PrivateAttr()
    _communities: dict[str, Community] = PrivateAttr()
    _categories: dict[str, Category] = PrivateAttr()
    _departments: dict[str, Department] = PrivateAttr()
    _inspectors: dict[str, Inspector] = PrivateAttr()
    _inspector_of_cell: dict[str, Inspector] = PrivateAttr()
    _users: dict[str, DemoUser] = PrivateAttr()
    _rules_by_category: dict[str, tuple[RoutingRule, ...]] = PrivateAttr()

    def model_post_init(self, context: Any, /) -> None:
        """Build the lookups once; every query after that is a dictionary access."""
        self._districts = _by_key(self.districts, lambda d: d.id)
        self._streets = _by_key(self.streets, lambda s: s.id)
        self._communities = _by_key(self.communities, lambda c: c.id)
        self._categories = _by_key(self.categories, lambda c: c.code)
        self._departments = _by_key(self.departments, lambda d: d.id)
        self._inspectors = _by_key(self.inspectors, lambda i: i.id)
        self._inspector_of_cell = {cell_id: i for i in self.inspectors for cell_id in i.cell_ids}
        self._users = _by_key(self.users, lambda u: u.username)
        # Routing runs for every case: sort each category's candidate rules once, here.
        self._rules_by_category = {category.code: _ranked(self.routing_rules, category) for category in self.categories}

    @property
    def cells(self) -> tuple[GridCell, ...]:
        """Every unit grid cell."""
        return self.grid.cells

    def district(self, district_id: str) -> District:
        """The district with this id (``KeyError`` if none)."""
        return self._districts[district_id]

    def street(self, street_id: str) -> Street:
        """The street with this id (``KeyError`` if none)."""
        return self._streets[street_id]

    def community(self, community_id: str) -> Community:
        """The community with this id (``KeyError`` if none)."""
        return self._communities[community_id]

    def cell(self, cell_id: str) -> GridCell:
        """The grid cell with this id (``KeyError`` if none)."""
        return self.grid.cell(cell_id)

    def category(self, code: str) -> Category:
        """The category with this code (``KeyError`` if none)."""
        return self._categories[code]

    def department(self, department_id: str) -> Department:
        """The department with this id (``KeyError`` if none)."""
        return self._departments[department_id]

    def inspector(self, inspector_id: str) -> Inspector:
        """The inspector with this id (``KeyError`` if none)."""
        return self._inspectors[inspector_id]

    def inspector_for(self, cell_id: str) -> Inspector:
        """The inspector who patrols the cell; the loader guarantees every cell has exactly one."""
        return self._inspector_of_cell[cell_id]

    def user(self, username: str) -> DemoUser:
        """The demo user with this username (``KeyError`` if none)."""
        return self._users[username]

    def locate(self, lon: float, lat: float, datum: Datum = Datum.WGS84) -> GridCell | None:
        """The cell containing a point given in any datum, or None when it is outside the city."""
        return self.grid.locate(*to_wgs84(lon, lat, datum))

    def route(self, category_code: str, place: GridPlace) -> RoutingRule | None:
        """The rule that decides who owns a case (order: see ``RoutingRule``).

        None means no rule names an owner (权属不清): the case goes to the coordination queue.
        An unknown category code is a ``KeyError``: cases carry only codes of the catalogue.
        """
        for rule in self._rules_by_category[category_code]:
            if rule.covers(place):
                return rule
        return None
