"""The city's reference data: the shipped demo city, routing order, and the loader's checks."""

from __future__ import annotations

import copy
import csv
import importlib.util
import io
import json
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from shapely import box
from shapely.geometry import mapping

from shared.city.geo import Datum, area_m2, from_wgs84
from shared.city.loader import CityDataError, load_city
from shared.city.model import AreaLevel, City, DepartmentKind
from shared.core.auth import Role
from shared.events.catalogue import CategoryFamily, GridPlace

DEMO = Path(__file__).resolve().parents[2] / "deploy" / "cities" / "demo"
HIGH_TECH_ZONE = "高新区"
# The combinations the demo leaves without an owner on purpose, to exercise the coordination
# queue (权属不清): category code -> district names (None: every district).
UNCOVERED: dict[str, set[str] | None] = {
    "01-01-11": None,  # manhole cover of unknown owner
    "02-04-07": None,  # fallen overhead cable: power, telecom or cable TV?
    "02-06-01": None,  # other problem
    "01-02-10": {HIGH_TECH_ZONE},  # street name sign: the zone's committee takes no civil affairs
    "01-05-02": {HIGH_TECH_ZONE},  # building facade
    "01-06-01": {HIGH_TECH_ZONE},  # outdoor fitness equipment
}


@pytest.fixture(scope="module")
def demo() -> City:
    return load_city(DEMO)


# --- the demo city ---------------------------------------------------------------------------


def test_the_demo_city_loads(record_property: Callable[[str, object], None]) -> None:
    started = time.perf_counter()
    city = load_city(DEMO)
    # Measured for the record (it runs at every service start); not asserted, machines differ.
    record_property("load_seconds", round(time.perf_counter() - started, 3))
    assert city.name == "演示市"
    assert city.name_en == "Demo City"
    assert city.timezone == "Asia/Shanghai"


def test_the_demo_city_has_a_full_hierarchy(demo: City) -> None:
    assert 4 <= len(demo.districts) <= 6
    streets_per_district = Counter(street.district_id for street in demo.streets)
    communities_per_street = Counter(community.street_id for community in demo.communities)
    assert all(4 <= streets_per_district[d.id] <= 6 for d in demo.districts)
    assert all(3 <= communities_per_street[s.id] <= 6 for s in demo.streets)
    assert 3000 <= len(demo.cells) <= 6000
    for cell in demo.cells:
        community = demo.community(cell.community_id)
        street = demo.street(community.street_id)
        assert (cell.street_id, cell.district_id) == (street.id, street.district_id)
        assert cell.place == GridPlace(
            cell_id=cell.id, community_id=community.id, street_id=street.id, district_id=street.district_id
        )


def test_every_demo_cell_is_about_a_hectare(demo: City) -> None:
    for cell in demo.cells:
        assert cell.area_m2 == pytest.approx(10_000, rel=0.05), cell.id
        assert area_m2(demo.grid.polygon(cell.id)) == pytest.approx(cell.area_m2, rel=0.001), cell.id


def test_every_demo_cell_has_exactly_one_inspector(demo: City) -> None:
    assigned = Counter(cell_id for inspector in demo.inspectors for cell_id in inspector.cell_ids)
    assert set(assigned) == {cell.id for cell in demo.cells}
    assert set(assigned.values()) == {1}
    for cell in demo.cells:
        assert cell.id in demo.inspector_for(cell.id).cell_ids
    assert 20 <= len(demo.cells) / len(demo.inspectors) <= 40


def test_a_point_is_located_in_its_cell_from_any_datum(demo: City) -> None:
    for cell in demo.cells[::397]:
        centre = demo.grid.polygon(cell.id).centroid
        assert demo.locate(centre.x, centre.y) == cell
        assert demo.locate(*from_wgs84(centre.x, centre.y, Datum.GCJ02), Datum.GCJ02) == cell
        assert demo.locate(*from_wgs84(centre.x, centre.y, Datum.BD09), Datum.BD09) == cell
    assert demo.locate(113.0, 34.0) is None
    assert demo.locate(116.404, 39.915) is None


def test_a_point_on_the_edge_between_two_demo_cells_goes_to_one_of_them(demo: City) -> None:
    cell = demo.cells[100]
    west, south, east, north = demo.grid.polygon(cell.id).bounds
    neighbour = demo.locate(east + (east - west) / 2, (south + north) / 2)
    assert neighbour is not None
    on_edge = demo.locate(east, (south + north) / 2)
    assert on_edge == min(cell, neighbour, key=lambda c: c.id)


def test_the_demo_catalogue(demo: City) -> None:
    assert len(demo.categories) >= 60
    assert {c.family for c in demo.categories} == {CategoryFamily.COMPONENT, CategoryFamily.EVENT}
    majors = {c.major_name for c in demo.categories}
    assert {"公用设施", "道路交通", "市容环境", "园林绿化", "房屋土地", "其他设施"} <= majors
    assert {"宣传广告", "施工管理", "突发事件", "街面秩序", "其他事件"} <= majors
    power_cover = demo.category("01-01-04")
    assert (power_cover.name, power_cover.urgent, power_cover.time_basis) == ("电力井盖", True, "calendar")
    assert power_cover.handling == 120
    pavement = demo.category("01-02-05")
    assert (pavement.time_basis, pavement.handling, pavement.filing, pavement.dispatch, pavement.check) == (
        "working",
        5 * 7 * 60,
        30,
        30,
        120,
    )
    assert all(c.time_basis == "calendar" for c in demo.categories if c.urgent)
    assert all(c.urgent for c in demo.categories if c.major_code == "02-04")
    with pytest.raises(KeyError):
        demo.category("99-99-99")


def test_the_demo_departments(demo: City) -> None:
    assert len(demo.departments) >= 25
    kinds = Counter(d.kind for d in demo.departments)
    assert kinds[DepartmentKind.DISTRICT_GOVERNMENT] == len(demo.districts)
    assert kinds[DepartmentKind.STREET_OFFICE] == len(demo.streets)
    assert kinds[DepartmentKind.UTILITY_COMPANY] >= 8
    assert kinds[DepartmentKind.COORDINATION] == 1
    assert demo.department("co-power").name == "国网演示市供电公司"


def _place_in(demo: City, *, street_id: str | None = None, district_name: str | None = None) -> GridPlace:
    for cell in demo.cells:
        if street_id in (None, cell.street_id) and district_name in (None, demo.district(cell.district_id).name):
            return cell.place
    raise AssertionError("no such cell")


def test_a_power_manhole_cover_goes_to_the_power_company_everywhere(demo: City) -> None:
    for street in demo.streets:
        rule = demo.route("01-01-04", _place_in(demo, street_id=street.id))
        assert rule is not None
        assert rule.department_id == "co-power"


def test_street_vending_goes_to_the_street_office_of_the_place(demo: City) -> None:
    for street in demo.streets:
        rule = demo.route("02-05-01", _place_in(demo, street_id=street.id))
        assert rule is not None
        office = demo.department(rule.department_id)
        assert office.kind is DepartmentKind.STREET_OFFICE
        assert office.name == f"{street.name}办事处"


def test_a_city_wide_exact_rule_beats_a_street_rule_on_the_major_class(demo: City) -> None:
    place = _place_in(demo)
    parking = demo.route("02-05-04", place)
    assert parking is not None
    assert parking.department_id == "police-traffic"
    assert demo.route("02-05-01", place) != parking


def test_a_district_rule_beats_the_city_wide_one_for_the_same_category(demo: City) -> None:
    old_town = _place_in(demo, district_name="老城区")
    elsewhere = _place_in(demo, district_name="东湖区")
    in_old_town, outside = demo.route("02-01-01", old_town), demo.route("02-01-01", elsewhere)
    assert in_old_town is not None
    assert outside is not None
    assert (in_old_town.area_level, in_old_town.department_id) == (
        AreaLevel.DISTRICT,
        f"sanitation-{old_town.district_id}",
    )
    assert (outside.area_level, outside.department_id) == (AreaLevel.CITY, "sanitation")


def test_the_uncovered_combinations_are_exactly_the_documented_ones(demo: City) -> None:
    uncovered: dict[str, set[str]] = {}
    for street in demo.streets:
        place = _place_in(demo, street_id=street.id)
        for category in demo.categories:
            if demo.route(category.code, place) is None:
                uncovered.setdefault(category.code, set()).add(demo.district(street.district_id).name)
    all_districts = {d.name for d in demo.districts}
    assert uncovered == {code: districts or all_districts for code, districts in UNCOVERED.items()}


def test_the_demo_users(demo: City) -> None:
    roles = Counter(user.role for user in demo.users)
    assert set(roles) == set(Role)
    assert roles[Role.INSPECTOR] >= 2
    assert roles[Role.DEPARTMENT] >= 3
    for user in demo.users:
        assert user.password == f"demo-{user.role}"
        assert user.password not in repr(user)
    inspector = demo.user("inspector1")
    assert inspector.inspector_id is not None
    assert demo.inspector(inspector.inspector_id).cell_ids
    power = demo.user("dept-power")
    assert power.department_id == "co-power"
    # The simulator acts as every inspector and every department.
    assert {u.inspector_id for u in demo.users if u.inspector_id} == {i.id for i in demo.inspectors}
    assert {u.department_id for u in demo.users if u.department_id} == {d.id for d in demo.departments}


def test_the_calendar_file_is_left_for_the_calendar_module(demo: City) -> None:
    assert demo.calendar_file == DEMO / "calendar.yaml"
    assert demo.calendar_file.read_text(encoding="utf-8") == (
        'timezone: Asia/Shanghai\nworking_hours: ["08:30-12:00", "14:30-18:00"]\noverrides: {}\ncovered_years: {}\n'
    )


def test_the_committed_files_are_what_the_generator_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = importlib.util.spec_from_file_location("generate_demo", DEMO.parent / "generate_demo.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "generate_demo", module)  # dataclasses look their module up
    spec.loader.exec_module(module)
    module.generate(tmp_path)
    committed = sorted(p.name for p in DEMO.iterdir())
    assert sorted(p.name for p in tmp_path.iterdir()) == committed
    for name in committed:
        assert (tmp_path / name).read_bytes() == (DEMO / name).read_bytes(), name


# --- a tiny city, and the loader's checks ------------------------------------------------------

ORIGIN = (113.66, 34.76)
STEP = 0.001


def _feature(cell_id: str, column: int, row: int, community: str, street: str) -> dict[str, Any]:
    west, south = ORIGIN[0] + column * STEP, ORIGIN[1] + row * STEP
    polygon = box(west, south, west + STEP, south + STEP)
    properties = {
        "cell_id": cell_id,
        "name": f"{cell_id}号网格",
        "community_id": community,
        "community_name": f"{community}社区",
        "street_id": street,
        "street_name": f"{street}街道",
        "district_id": "D1",
        "district_name": "一区",
        "area_m2": round(area_m2(polygon), 1),
    }
    return {"type": "Feature", "properties": properties, "geometry": mapping(polygon)}


def _category(code: str, urgent: bool, handling: int) -> dict[str, Any]:
    return {
        "code": code,
        "name": f"类别{code}",
        "name_en": f"Category {code}",
        "urgent": urgent,
        "time_basis": "calendar" if urgent else "working",
        "limits": {"filing": 30, "dispatch": 30, "handling": handling, "check": 120},
    }


@dataclass
class TinyCity:
    """A valid four-cell city that each test breaks in one place.

    Cells (2 x 2): c1 south-west and c3 north-west in street S1 / community C1; c2 south-east
    and c4 north-east in street S2 / community C2; all in district D1.
    """

    manifest: dict[str, Any] = field(
        default_factory=lambda: {"name": "小城", "name_en": "Tiny Town", "timezone": "Asia/Shanghai"}
    )
    features: list[dict[str, Any]] = field(
        default_factory=lambda: [
            _feature("c1", 0, 0, "C1", "S1"),
            _feature("c2", 1, 0, "C2", "S2"),
            _feature("c3", 0, 1, "C1", "S1"),
            _feature("c4", 1, 1, "C2", "S2"),
        ]
    )
    categories: dict[str, Any] = field(
        default_factory=lambda: {
            "majors": [
                {
                    "code": "01-01",
                    "name": "公用设施",
                    "name_en": "Public utilities",
                    "family": "component",
                    "categories": [_category("01-01-04", True, 120), _category("01-01-05", False, 420)],
                },
                {
                    "code": "02-05",
                    "name": "街面秩序",
                    "name_en": "Street order",
                    "family": "event",
                    "categories": [_category("02-05-01", False, 240), _category("02-05-04", False, 120)],
                },
            ]
        }
    )
    departments: list[list[str]] = field(
        default_factory=lambda: [
            ["id", "name", "name_en", "kind"],
            ["power", "供电公司", "Power company", "utility_company"],
            ["office-S1", "S1街道办事处", "S1 Street Office", "street_office"],
            ["office-S2", "S2街道办事处", "S2 Street Office", "street_office"],
            ["police", "交警", "Traffic police", "municipal_bureau"],
            ["gov-D1", "一区人民政府", "District One Government", "district_government"],
        ]
    )
    routing: list[list[str]] = field(
        default_factory=lambda: [
            ["id", "category_pattern", "area_level", "area_id", "department_id", "priority"],
            ["power-covers", "01-01-04", "city", "", "power", "100"],
            ["s1-order", "02-05", "street", "S1", "office-S1", "100"],
            ["s2-order", "02-05", "street", "S2", "office-S2", "100"],
            ["parking", "02-05-04", "city", "", "police", "100"],
        ]
    )
    inspectors: list[list[str]] = field(
        default_factory=lambda: [["id", "name", "cell_ids"], ["i1", "王伟", "c1;c3"], ["i2", "李娜", "c2;c4"]]
    )
    users: list[dict[str, Any]] = field(
        default_factory=lambda: [
            {
                "username": "w",
                "password": "demo-inspector",
                "role": "inspector",
                "display_name": "王伟",
                "inspector_id": "i1",
            },
            {
                "username": "p",
                "password": "demo-department",
                "role": "department",
                "display_name": "电",
                "department_id": "power",
            },
            {"username": "o", "password": "demo-operator", "role": "operator", "display_name": "受理员"},
        ]
    )

    def write(self, folder: Path) -> Path:
        """Write the files into ``folder`` and return it."""

        def csv_text(rows: list[list[str]]) -> str:
            out = io.StringIO()
            csv.writer(out, lineterminator="\n").writerows(rows)
            return out.getvalue()

        files = {
            "city.yaml": yaml.safe_dump(self.manifest, allow_unicode=True),
            "grid.geojson": json.dumps({"type": "FeatureCollection", "features": self.features}, ensure_ascii=False),
            "categories.yaml": yaml.safe_dump(self.categories, allow_unicode=True),
            "departments.csv": csv_text(self.departments),
            "routing.csv": csv_text(self.routing),
            "inspectors.csv": csv_text(self.inspectors),
            "users.yaml": yaml.safe_dump({"users": self.users}, allow_unicode=True),
            "calendar.yaml": "timezone: Asia/Shanghai\n",
        }
        for name, text in files.items():
            (folder / name).write_text(text, encoding="utf-8")
        return folder


def _problems(tiny: TinyCity, folder: Path) -> str:
    with pytest.raises(CityDataError) as caught:
        load_city(tiny.write(folder))
    return str(caught.value)


def test_the_tiny_city_is_valid(tmp_path: Path) -> None:
    city = load_city(TinyCity().write(tmp_path))
    assert [c.id for c in city.cells] == ["c1", "c2", "c3", "c4"]
    assert city.inspector_for("c4").id == "i2"
    assert city.street("S2").district_id == "D1"
    assert city.community("C1").street_id == "S1"
    assert city.category("01-01-04").family is CategoryFamily.COMPONENT
    assert city.calendar_file == tmp_path / "calendar.yaml"
    with pytest.raises(KeyError):
        city.department("nope")


def _route(city: City, code: str, cell_id: str) -> str | None:
    rule = city.route(code, city.cell(cell_id).place)
    return rule.id if rule else None


def test_routing_prefers_lower_priority_then_exact_category_then_smaller_area(tmp_path: Path) -> None:
    tiny = TinyCity()
    tiny.routing += [
        ["d1-order", "02-05", "district", "D1", "gov-D1", "100"],
        ["anything", "*", "city", "", "gov-D1", "100"],
        ["d1-vending-urgent", "02-05-01", "district", "D1", "gov-D1", "10"],
    ]
    city = load_city(tiny.write(tmp_path))
    # Exact category beats a smaller area with a major-class pattern.
    assert _route(city, "02-05-04", "c1") == "parking"
    # Same pattern: the street beats the district.
    assert _route(city, "02-05-01", "c2") == "d1-vending-urgent"  # ...unless a lower priority says otherwise
    tiny.routing.pop()
    city = load_city(tiny.write(tmp_path))
    assert _route(city, "02-05-01", "c1") == "s1-order"
    assert _route(city, "02-05-01", "c4") == "s2-order"
    # The catch-all answers only where nothing more specific does.
    assert _route(city, "01-01-05", "c1") == "anything"
    assert _route(city, "01-01-04", "c1") == "power-covers"


def test_no_matching_rule_means_the_coordination_queue(tmp_path: Path) -> None:
    city = load_city(TinyCity().write(tmp_path))
    assert city.route("01-01-05", city.cell("c1").place) is None
    with pytest.raises(KeyError):
        city.route("09-09-09", city.cell("c1").place)


def test_an_unknown_department_in_a_rule(tmp_path: Path) -> None:
    tiny = TinyCity()
    tiny.routing.append(["gas-covers", "01-01-05", "city", "", "gas-company", "100"])
    assert "routing.csv line 6: unknown department 'gas-company'" in _problems(tiny, tmp_path)


def test_rules_must_name_known_categories_and_areas(tmp_path: Path) -> None:
    tiny = TinyCity()
    tiny.routing += [
        ["r1", "03-01", "city", "", "power", "100"],
        ["r2", "01-01-04", "street", "S9", "power", "100"],
        ["r3", "01-01-04", "city", "S1", "power", "100"],
        ["r4", "01-01-04", "district", "", "power", "100"],
    ]
    problems = _problems(tiny, tmp_path)
    assert "routing.csv line 8: a city-wide rule takes no area_id" in problems
    assert "routing.csv line 9: a district rule needs the area_id of its district" in problems
    tiny.routing = tiny.routing[:-2]
    problems = _problems(tiny, tmp_path)
    assert "routing.csv line 6: category_pattern '03-01' is no category code, major code or '*'" in problems
    assert "routing.csv line 7: unknown street 'S9'" in problems


def test_two_rules_that_would_tie(tmp_path: Path) -> None:
    tiny = TinyCity()
    tiny.routing.append(["parking-2", "02-05-04", "city", "", "office-S1", "100"])
    assert "routing.csv line 6: ties with routing.csv line 5" in _problems(tiny, tmp_path)


def test_a_category_without_limits(tmp_path: Path) -> None:
    tiny = TinyCity()
    del tiny.categories["majors"][0]["categories"][1]["limits"]
    assert "categories.yaml majors[0] (01-01) categories[1] (01-01-05): limits: the time limits are missing" in (
        _problems(tiny, tmp_path)
    )


def test_a_category_with_an_incomplete_or_wrong_limit(tmp_path: Path) -> None:
    tiny = TinyCity()
    del tiny.categories["majors"][1]["categories"][0]["limits"]["handling"]
    tiny.categories["majors"][1]["categories"][1]["limits"]["check"] = 0
    problems = _problems(tiny, tmp_path)
    assert (
        "categories[0] (02-05-01): limits: expected filing, dispatch, handling, check in minutes; missing handling"
        in (problems)
    )
    assert "categories[1] (02-05-04): check: Input should be greater than 0" in problems


def test_an_urgent_category_runs_on_calendar_time(tmp_path: Path) -> None:
    tiny = TinyCity()
    tiny.categories["majors"][0]["categories"][0]["time_basis"] = "working"
    assert "(01-01-04): an urgent category runs on calendar time" in _problems(tiny, tmp_path)


def test_a_category_code_outside_its_major_class(tmp_path: Path) -> None:
    tiny = TinyCity()
    tiny.categories["majors"][0]["categories"][1]["code"] = "02-05-09"
    assert "does not start with its major class '01-01'-" in _problems(tiny, tmp_path)


def test_duplicate_ids(tmp_path: Path) -> None:
    tiny = TinyCity()
    tiny.departments.append(["power", "另一个", "Another", "other"])
    tiny.categories["majors"][1]["categories"].append(_category("02-05-01", False, 60))
    tiny.features.append(copy.deepcopy(tiny.features[0]))
    tiny.features[-1]["geometry"] = mapping(
        box(ORIGIN[0] + 2 * STEP, ORIGIN[1], ORIGIN[0] + 3 * STEP, ORIGIN[1] + STEP)
    )
    problems = _problems(tiny, tmp_path)
    assert "departments.csv line 7: duplicate department id 'power' (first at departments.csv line 2)" in problems
    assert "categories[2] (02-05-01): duplicate category code '02-05-01'" in problems
    assert "grid.geojson feature 4 (cell c1): duplicate cell_id 'c1' (first at grid.geojson feature 0 (cell c1))" in (
        problems
    )


def test_a_cell_outside_any_community(tmp_path: Path) -> None:
    tiny = TinyCity()
    tiny.features[1]["properties"]["community_id"] = ""
    assert "grid.geojson feature 1 (cell c2): the cell is outside any community" in _problems(tiny, tmp_path)


def test_a_community_in_two_streets(tmp_path: Path) -> None:
    tiny = TinyCity()
    tiny.features[2]["properties"]["street_id"] = "S2"
    problems = _problems(tiny, tmp_path)
    assert "grid.geojson feature 2 (cell c3): the community is" in problems


def test_overlapping_cells(tmp_path: Path) -> None:
    tiny = TinyCity()
    tiny.features[3]["geometry"] = mapping(
        box(ORIGIN[0] + 0.5 * STEP, ORIGIN[1] + STEP, ORIGIN[0] + 1.5 * STEP, ORIGIN[1] + 2 * STEP)
    )
    assert "grid.geojson: cells c3 and c4 overlap" in _problems(tiny, tmp_path)


def test_a_cell_whose_area_does_not_match_its_polygon(tmp_path: Path) -> None:
    tiny = TinyCity()
    tiny.features[0]["properties"]["area_m2"] = 5000
    assert "grid.geojson feature 0 (cell c1): area_m2 5000 does not match" in _problems(tiny, tmp_path)


def test_a_cell_in_projected_metres_is_refused(tmp_path: Path) -> None:
    tiny = TinyCity()
    tiny.features[0]["geometry"] = mapping(box(500_000, 3_800_000, 500_100, 3_800_100))
    tiny.features[0]["properties"]["area_m2"] = 10_000
    assert "feature 0 (cell c1): coordinates must be WGS-84 longitude/latitude in degrees" in _problems(tiny, tmp_path)


def test_inspectors_cover_every_cell_exactly_once(tmp_path: Path) -> None:
    tiny = TinyCity()
    tiny.inspectors = [["id", "name", "cell_ids"], ["i1", "王伟", "c1;c3;c9"], ["i2", "李娜", "c3;c4"]]
    problems = _problems(tiny, tmp_path)
    assert "inspectors.csv line 2: inspector i1 is assigned to unknown cell 'c9'" in problems
    assert "inspectors.csv: cell c3 has several inspectors: i1, i2" in problems
    assert "inspectors.csv: 1 cells have no inspector: c2" in problems


def test_users_link_to_known_inspectors_and_departments(tmp_path: Path) -> None:
    tiny = TinyCity()
    tiny.users[0]["inspector_id"] = "i9"
    tiny.users[1]["department_id"] = "water"
    tiny.users.append(
        {"username": "d", "password": "x", "role": "dispatcher", "display_name": "派", "department_id": "power"}
    )
    tiny.users.append({"username": "o", "password": "x", "role": "operator", "display_name": "又一个"})
    problems = _problems(tiny, tmp_path)
    assert "users.yaml users[3] (d): department_id is required for the department role and only for it" in problems
    assert "users.yaml users[4] (o): duplicate username 'o' (first at users.yaml users[2] (o))" in problems
    del tiny.users[3:]
    problems = _problems(tiny, tmp_path)
    assert "users.yaml users[0] (w): unknown inspector 'i9'" in problems
    assert "users.yaml users[1] (p): unknown department 'water'" in problems


def test_the_city_id_is_written_or_made_from_the_english_name(tmp_path: Path, demo: City) -> None:
    assert demo.id == "demo.citycase"
    tiny = TinyCity()
    assert load_city(tiny.write(tmp_path)).id == "tiny-town"
    tiny.manifest["id"] = "Tiny Town"
    assert "city.yaml: id: 'Tiny Town' is not lowercase letters, digits, dots and dashes" in _problems(tiny, tmp_path)
    tiny.manifest.pop("id")
    tiny.manifest["name_en"] = "小城"
    assert "city.yaml: id: name_en gives no id of letters and digits; write one" in _problems(tiny, tmp_path)


def test_every_problem_of_a_folder_is_reported_at_once(tmp_path: Path) -> None:
    tiny = TinyCity()
    tiny.manifest["timezone"] = "Mars/Olympus"
    tiny.departments[1][3] = "nuclear_plant"
    tiny.inspectors.append(["i3", "张三"])
    problems = _problems(tiny, tmp_path)
    assert "city.yaml: timezone: unknown time zone 'Mars/Olympus'" in problems
    assert "departments.csv line 2: kind: Input should be" in problems
    assert "inspectors.csv line 4: fewer values than columns" in problems


def test_missing_files_and_folders(tmp_path: Path) -> None:
    folder = TinyCity().write(tmp_path)
    (folder / "routing.csv").unlink()
    (folder / "calendar.yaml").unlink()
    with pytest.raises(CityDataError) as caught:
        load_city(folder)
    assert caught.value.problems == ("routing.csv: file not found", "calendar.yaml: file not found")
    with pytest.raises(CityDataError, match="not a directory"):
        load_city(tmp_path / "nowhere")


def test_malformed_files(tmp_path: Path) -> None:
    folder = TinyCity().write(tmp_path)
    (folder / "grid.geojson").write_text("{not json", encoding="utf-8")
    (folder / "categories.yaml").write_text("majors: [", encoding="utf-8")
    (folder / "departments.csv").write_text("id,name\nx,y\n", encoding="utf-8")
    with pytest.raises(CityDataError) as caught:
        load_city(folder)
    problems = str(caught.value)
    assert "grid.geojson: not valid JSON" in problems
    assert "categories.yaml: not valid YAML" in problems
    assert "departments.csv line 1: expected the columns id, name, name_en, kind; found id, name" in problems
