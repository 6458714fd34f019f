"""The city's geometry as GeoJSON for the console's map: every cell as loaded, and the coarser
levels as faithful unions of their cells."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import shapely
from shapely import box
from shapely.geometry import shape

from shared.city.geo import GridIndex
from shared.city.geojson import LEVELS, feature_collection
from shared.city.loader import load_city
from shared.city.model import City, Community, District, GridCell, Street

DEMO = Path(__file__).resolve().parents[2] / "deploy" / "cities" / "demo"
# Far below a metre: what rounding to six decimals (and nothing else) may move a boundary.
NEAR_DEG = 2e-6


@pytest.fixture(scope="module")
def demo() -> City:
    return load_city(DEMO)


@pytest.fixture(scope="module")
def collections(demo: City) -> dict[str, dict[str, Any]]:
    return {level: feature_collection(demo, level) for level in LEVELS}


def coordinates(geometry: dict[str, Any]) -> list[list[float]]:
    polygons = [geometry["coordinates"]] if geometry["type"] == "Polygon" else geometry["coordinates"]
    rings = [ring for polygon in polygons for ring in polygon]
    return [point for ring in rings for point in ring]


def test_every_cell_of_the_demo_city_is_a_feature_with_its_parents(
    demo: City, collections: dict[str, dict[str, Any]]
) -> None:
    cells = collections["cell"]
    assert cells["type"] == "FeatureCollection"
    assert len(cells["features"]) == 4014
    assert [feature["id"] for feature in cells["features"]] == [cell.id for cell in demo.cells]
    for feature in cells["features"]:
        cell = demo.cell(feature["id"])
        assert feature["properties"] == {
            "id": cell.id,
            "name": cell.name,
            "community_id": cell.community_id,
            "street_id": cell.street_id,
            "district_id": cell.district_id,
        }
        drawn = shape(feature["geometry"])
        assert drawn.is_valid
        assert shapely.hausdorff_distance(drawn, demo.grid.polygon(cell.id)) < NEAR_DEG


def test_coarser_levels_name_every_scope_and_the_levels_above(
    demo: City, collections: dict[str, dict[str, Any]]
) -> None:
    communities = collections["community"]["features"]
    assert [f["id"] for f in communities] == [c.id for c in demo.communities]
    for feature in communities:
        street = demo.street(demo.community(feature["id"]).street_id)
        assert feature["properties"] == {
            "id": feature["id"],
            "name": demo.community(feature["id"]).name,
            "street_id": street.id,
            "district_id": street.district_id,
        }
    streets = collections["street"]["features"]
    assert [f["id"] for f in streets] == [s.id for s in demo.streets]
    assert all(f["properties"]["district_id"] == demo.street(f["id"]).district_id for f in streets)
    districts = collections["district"]["features"]
    assert [f["properties"] for f in districts] == [{"id": d.id, "name": d.name} for d in demo.districts]


@pytest.mark.parametrize("level", ["community", "street", "district"])
def test_a_coarser_scope_covers_exactly_its_cells(
    demo: City, collections: dict[str, dict[str, Any]], level: str
) -> None:
    drawn = {f["id"]: shape(f["geometry"]) for f in collections[level]["features"]}
    assert all(polygon.is_valid for polygon in drawn.values())
    members: dict[str, list[Any]] = {}
    for cell in demo.cells:
        members.setdefault(getattr(cell, f"{level}_id"), []).append(demo.grid.polygon(cell.id))
    for scope_id, polygons in members.items():
        cells = shapely.union_all(polygons)
        # Every cell inside its scope, and nothing else in it: the shapes agree to rounding.
        assert drawn[scope_id].buffer(NEAR_DEG).covers(cells), scope_id
        assert cells.buffer(NEAR_DEG).covers(drawn[scope_id]), scope_id
    # Scopes of a level tile the city without overlapping.
    total = shapely.union_all(list(drawn.values())).area
    assert sum(polygon.area for polygon in drawn.values()) == pytest.approx(total, rel=1e-6)


def test_the_unions_keep_no_vertex_on_a_straight_edge(collections: dict[str, dict[str, Any]]) -> None:
    districts = collections["district"]["features"]
    for feature in districts:
        ring = shapely.LinearRing(feature["geometry"]["coordinates"][0])
        # A vertex between two collinear edges adds nothing to the shape.
        assert shapely.get_num_coordinates(ring) == shapely.get_num_coordinates(shapely.simplify(ring, 0))


def test_coordinates_have_six_decimals_and_rings_wind_as_rfc_7946_asks(
    collections: dict[str, dict[str, Any]],
) -> None:
    for level in LEVELS:
        for feature in collections[level]["features"]:
            for point in coordinates(feature["geometry"]):
                assert all(Decimal(str(value)) == round(Decimal(str(value)), 6) for value in point)
            polygons = shapely.get_parts(shape(feature["geometry"]))
            assert all(polygon.exterior.is_ccw for polygon in polygons)
            assert all(not hole.is_ccw for polygon in polygons for hole in polygon.interiors)


def test_an_unknown_level_is_refused(demo: City) -> None:
    with pytest.raises(ValueError, match="no level 'city'"):
        feature_collection(demo, "city")


def small_city(demo: City, cells: list[tuple[str, str, Any]]) -> City:
    """The demo city's reference data over a grid of ``cells`` (id, community id, polygon) in
    two communities of one street."""
    district = District(id="d1", name="区")
    street = Street(id="s1", name="街道", district_id="d1")
    communities = (Community(id="c1", name="社区一", street_id="s1"), Community(id="c2", name="社区二", street_id="s1"))
    grid = GridIndex(
        (
            GridCell(
                id=cell_id, name=cell_id, community_id=community, street_id="s1", district_id="d1", area_m2=10_000
            ),
            polygon,
        )
        for cell_id, community, polygon in cells
    )
    fields = {name: getattr(demo, name) for name in type(demo).model_fields}
    return City(**{**fields, "districts": (district,), "streets": (street,), "communities": communities, "grid": grid})


def test_a_community_in_two_pieces_is_a_multipolygon_and_a_gap_below_the_grid_closes(demo: City) -> None:
    step = 0.001
    city = small_city(
        demo,
        [
            # Community 1: two cells far apart.
            ("a", "c1", box(113.0, 34.0, 113.0 + step, 34.0 + step)),
            ("b", "c1", box(113.01, 34.0, 113.01 + step, 34.0 + step)),
            # Community 2: two neighbours a hundredth of a grid step apart (a digitising sliver).
            ("c", "c2", box(113.02, 34.0, 113.02 + step, 34.0 + step)),
            ("d", "c2", box(113.02 + step + 1e-8, 34.0, 113.02 + 2 * step, 34.0 + step)),
        ],
    )
    first, second = feature_collection(city, "community")["features"]
    assert first["geometry"]["type"] == "MultiPolygon"
    assert len(first["geometry"]["coordinates"]) == 2
    assert second["geometry"]["type"] == "Polygon"
    assert second["geometry"]["coordinates"] == [
        [[113.02, 34.0], [113.022, 34.0], [113.022, 34.001], [113.02, 34.001], [113.02, 34.0]]
    ]
    assert first["properties"] == {"id": "c1", "name": "社区一", "street_id": "s1", "district_id": "d1"}
