"""Geography: datum conversions against published values, distances, cell lookup."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest
from shapely import box

from shared.city.geo import Datum, GridIndex, area_m2, distance_m, from_wgs84, out_of_china, to_wgs84

# Tiananmen area, the example of wandergis/coordtransform's README (lon, lat).
BEIJING = (116.404, 39.915)
# eviltransform's test vectors: WGS-84 -> GCJ-02 (lon, lat).
EVILTRANSFORM = [
    ((121.5272106, 31.1774276), (121.531541859215, 31.17530398364597)),  # Shanghai
    ((113.912316, 22.543847), (113.9171764808363, 22.540796131694766)),  # Shenzhen
    ((116.377817, 39.911954), (116.38404722455657, 39.91334545536069)),  # Beijing
]
LONDON = (-0.1276, 51.5072)


def test_wgs84_to_gcj02_matches_the_published_values() -> None:
    assert from_wgs84(*BEIJING, Datum.GCJ02) == pytest.approx((116.41024449916938, 39.91640428150164), abs=1e-9)
    for wgs, gcj in EVILTRANSFORM:
        assert from_wgs84(*wgs, Datum.GCJ02) == pytest.approx(gcj, abs=1e-9)


def test_gcj02_to_bd09_matches_the_published_value() -> None:
    gcj = to_wgs84(*BEIJING, Datum.GCJ02)
    assert from_wgs84(*gcj, Datum.BD09) == pytest.approx((116.41036949371029, 39.92133699351021), abs=1e-9)


def test_inverses_agree_with_the_published_one_step_approximations() -> None:
    # coordtransform's inverses take one approximate step; ours iterate to the exact point,
    # so they agree to the approximation's own error (centimetres), not to the last digit.
    wgs = to_wgs84(*BEIJING, Datum.GCJ02)
    assert distance_m(*wgs, 116.39775550083061, 39.91359571849836) < 0.5
    gcj = from_wgs84(*to_wgs84(*BEIJING, Datum.BD09), Datum.GCJ02)
    assert distance_m(*gcj, 116.39762729119315, 39.90865673957631) < 0.5


def test_the_offsets_have_the_known_size() -> None:
    gcj = from_wgs84(*BEIJING, Datum.GCJ02)
    bd = from_wgs84(*BEIJING, Datum.BD09)
    assert 300 < distance_m(*BEIJING, *gcj) < 700
    assert 700 < distance_m(*gcj, *bd) < 1000


@pytest.mark.parametrize("datum", [Datum.GCJ02, Datum.BD09])
def test_round_trips_stay_within_half_a_metre_across_china(datum: Datum) -> None:
    points = [(lon / 10, lat / 10) for lon in range(740, 1350, 35) for lat in range(185, 535, 35)]
    points += [BEIJING, (113.66, 34.757), (122.2, 30.0)]
    for lon, lat in points:
        there = from_wgs84(lon, lat, datum)
        assert distance_m(lon, lat, *to_wgs84(*there, datum)) < 0.5, (lon, lat)
        back = to_wgs84(lon, lat, datum)
        assert distance_m(lon, lat, *from_wgs84(*back, datum)) < 0.5, (lon, lat)


def test_wgs84_is_left_alone() -> None:
    assert to_wgs84(*BEIJING, Datum.WGS84) == BEIJING
    assert from_wgs84(*BEIJING, Datum.WGS84) == BEIJING


def test_a_datum_given_as_its_string_value_converts_the_same() -> None:
    gcj = from_wgs84(*BEIJING, Datum.GCJ02)
    assert to_wgs84(*gcj, "gcj02") == to_wgs84(*gcj, Datum.GCJ02)  # type: ignore[arg-type]
    assert from_wgs84(*BEIJING, "bd09") == from_wgs84(*BEIJING, Datum.BD09)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="cgcs2000"):
        to_wgs84(*BEIJING, "cgcs2000")  # type: ignore[arg-type]


def test_gcj02_is_wgs84_outside_china_but_bd09_still_shifts() -> None:
    assert out_of_china(*LONDON)
    assert not out_of_china(*BEIJING)
    assert from_wgs84(*LONDON, Datum.GCJ02) == LONDON
    assert to_wgs84(*LONDON, Datum.GCJ02) == LONDON
    # Baidu applies its own offset everywhere; the round trip still holds.
    bd = from_wgs84(*LONDON, Datum.BD09)
    assert distance_m(*LONDON, *bd) > 100
    assert distance_m(*LONDON, *to_wgs84(*bd, Datum.BD09)) < 0.5


def test_distance_on_the_ground() -> None:
    assert distance_m(*BEIJING, *BEIJING) == 0
    # One degree of a great circle on the mean sphere.
    assert distance_m(0, 0, 0, 1) == pytest.approx(111_195, abs=1)
    assert distance_m(0, 0, 1, 0) == pytest.approx(111_195, abs=1)
    beijing_shanghai = distance_m(116.4074, 39.9042, 121.4737, 31.2304)
    assert beijing_shanghai == pytest.approx(1_067_000, rel=0.005)
    assert distance_m(121.4737, 31.2304, 116.4074, 39.9042) == beijing_shanghai
    # Antipodes: half the circumference of the mean sphere (IUGG mean radius 6,371,008.8 m).
    assert distance_m(0, 0, 180, 0) == pytest.approx(math.pi * 6_371_008.8)


def test_area_of_a_hectare() -> None:
    # 100 m by 100 m at 30°N: 1/1108.6 degree of latitude by 1/960.5 of longitude, roughly.
    lat_step = 100 / 110_852.0
    lon_step = 100 / 96_486.0
    assert area_m2(box(122.2, 30.0, 122.2 + lon_step, 30.0 + lat_step)) == pytest.approx(10_000, rel=0.002)


@dataclass(frozen=True)
class Cell:
    id: str


def _two_by_two() -> GridIndex[Cell]:
    """Four unit squares: c1 south-west, c2 south-east, c3 north-west, c4 north-east."""
    return GridIndex(
        [
            (Cell("c4"), box(1, 1, 2, 2)),
            (Cell("c3"), box(0, 1, 1, 2)),
            (Cell("c2"), box(1, 0, 2, 1)),
            (Cell("c1"), box(0, 0, 1, 1)),
        ]
    )


def test_locate_finds_the_cell_containing_a_point() -> None:
    index = _two_by_two()
    assert len(index) == 4
    located = index.locate(0.5, 0.5)
    assert located is not None
    assert located.id == "c1"
    north_east = index.locate(1.7, 1.2)
    assert north_east is not None
    assert north_east.id == "c4"


def test_a_point_on_a_shared_edge_goes_to_one_cell_deterministically() -> None:
    index = _two_by_two()
    on_edge = index.locate(1.0, 1.5)  # between c3 and c4
    assert on_edge is not None
    assert on_edge.id == "c3"
    on_corner = index.locate(1.0, 1.0)  # shared by all four
    assert on_corner is not None
    assert on_corner.id == "c1"
    reordered = GridIndex([(cell, index.polygon(cell.id)) for cell in reversed(index.cells)])
    assert [reordered.locate(1.0, 1.5), reordered.locate(1.0, 1.0)] == [on_edge, on_corner]


def test_the_outer_boundary_is_in_the_city_and_beyond_it_is_not() -> None:
    index = _two_by_two()
    boundary = index.locate(2.0, 0.5)
    assert boundary is not None
    assert boundary.id == "c2"
    assert index.locate(2.000001, 0.5) is None
    assert index.locate(-5, -5) is None


def test_cells_by_id() -> None:
    index = _two_by_two()
    assert index.cell("c2") == Cell("c2")
    assert index.polygon("c2").bounds == (1, 0, 2, 1)
    with pytest.raises(KeyError):
        index.cell("c9")


def test_an_index_refuses_a_cell_twice() -> None:
    with pytest.raises(ValueError, match="c1"):
        GridIndex([(Cell("c1"), box(0, 0, 1, 1)), (Cell("c1"), box(1, 0, 2, 1))])


def test_overlapping_cells_are_found_and_touching_ones_are_not() -> None:
    assert _two_by_two().overlapping_pairs() == []
    index = GridIndex(
        [
            (Cell("a"), box(0, 0, 1, 1)),
            (Cell("b"), box(0.5, 0, 1.5, 1)),
            (Cell("c"), box(0.2, 0.2, 0.4, 0.4)),
            (Cell("d"), box(1.5, 0, 2.5, 1)),
        ]
    )
    assert sorted(index.overlapping_pairs()) == [("a", "b"), ("a", "c")]
