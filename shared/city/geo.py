"""Geography: Chinese map datums, distances on the ground, and which unit grid cell a point is in.

Everything the platform stores is WGS-84. Phones in China report GCJ-02 (the national "offset"
datum used by Amap and Tencent maps) or BD-09 (Baidu's extra offset on top of GCJ-02); the edges
convert with ``to_wgs84`` before anything is stored, and ``from_wgs84`` turns stored points back
for a map client that draws in GCJ-02 or BD-09.

The GCJ-02 forward transform is the well-known public approximation of the national algorithm
(the one in eviltransform, coordtransform, gcoord...), which agrees with the official maps to
within a metre or two; BD-09 is Baidu's documented rotation-and-scale on top of it. Neither has a
exact closed-form inverse, so the inverses iterate the forward transform to a fixed point.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from enum import StrEnum
from typing import Generic, Protocol, TypeVar

from shapely import Point, Polygon, STRtree


class Datum(StrEnum):
    """The geodetic datum a coordinate pair is expressed in."""

    WGS84 = "wgs84"
    GCJ02 = "gcj02"
    BD09 = "bd09"


# The GCJ-02 algorithm works on the Krasovsky 1940 ellipsoid, not on WGS-84's.
_GCJ_A = 6378245.0
_GCJ_EE = 0.00669342162296594323
_BD_X_PI = math.pi * 3000.0 / 180.0
_WGS84_A = 6378137.0
_WGS84_E2 = 6.69437999014e-3
# Mean Earth radius (IUGG): the haversine error against the ellipsoid stays under 0.5 %.
_EARTH_RADIUS_M = 6371008.8
# 1e-10 degree is about 1 cm; the iterations get there in two to four steps.
_INVERSE_TOLERANCE_DEG = 1e-10
_INVERSE_MAX_STEPS = 30


def out_of_china(lon: float, lat: float) -> bool:
    """Whether GCJ-02 leaves the point unshifted: the conventional rough bounding box of China.

    Every client library (eviltransform, coordtransform, gcoord) uses this same box, so a phone
    and the platform agree on which points are shifted even near the border.
    """
    return not (72.004 <= lon <= 137.8347 and 0.8293 <= lat <= 55.8271)


def _gcj_shift_lat(x: float, y: float) -> float:
    shift = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * math.sqrt(abs(x))
    shift += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    shift += (20.0 * math.sin(y * math.pi) + 40.0 * math.sin(y / 3.0 * math.pi)) * 2.0 / 3.0
    shift += (160.0 * math.sin(y / 12.0 * math.pi) + 320.0 * math.sin(y * math.pi / 30.0)) * 2.0 / 3.0
    return shift


def _gcj_shift_lon(x: float, y: float) -> float:
    shift = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x))
    shift += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    shift += (20.0 * math.sin(x * math.pi) + 40.0 * math.sin(x / 3.0 * math.pi)) * 2.0 / 3.0
    shift += (150.0 * math.sin(x / 12.0 * math.pi) + 300.0 * math.sin(x / 30.0 * math.pi)) * 2.0 / 3.0
    return shift


def _wgs84_to_gcj02(lon: float, lat: float) -> tuple[float, float]:
    if out_of_china(lon, lat):
        return lon, lat
    d_lat = _gcj_shift_lat(lon - 105.0, lat - 35.0)
    d_lon = _gcj_shift_lon(lon - 105.0, lat - 35.0)
    rad_lat = lat / 180.0 * math.pi
    magic = 1.0 - _GCJ_EE * math.sin(rad_lat) ** 2
    sqrt_magic = math.sqrt(magic)
    d_lat = (d_lat * 180.0) / ((_GCJ_A * (1.0 - _GCJ_EE)) / (magic * sqrt_magic) * math.pi)
    d_lon = (d_lon * 180.0) / (_GCJ_A / sqrt_magic * math.cos(rad_lat) * math.pi)
    return lon + d_lon, lat + d_lat


def _gcj02_to_bd09(lon: float, lat: float) -> tuple[float, float]:
    z = math.hypot(lon, lat) + 0.00002 * math.sin(lat * _BD_X_PI)
    theta = math.atan2(lat, lon) + 0.000003 * math.cos(lon * _BD_X_PI)
    return z * math.cos(theta) + 0.0065, z * math.sin(theta) + 0.006


def _wgs84_to_bd09(lon: float, lat: float) -> tuple[float, float]:
    return _gcj02_to_bd09(*_wgs84_to_gcj02(lon, lat))


def _invert(forward: Callable[[float, float], tuple[float, float]], lon: float, lat: float) -> tuple[float, float]:
    """The point that ``forward`` maps onto (lon, lat).

    Both transforms shift by a few hundred metres and the shift changes slowly over the ground,
    so subtracting the residual converges by orders of magnitude at every step.
    """
    guess_lon, guess_lat = lon, lat
    for _ in range(_INVERSE_MAX_STEPS):
        mapped_lon, mapped_lat = forward(guess_lon, guess_lat)
        error_lon, error_lat = mapped_lon - lon, mapped_lat - lat
        if abs(error_lon) < _INVERSE_TOLERANCE_DEG and abs(error_lat) < _INVERSE_TOLERANCE_DEG:
            break
        guess_lon, guess_lat = guess_lon - error_lon, guess_lat - error_lat
    return guess_lon, guess_lat


def to_wgs84(lon: float, lat: float, datum: Datum) -> tuple[float, float]:
    """Convert a point from ``datum`` to WGS-84 (longitude, latitude in degrees).

    GCJ-02 outside China (see ``out_of_china``) is WGS-84 already; BD-09 is shifted everywhere,
    as Baidu's own SDK does.
    """
    # A plain "gcj02" from a request must not fall through the identity tests below.
    datum = Datum(datum)
    if datum is Datum.WGS84:
        return lon, lat
    if datum is Datum.GCJ02:
        if out_of_china(lon, lat):
            return lon, lat
        return _invert(_wgs84_to_gcj02, lon, lat)
    return _invert(_wgs84_to_bd09, lon, lat)


def from_wgs84(lon: float, lat: float, datum: Datum) -> tuple[float, float]:
    """Convert a WGS-84 point to ``datum`` (longitude, latitude in degrees), e.g. for a map client."""
    datum = Datum(datum)
    if datum is Datum.WGS84:
        return lon, lat
    if datum is Datum.GCJ02:
        return _wgs84_to_gcj02(lon, lat)
    return _wgs84_to_bd09(lon, lat)


def distance_m(a_lon: float, a_lat: float, b_lon: float, b_lat: float) -> float:
    """Great-circle distance in metres between two WGS-84 points (haversine on the mean sphere)."""
    phi_a, phi_b = math.radians(a_lat), math.radians(b_lat)
    d_phi = phi_b - phi_a
    d_lambda = math.radians(b_lon - a_lon)
    h = math.sin(d_phi / 2.0) ** 2 + math.cos(phi_a) * math.cos(phi_b) * math.sin(d_lambda / 2.0) ** 2
    # min() guards asin against a rounding error pushing h a hair above 1 for antipodes.
    return 2.0 * _EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def area_m2(polygon: Polygon) -> float:
    """Area on the ground, in m², of a small WGS-84 longitude/latitude polygon.

    Square degrees are scaled by the lengths of a degree on the WGS-84 ellipsoid at the middle
    latitude: within 0.01 % of the ellipsoidal area for polygons a few kilometres across, and
    microseconds per call where a geodesic computation would need a projection library.
    """
    south, north = polygon.bounds[1], polygon.bounds[3]
    phi = math.radians((south + north) / 2.0)
    w = 1.0 - _WGS84_E2 * math.sin(phi) ** 2
    metres_per_deg_lat = _WGS84_A * (1.0 - _WGS84_E2) / (w * math.sqrt(w)) * math.pi / 180.0
    metres_per_deg_lon = _WGS84_A / math.sqrt(w) * math.cos(phi) * math.pi / 180.0
    return float(polygon.area) * metres_per_deg_lat * metres_per_deg_lon


class GridCellLike(Protocol):
    """What the index needs to know of a cell: its id (the polygon travels beside it)."""

    @property
    def id(self) -> str:
        """The cell id, unique in the city."""
        ...


CellT = TypeVar("CellT", bound=GridCellLike)


class GridIndex(Generic[CellT]):
    """Unit grid cells (万米单元网格) in an STR-tree: which cell is a WGS-84 point in?

    The cells of a city tile it, so a point on the edge shared by two cells (or the corner of
    four) is covered by all of them; it goes to the cell with the smallest id, which is
    deterministic and does not depend on the order the cells were loaded in.
    """

    def __init__(self, cells: Iterable[tuple[CellT, Polygon]]) -> None:
        pairs = list(cells)
        self._cells: tuple[CellT, ...] = tuple(cell for cell, _ in pairs)
        self._polygons: list[Polygon] = [polygon for _, polygon in pairs]
        self._by_id: dict[str, int] = {}
        for position, cell in enumerate(self._cells):
            if cell.id in self._by_id:
                raise ValueError(f"grid cell {cell.id!r} appears twice")
            self._by_id[cell.id] = position
        self._tree = STRtree(self._polygons)

    def __len__(self) -> int:
        return len(self._cells)

    @property
    def cells(self) -> tuple[CellT, ...]:
        """Every cell, in the order the index was built from."""
        return self._cells

    def locate(self, lon: float, lat: float) -> CellT | None:
        """The cell covering the WGS-84 point, or None when the point is outside every cell."""
        hits = self._tree.query(Point(lon, lat), predicate="intersects")
        if len(hits) == 0:
            return None
        return min((self._cells[int(hit)] for hit in hits), key=lambda cell: cell.id)

    def cell(self, cell_id: str) -> CellT:
        """The cell with this id; ``KeyError`` when there is none."""
        return self._cells[self._by_id[cell_id]]

    def polygon(self, cell_id: str) -> Polygon:
        """The cell's polygon in WGS-84 longitude/latitude; ``KeyError`` when there is no such cell."""
        return self._polygons[self._by_id[cell_id]]

    def overlapping_pairs(self) -> list[tuple[str, str]]:
        """Pairs of cell ids whose interiors overlap, which a tiling must never have.

        Intersecting pairs that merely touch share only boundary; every other intersecting pair
        shares interior. Two bulk queries keep this fast enough to run at every load.
        """
        intersecting = self._tree.query(self._polygons, predicate="intersects")
        touching = self._tree.query(self._polygons, predicate="touches")
        touching_pairs = set(zip(touching[0].tolist(), touching[1].tolist(), strict=True))
        overlaps: list[tuple[str, str]] = []
        for a, b in zip(intersecting[0].tolist(), intersecting[1].tolist(), strict=True):
            if a < b and (a, b) not in touching_pairs:
                overlaps.append((self._cells[a].id, self._cells[b].id))
        return overlaps
