"""The city's reference data over HTTP, for the console's map and pickers and for integrators:
every level of the grid as GeoJSON, the tree of districts, streets and communities, and the
categories with their time limits.

Process-wide routes, like logging in: every process has the city loaded, whichever services it
runs. Each document is made once per process, on first use, and served with an ETag (see
``shared.web.cached``): the city changes only when its folder does and the processes restart.
"""

from __future__ import annotations

import asyncio
import threading
from functools import cached_property
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from shared.city.geojson import LEVELS, feature_collection
from shared.city.model import City
from shared.core.auth import Principal
from shared.events.catalogue import CategoryFamily
from shared.web.auth import current_principal
from shared.web.cached import CachedDocument

GEOJSON = "application/geo+json"

if TYPE_CHECKING:
    Level = str
else:
    Level = Literal[LEVELS]

# At module level: under ``from __future__ import annotations`` FastAPI resolves a route's
# annotations by name in the module.
Caller = Annotated[Principal, Depends(current_principal)]


class GeoJSONResponse(JSONResponse):
    """A GeoJSON document (RFC 7946): JSON under its own media type."""

    media_type = GEOJSON


class FeatureProperties(BaseModel):
    """A scope's id and name, and the ids of the levels above it (those a level has)."""

    id: str
    name: str
    community_id: str | None = Field(default=None, description="cells")
    street_id: str | None = Field(default=None, description="cells and communities")
    district_id: str | None = Field(default=None, description="cells, communities and streets")


class Geometry(BaseModel):
    """A Polygon, or a MultiPolygon for a scope in several pieces; WGS-84 longitude/latitude,
    six decimals, exterior rings counter-clockwise."""

    type: Literal["Polygon", "MultiPolygon"]
    coordinates: list[Any]


class Feature(BaseModel):
    """One scope; ``id`` is the scope's id, as the indicators and the cases name it."""

    type: Literal["Feature"]
    id: str
    properties: FeatureProperties
    geometry: Geometry


class FeatureCollection(BaseModel):
    """Every scope of a level, in the city's order."""

    type: Literal["FeatureCollection"]
    features: list[Feature]


class CommunityOut(BaseModel):
    """A community (社区)."""

    id: str
    name: str


class StreetOut(BaseModel):
    """A street office area (街道) and its communities."""

    id: str
    name: str
    communities: list[CommunityOut]


class DistrictOut(BaseModel):
    """A district (区) and its streets."""

    id: str
    name: str
    streets: list[StreetOut]


class CityOut(BaseModel):
    """The city's names."""

    name: str
    name_en: str


class ScopeTreeOut(BaseModel):
    """The city's districts, their streets and their communities, in the city's order."""

    city: CityOut
    districts: list[DistrictOut]


class TimeLimitsOut(BaseModel):
    """How long each step of a case may take, in minutes of the category's ``time_basis``."""

    filing: int = Field(description="report → filed (立案)")
    dispatch: int = Field(description="filed → dispatched (派遣)")
    handling: int = Field(description="dispatched → handled (处置)")
    check: int = Field(description="handled → checked on site (核查)")


class CategoryOut(BaseModel):
    """A case category (CJ/T 214), its class and its time limits."""

    code: str
    name: str
    name_en: str
    family: CategoryFamily = Field(description="component (部件) or event (事件)")
    major_code: str
    major_name: str
    major_name_en: str
    urgent: bool
    time_basis: Literal["working", "calendar"] = Field(
        description="working: minutes inside the city's working hours and days; calendar: around the clock"
    )
    limits_minutes: TimeLimitsOut


_NOT_MODIFIED: dict[int | str, dict[str, Any]] = {
    304: {"description": "Not modified: the version the request's If-None-Match names is current"}
}


class CityDocuments:
    """The city's documents, each made on first use and kept for the process's life."""

    def __init__(self, city: City) -> None:
        self.city = city
        self._geometry: dict[str, CachedDocument] = {}
        # Taken in a worker thread: a level's unions take a fraction of a second, which the
        # event loop must not wait for, and two first requests must not compute it twice.
        self._computing = threading.Lock()

    async def geometry(self, level: str) -> CachedDocument:
        """The GeoJSON of ``level``."""
        made = self._geometry.get(level)
        return made if made is not None else await asyncio.to_thread(self._compute_geometry, level)

    def _compute_geometry(self, level: str) -> CachedDocument:
        with self._computing:
            if level not in self._geometry:
                self._geometry[level] = CachedDocument.of_json(feature_collection(self.city, level), GEOJSON)
            return self._geometry[level]

    @cached_property
    def scopes(self) -> CachedDocument:
        """The tree of districts, streets and communities."""
        return CachedDocument.of_json(scope_tree(self.city).model_dump(mode="json"))

    @cached_property
    def categories(self) -> CachedDocument:
        """The categories."""
        return CachedDocument.of_json([category.model_dump(mode="json") for category in categories(self.city)])


def scope_tree(city: City) -> ScopeTreeOut:
    """The city's grid hierarchy above the cells."""
    communities: dict[str, list[CommunityOut]] = {}
    for community in city.communities:
        communities.setdefault(community.street_id, []).append(CommunityOut(id=community.id, name=community.name))
    streets: dict[str, list[StreetOut]] = {}
    for street in city.streets:
        out = StreetOut(id=street.id, name=street.name, communities=communities.get(street.id, []))
        streets.setdefault(street.district_id, []).append(out)
    return ScopeTreeOut(
        city=CityOut(name=city.name, name_en=city.name_en),
        districts=[DistrictOut(id=d.id, name=d.name, streets=streets.get(d.id, [])) for d in city.districts],
    )


def categories(city: City) -> list[CategoryOut]:
    """The city's categories, in its catalogue's order."""
    return [
        CategoryOut(
            **category.model_dump(include={"code", "name", "name_en", "family", "urgent", "time_basis"}),
            major_code=category.major_code,
            major_name=category.major_name,
            major_name_en=category.major_name_en,
            limits_minutes=TimeLimitsOut(
                filing=category.filing, dispatch=category.dispatch, handling=category.handling, check=category.check
            ),
        )
        for category in city.categories
    ]


def city_router(city: City) -> APIRouter:
    """The city's geometry, scopes and categories, for any caller who has logged in."""
    documents = CityDocuments(city)
    router = APIRouter(prefix="/city", tags=["city"])

    @router.get(
        "/geometry/{level}",
        summary="Every cell, community, street or district as GeoJSON polygons (for a map without tiles)",
        response_model=FeatureCollection,
        response_class=GeoJSONResponse,
        responses=_NOT_MODIFIED,
    )
    async def geometry(level: Level, request: Request, _caller: Caller) -> Response:
        """Coarser levels are the unions of their cells. Served with an ETag: ask again with
        ``If-None-Match`` for a 304; gzip-encoded when the request accepts it."""
        return (await documents.geometry(level)).response(request)

    @router.get(
        "/scopes",
        summary="The districts, their streets and their communities, with names",
        response_model=ScopeTreeOut,
        responses=_NOT_MODIFIED,
    )
    async def scopes(request: Request, _caller: Caller) -> Response:
        """Served with an ETag, like the geometry."""
        return documents.scopes.response(request)

    @router.get(
        "/categories",
        summary="The case categories, their classes and time limits",
        response_model=list[CategoryOut],
        responses=_NOT_MODIFIED,
    )
    async def list_categories(request: Request, _caller: Caller) -> Response:
        """In the catalogue's order. Served with an ETag, like the geometry."""
        return documents.categories.response(request)

    return router
