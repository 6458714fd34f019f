"""The city's geometry as GeoJSON (RFC 7946) for a map drawn from the city's own grid, with no
tiles: every unit grid cell as loaded, and every community, street and district as the union of
its cells.

Coordinates are WGS-84 longitude/latitude on a grid of 1e-6 degree (six decimals, about 0.1 m),
the precision the city's files are written in. The unions are computed on that grid (shapely's
``grid_size``) rather than rounded afterwards: rounding a finished polygon can make it cross
itself, while an overlay on the grid stays valid at the precision it is published in, and
slivers narrower than the grid between neighbouring cells vanish instead of becoming holes. The
only simplification is dropping vertices that lie exactly on a straight edge (the corners where
cells meet along a boundary), which leaves every shape exactly as it was.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import shapely
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.polygon import orient

from shared.city.model import City, Community, District, Street

LEVELS: tuple[str, ...] = ("cell", "community", "street", "district")
"""The levels of the grid hierarchy the geometry is drawn at, finest first."""

GRID_DEG = 1e-6
"""The grid coordinates are computed on, and the precision they are written with."""
_DECIMALS = 6


def feature_collection(city: City, level: str) -> dict[str, Any]:
    """Every scope of ``level`` (one of ``LEVELS``) as a GeoJSON FeatureCollection, in the
    city's order: each Feature's ``id`` is the scope's id, its properties the id, the name and
    the ids of the levels above it. ``ValueError`` for another level."""
    if level == "cell":
        return _collection(_cell_features(city))
    if level not in LEVELS:
        raise ValueError(f"no level {level!r}; the levels are {', '.join(LEVELS)}")
    return _collection(_union_features(city, level))


def _collection(features: Iterable[dict[str, Any]]) -> dict[str, Any]:
    return {"type": "FeatureCollection", "features": list(features)}


def _cell_features(city: City) -> Iterable[dict[str, Any]]:
    cells = city.cells
    shapes = shapely.set_precision([city.grid.polygon(cell.id) for cell in cells], GRID_DEG)
    for cell, shape in zip(cells, shapes, strict=True):
        parents = {"community_id": cell.community_id, "street_id": cell.street_id, "district_id": cell.district_id}
        yield _feature(cell.id, cell.name, parents, shape)


def _union_features(city: City, level: str) -> Iterable[dict[str, Any]]:
    by_level: dict[str, Sequence[District | Street | Community]] = {
        "community": city.communities,
        "street": city.streets,
        "district": city.districts,
    }
    scopes = by_level[level]
    members: dict[str, list[Polygon]] = {scope.id: [] for scope in scopes}
    for cell in city.cells:
        members[getattr(cell, f"{level}_id")].append(city.grid.polygon(cell.id))
    for scope in scopes:
        if members[scope.id]:
            union = shapely.union_all(members[scope.id], grid_size=GRID_DEG)
            yield _feature(scope.id, scope.name, _parents(city, level, scope.id), shapely.simplify(union, 0))


def _parents(city: City, level: str, scope_id: str) -> dict[str, str]:
    """The ids of the levels above a community, a street or a district."""
    if level == "community":
        street = city.street(city.community(scope_id).street_id)
        return {"street_id": street.id, "district_id": street.district_id}
    if level == "street":
        return {"district_id": city.street(scope_id).district_id}
    return {}


def _feature(scope_id: str, name: str, parents: dict[str, str], shape: Any) -> dict[str, Any]:
    return {
        "type": "Feature",
        "id": scope_id,
        "properties": {"id": scope_id, "name": name, **parents},
        "geometry": _geometry(shape),
    }


def _geometry(shape: Any) -> dict[str, Any]:
    """A Polygon or a MultiPolygon, rings wound as RFC 7946 asks (exterior counter-clockwise,
    holes clockwise), coordinates with six decimals."""
    polygons = [part for part in shapely.get_parts(shape) if isinstance(part, Polygon) and not part.is_empty]
    if len(polygons) == 1:
        return {"type": "Polygon", "coordinates": _rings(polygons[0])}
    return {"type": "MultiPolygon", "coordinates": [_rings(polygon) for polygon in MultiPolygon(polygons).geoms]}


def _rings(polygon: Polygon) -> list[list[list[float]]]:
    wound = orient(polygon, sign=1.0)
    return [_ring(wound.exterior.coords), *(_ring(hole.coords) for hole in wound.interiors)]


def _ring(coords: Iterable[tuple[float, ...]]) -> list[list[float]]:
    return [[round(x, _DECIMALS), round(y, _DECIMALS)] for x, y, *_ in coords]
