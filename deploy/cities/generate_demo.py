"""Generate the demo city "演示市 (Demo City)" into deploy/cities/demo/.

    python deploy/cities/generate_demo.py [--out DIR]

The output is committed; the platform loads the files (``shared.city.load_city``) and never runs
this script. It is deterministic (a fixed seed, no clock, no network) and needs only the standard
library, so regenerating gives the same bytes and a change to the demo city is a reviewable diff
of this script.

The city is fictional but sits on real ground: WGS-84 around the centre of Zhengzhou, a northern
city on a flat plain, so every cell is on land and district heating (热力) is part of the scene.
Unit grid cells are 100 m × 100 m on the ground (CJ/T 213 "万米单元网格", about 10,000 m²); the
districts, street offices and communities are unions of whole cells grown from seeds, so they
tile the city exactly, without gaps or overlaps, and each is in one piece.
"""

from __future__ import annotations

import argparse
import heapq
import json
import math
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

SEED = 20260101
CENTRE_LON, CENTRE_LAT = 113.660, 34.757
CELL_M = 100.0
# Semi-axes of the city outline before its wobble: about 4,000 cells of one hectare.
OUTLINE_X_M, OUTLINE_Y_M = 4100.0, 3100.0
CELLS_PER_INSPECTOR_MAX = 40
ROUTING_PRIORITY = 100

# WGS-84 ellipsoid: a degree's length on the ground depends on the latitude.
WGS84_A = 6378137.0
WGS84_E2 = 6.69437999014e-3

Cell = tuple[int, int]  # (column, row); row 0 is the southernmost

# --- the catalogue (modelled on CJ/T 214: component and event families, major and minor classes) ---

# One working day is 08:30-12:00 + 14:30-18:00 = 7 hours.
DAY = 7 * 60
URGENT_LIMITS = {"filing": 10, "dispatch": 10, "check": 60}
WORKING_LIMITS = {"filing": 30, "dispatch": 30, "check": 120}

# Owner spec: a department id (one city-wide rule), "street" (the street office of the place),
# "district" (the district government, every district), "district-civil" (the district
# government where it takes civil affairs: not in the High-tech Zone), "major" (a rule on the
# major class covers it), None (no rule: the coordination queue).
MAJORS: list[tuple[str, str, str, str, list[tuple[str, str, str, bool, int, str | None]]]] = [
    (
        "01-01",
        "公用设施",
        "Public utilities",
        "component",
        [
            ("01", "上水井盖", "Water supply manhole cover", True, 120, "co-water"),
            ("02", "污水井盖", "Sewage manhole cover", True, 120, "co-drainage"),
            ("03", "雨水井盖", "Rainwater manhole cover", True, 120, "co-drainage"),
            ("04", "电力井盖", "Power manhole cover", True, 120, "co-power"),
            ("05", "电信井盖", "China Telecom manhole cover", True, 120, "co-telecom"),
            ("06", "移动井盖", "China Mobile manhole cover", True, 120, "co-mobile"),
            ("07", "联通井盖", "China Unicom manhole cover", True, 120, "co-unicom"),
            ("08", "燃气井盖", "Gas manhole cover", True, 120, "co-gas"),
            ("09", "热力井盖", "District heating manhole cover", True, 120, "co-heating"),
            ("10", "路灯井盖", "Street lighting manhole cover", True, 120, "bureau-urban"),
            ("11", "无主井盖", "Manhole cover of unknown owner", True, 120, None),
            ("12", "雨水箅子", "Storm drain grate", False, DAY, "co-drainage"),
            ("13", "消火栓", "Fire hydrant", False, 2 * DAY, "co-water"),
            ("14", "路灯", "Street lamp", False, 2 * DAY, "bureau-urban"),
            ("15", "电力箱柜", "Power distribution cabinet", False, 2 * DAY, "co-power"),
            ("16", "通信交接箱", "Telecom cross-connect cabinet", False, 3 * DAY, "co-telecom"),
            ("17", "燃气调压箱", "Gas pressure regulator cabinet", False, DAY, "co-gas"),
        ],
    ),
    (
        "01-02",
        "道路交通",
        "Roads and traffic",
        "component",
        [
            ("01", "交通标志牌", "Traffic sign", False, 2 * DAY, "police-traffic"),
            ("02", "交通信号灯", "Traffic light", True, 240, "police-traffic"),
            ("03", "道路护栏", "Road guard rail", False, 3 * DAY, "bureau-housing"),
            ("04", "公交站亭", "Bus shelter", False, 3 * DAY, "bureau-transport"),
            ("05", "人行道", "Pavement", False, 5 * DAY, "bureau-housing"),
            ("06", "车行道路面", "Carriageway surface", False, 5 * DAY, "bureau-housing"),
            ("07", "人行天桥", "Pedestrian bridge", False, 5 * DAY, "bureau-housing"),
            ("08", "隔离墩", "Bollards and road barriers", False, 3 * DAY, "bureau-housing"),
            ("09", "公共自行车站", "Public bicycle station", False, 2 * DAY, "bureau-transport"),
            ("10", "路名牌", "Street name sign", False, 5 * DAY, "district-civil"),
            ("11", "交通监控设施", "Traffic camera", False, 3 * DAY, "police-traffic"),
        ],
    ),
    (
        "01-03",
        "市容环境",
        "City appearance facilities",
        "component",
        [
            ("01", "公共厕所", "Public toilet", False, DAY, "major"),
            ("02", "垃圾箱", "Litter bin", False, DAY, "major"),
            ("03", "垃圾收集站", "Refuse collection point", False, DAY, "major"),
            ("04", "户外广告设施", "Outdoor advertising structure", False, 3 * DAY, "bureau-urban"),
            ("05", "报刊亭", "Newsstand", False, 3 * DAY, "bureau-urban"),
            ("06", "景观灯", "Decorative lighting", False, 2 * DAY, "bureau-urban"),
            ("07", "环卫工具房", "Sanitation tool house", False, 3 * DAY, "major"),
        ],
    ),
    (
        "01-04",
        "园林绿化",
        "Parks and greening",
        "component",
        [
            ("01", "行道树", "Street tree", False, 2 * DAY, "major"),
            ("02", "绿地", "Green space", False, 3 * DAY, "major"),
            ("03", "护树设施", "Tree guard", False, 3 * DAY, "major"),
            ("04", "花坛花箱", "Flower bed or planter", False, 3 * DAY, "major"),
            ("05", "城市雕塑", "Public sculpture", False, 5 * DAY, "major"),
            ("06", "公园设施", "Park facility", False, 3 * DAY, "parks"),
            ("07", "街头座椅", "Street bench", False, 3 * DAY, "major"),
        ],
    ),
    (
        "01-05",
        "房屋土地",
        "Buildings and land",
        "component",
        [
            ("01", "危房", "Dangerous building", True, 240, "bureau-housing"),
            ("02", "建筑外立面", "Building facade", False, 5 * DAY, "district-civil"),
            ("03", "地下通道", "Underpass", False, 3 * DAY, "bureau-housing"),
            ("04", "闲置地块", "Vacant plot", False, 5 * DAY, "bureau-planning"),
        ],
    ),
    (
        "01-06",
        "其他设施",
        "Other facilities",
        "component",
        [
            ("01", "健身设施", "Outdoor fitness equipment", False, 3 * DAY, "district-civil"),
            ("02", "充电桩", "EV charging point", False, 3 * DAY, "co-power"),
            ("03", "防汛设施", "Flood-control facility", False, 2 * DAY, "bureau-water"),
            ("04", "导向指示牌", "Wayfinding sign", False, 3 * DAY, "bureau-urban"),
        ],
    ),
    (
        "02-01",
        "市容环境",
        "City appearance",
        "event",
        [
            ("01", "暴露垃圾", "Exposed garbage", False, 120, "sanitation"),
            ("02", "积存垃圾渣土", "Accumulated garbage and muck", False, DAY, "sanitation"),
            ("03", "道路不洁", "Dirty road", False, 120, "sanitation"),
            ("04", "水域不洁", "Dirty water surface", False, DAY, "bureau-water"),
            ("05", "绿地脏乱", "Littered green space", False, DAY, "bureau-landscape"),
            ("06", "违法建设", "Illegal construction", False, 10 * DAY, "district"),
            ("07", "露天焚烧", "Open burning", False, 120, "street"),
            ("08", "乱堆物堆料", "Materials piled in public space", False, DAY, "street"),
            ("09", "动物尸体", "Animal carcass", False, 120, "sanitation"),
            ("10", "餐饮油烟", "Restaurant cooking fumes", False, 3 * DAY, "bureau-environment"),
        ],
    ),
    (
        "02-02",
        "宣传广告",
        "Advertising",
        "event",
        [
            ("01", "非法小广告", "Illegal small ads", False, DAY, "street"),
            ("02", "违规户外广告", "Illegal outdoor advertising", False, 3 * DAY, "bureau-urban"),
            ("03", "无照店招", "Unlicensed shop signboard", False, 3 * DAY, "bureau-urban"),
            ("04", "违规横幅", "Illegal banner", False, DAY, "street"),
            ("05", "占道广告牌", "Sandwich board on the pavement", False, DAY, "street"),
        ],
    ),
    (
        "02-03",
        "施工管理",
        "Construction",
        "event",
        [
            ("01", "施工扬尘", "Construction dust", False, DAY, "bureau-housing"),
            ("02", "施工噪声", "Construction noise", True, 120, "bureau-environment"),
            ("03", "道路遗撒", "Debris spilled on the road", False, 120, "bureau-urban"),
            ("04", "施工占道", "Construction occupying the road", False, DAY, "bureau-urban"),
            ("05", "建筑垃圾乱倒", "Construction waste dumped", False, DAY, "district"),
            ("06", "违规掘路", "Unauthorised road excavation", False, DAY, "bureau-housing"),
        ],
    ),
    (
        "02-04",
        "突发事件",
        "Emergencies",
        "event",
        [
            ("01", "路面塌陷", "Road collapse", True, 120, "bureau-housing"),
            ("02", "供水管爆裂", "Burst water main", True, 120, "co-water"),
            ("03", "燃气泄漏", "Gas leak", True, 60, "co-gas"),
            ("04", "道路积水", "Road flooding", True, 180, "co-drainage"),
            ("05", "道路结冰", "Icy road", True, 240, "sanitation"),
            ("06", "树木倒伏", "Fallen tree", True, 180, "bureau-landscape"),
            ("07", "架空线缆坠落", "Fallen overhead cable", True, 120, None),
            ("08", "污水冒溢", "Sewage overflow", True, 180, "co-drainage"),
            ("09", "广告牌坠落隐患", "Signboard about to fall", True, 120, "bureau-urban"),
            ("10", "热力管道泄漏", "Heating pipe leak", True, 120, "co-heating"),
        ],
    ),
    (
        "02-05",
        "街面秩序",
        "Street order",
        "event",
        [
            ("01", "流动摊贩", "Street vending", False, 240, "major"),
            ("02", "店外经营", "Shop trading outside its front", False, DAY, "major"),
            ("03", "占道经营", "Stalls occupying the road", False, DAY, "major"),
            ("04", "机动车违章停放", "Illegal parking", False, 120, "police-traffic"),
            ("05", "非机动车乱停放", "Disorderly bicycle parking", False, DAY, "major"),
            ("06", "露天烧烤", "Open-air barbecue", False, 240, "major"),
            ("07", "沿街晾挂", "Laundry hung along the street", False, DAY, "major"),
            ("08", "乞讨卖艺", "Begging and busking", False, DAY, "major"),
            ("09", "非法营运", "Unlicensed taxi touting", False, DAY, "bureau-transport"),
            ("10", "共享单车乱停放", "Disorderly shared bicycles", False, DAY, "major"),
            ("11", "无照经营门店", "Unlicensed shop", False, 5 * DAY, "bureau-market"),
        ],
    ),
    (
        "02-06",
        "其他事件",
        "Other events",
        "event",
        [
            ("01", "其他事件", "Other problem", False, 5 * DAY, None),
            ("02", "社会生活噪声", "Neighbourhood noise", False, DAY, "street"),
            ("03", "违规饲养家禽", "Poultry kept in the city", False, 3 * DAY, "street"),
            ("04", "废弃车辆", "Abandoned vehicle", False, 5 * DAY, "police-traffic"),
        ],
    ),
]

# Major classes routed as a whole; the minor classes marked "major" rely on these rules.
MAJOR_OWNERS = {"01-03": "sanitation", "01-04": "bureau-landscape"}
STREET_MAJOR = "02-05"  # street order: the street office of the place
# The old town contracts its own street cleaning: a district rule beats the city-wide one.
OLD_TOWN_SANITATION_CATEGORIES = ("02-01-01", "02-01-03")

CITY_DEPARTMENTS: list[tuple[str, str, str, str]] = [
    ("bureau-urban", "演示市城市管理局", "Demo City Urban Management Bureau", "municipal_bureau"),
    (
        "bureau-housing",
        "演示市住房和城乡建设局",
        "Demo City Housing and Urban-Rural Development Bureau",
        "municipal_bureau",
    ),
    ("bureau-transport", "演示市交通运输局", "Demo City Transport Bureau", "municipal_bureau"),
    ("bureau-landscape", "演示市园林局", "Demo City Landscaping Bureau", "municipal_bureau"),
    ("bureau-market", "演示市市场监督管理局", "Demo City Market Regulation Administration", "municipal_bureau"),
    ("bureau-environment", "演示市生态环境局", "Demo City Ecology and Environment Bureau", "municipal_bureau"),
    (
        "bureau-planning",
        "演示市自然资源和规划局",
        "Demo City Natural Resources and Planning Bureau",
        "municipal_bureau",
    ),
    ("bureau-water", "演示市水利局", "Demo City Water Resources Bureau", "municipal_bureau"),
    ("police-traffic", "演示市公安局交通警察支队", "Demo City Traffic Police Detachment", "municipal_bureau"),
    ("sanitation", "演示市环境卫生管理处", "Demo City Sanitation Administration", "sanitation"),
    ("parks", "演示市公园管理中心", "Demo City Parks Management Centre", "parks"),
    ("co-water", "演示市自来水有限公司", "Demo City Water Supply Co.", "utility_company"),
    ("co-drainage", "演示市排水有限公司", "Demo City Drainage Co.", "utility_company"),
    ("co-power", "国网演示市供电公司", "State Grid Demo City Power Supply Co.", "utility_company"),
    ("co-telecom", "中国电信演示市分公司", "China Telecom Demo City Branch", "utility_company"),
    ("co-mobile", "中国移动演示市分公司", "China Mobile Demo City Branch", "utility_company"),
    ("co-unicom", "中国联通演示市分公司", "China Unicom Demo City Branch", "utility_company"),
    ("co-gas", "演示市燃气集团有限公司", "Demo City Gas Group", "utility_company"),
    ("co-heating", "演示市热力集团有限公司", "Demo City District Heating Group", "utility_company"),
    (
        "coordination",
        "演示市城市运行管理服务中心协调组",
        "Demo City Operations Centre Coordination Unit",
        "coordination",
    ),
]

# --- names ---------------------------------------------------------------------------------

CITY_NAME, CITY_NAME_EN = "演示市", "Demo City"
PROVINCE_PREFIX = "9901"  # GB/T 2260 has no province 99: the codes cannot clash with a real place
# The old town is the centre; the others are named for their side of it (north, east, south, west).
DISTRICTS = [
    ("老城区", "Old Town District", "centre"),
    ("北河区", "Beihe District", "north"),
    ("东湖区", "Donghu District", "east"),
    ("高新区", "High-tech Zone", "south"),
    ("西园区", "Xiyuan District", "west"),
]
HIGH_TECH_ZONE = "高新区"  # its management committee takes no civil affairs: see "district-civil"
STREET_NAMES = {
    "府前": "Fuqian",
    "文昌": "Wenchang",
    "朝阳": "Chaoyang",
    "和平": "Heping",
    "东风": "Dongfeng",
    "解放": "Jiefang",
    "新华": "Xinhua",
    "人民": "Renmin",
    "建设": "Jianshe",
    "团结": "Tuanjie",
    "光明": "Guangming",
    "长安": "Chang'an",
    "红旗": "Hongqi",
    "胜利": "Shengli",
    "滨河": "Binhe",
    "湖滨": "Hubin",
    "桃源": "Taoyuan",
    "书院": "Shuyuan",
    "金桥": "Jinqiao",
    "花园": "Huayuan",
    "龙泉": "Longquan",
    "紫荆": "Zijing",
    "白鹭": "Bailu",
    "翠屏": "Cuiping",
    "锦绣": "Jinxiu",
    "学府": "Xuefu",
    "兴隆": "Xinglong",
    "永安": "Yong'an",
    "太平": "Taiping",
    "科技": "Keji",
    "创新": "Chuangxin",
    "青年": "Qingnian",
    "振兴": "Zhenxing",
    "丰收": "Fengshou",
}
COMMUNITY_FIRST = "东西南北新华文建和安康福兴盛金锦翠青丽春秋德仁明"
COMMUNITY_SECOND = "园苑湖桥井坊林塘湾岭门台里庄巷亭"
SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超霞平刚华建国志海燕红英玉兰俊峰宇浩鹏晨欣怡嘉"


@dataclass
class Region:
    """A district, street or community: whole cells grown from a seed."""

    cells: list[Cell]
    centroid: tuple[float, float] = (0.0, 0.0)
    children: list[Region] = field(default_factory=list)
    code: str = ""
    name: str = ""
    name_en: str = ""


# --- geometry ------------------------------------------------------------------------------


def metres_per_degree(lat: float) -> tuple[float, float]:
    """Length on the WGS-84 ellipsoid of one degree of longitude and one of latitude at ``lat``."""
    phi = math.radians(lat)
    w = 1.0 - WGS84_E2 * math.sin(phi) ** 2
    meridian = WGS84_A * (1.0 - WGS84_E2) / w**1.5
    normal = WGS84_A / math.sqrt(w)
    return normal * math.cos(phi) * math.pi / 180.0, meridian * math.pi / 180.0


def rectangle_area_m2(west: float, south: float, east: float, north: float) -> float:
    """Area on the ellipsoid of a small longitude/latitude rectangle (exact to well under 1 ppm here)."""
    per_lon, per_lat = metres_per_degree((south + north) / 2.0)
    return (east - west) * per_lon * (north - south) * per_lat


class Grid:
    """The 100 m lattice: cell (i, j) spans nodes i..i+1 east-west and j..j+1 south-north."""

    def __init__(self, columns: int, rows: int) -> None:
        self.columns, self.rows = columns, rows
        # One longitude step for the whole city: over 7 km the east-west size of a cell changes
        # by under 0.05 %, and a single step keeps every column aligned.
        per_lon, per_lat = metres_per_degree(CENTRE_LAT)
        d_lon, d_lat = CELL_M / per_lon, CELL_M / per_lat
        west = CENTRE_LON - columns / 2 * d_lon
        south = CENTRE_LAT - rows / 2 * d_lat
        # Nodes are rounded once, so neighbouring cells share their edges bit for bit.
        self.lons = [round(west + i * d_lon, 6) for i in range(columns + 1)]
        self.lats = [round(south + j * d_lat, 6) for j in range(rows + 1)]

    def centre_m(self, cell: Cell) -> tuple[float, float]:
        """The cell centre in metres east and north of the city centre."""
        i, j = cell
        return (i + 0.5 - self.columns / 2) * CELL_M, (j + 0.5 - self.rows / 2) * CELL_M

    def ring(self, cell: Cell) -> list[list[float]]:
        """The cell's exterior ring, counter-clockwise as RFC 7946 asks."""
        i, j = cell
        w, e, s, n = self.lons[i], self.lons[i + 1], self.lats[j], self.lats[j + 1]
        return [[w, s], [e, s], [e, n], [w, n], [w, s]]

    def area_m2(self, cell: Cell) -> float:
        """The cell's area on the ground."""
        i, j = cell
        return rectangle_area_m2(self.lons[i], self.lats[j], self.lons[i + 1], self.lats[j + 1])


def neighbours(cell: Cell) -> Iterable[Cell]:
    """The four cells sharing an edge with ``cell``."""
    i, j = cell
    return ((i + 1, j), (i - 1, j), (i, j + 1), (i, j - 1))


def city_cells(grid: Grid, rng: random.Random) -> list[Cell]:
    """The cells inside a wobbly ellipse, kept in one edge-connected piece."""
    wobble = [(k, rng.uniform(0.03, 0.07), rng.uniform(0, 2 * math.pi)) for k in (2, 3, 5, 7)]
    inside: set[Cell] = set()
    for i in range(grid.columns):
        for j in range(grid.rows):
            x, y = grid.centre_m((i, j))
            u, v = x / OUTLINE_X_M, y / OUTLINE_Y_M
            theta = math.atan2(v, u)
            limit = 1.0 + sum(amplitude * math.cos(k * theta + phase) for k, amplitude, phase in wobble)
            if math.hypot(u, v) <= limit:
                inside.add((i, j))
    start = (grid.columns // 2, grid.rows // 2)
    connected, frontier = {start}, [start]
    while frontier:
        for nb in neighbours(frontier.pop()):
            if nb in inside and nb not in connected:
                connected.add(nb)
                frontier.append(nb)
    return sorted(connected)


def centroid(grid: Grid, cells: Sequence[Cell]) -> tuple[float, float]:
    """Mean cell centre, in metres."""
    points = [grid.centre_m(c) for c in cells]
    return sum(p[0] for p in points) / len(points), sum(p[1] for p in points) / len(points)


def kmeans(grid: Grid, cells: Sequence[Cell], seeds: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """A few Lloyd iterations: seeds that split ``cells`` into parts of similar size."""
    points = [grid.centre_m(c) for c in cells]
    for _ in range(12):
        groups: list[list[tuple[float, float]]] = [[] for _ in seeds]
        for p in points:
            nearest = min(range(len(seeds)), key=lambda k: (p[0] - seeds[k][0]) ** 2 + (p[1] - seeds[k][1]) ** 2)
            groups[nearest].append(p)
        seeds = [
            (sum(q[0] for q in g) / len(g), sum(q[1] for q in g) / len(g)) if g else seeds[k]
            for k, g in enumerate(groups)
        ]
    return seeds


def grow(grid: Grid, cells: Sequence[Cell], seeds: list[tuple[float, float]], rng: random.Random) -> list[list[Cell]]:
    """Split ``cells`` into one connected region per seed.

    Regions grow from the cell nearest their seed, always claiming next the free neighbouring
    cell closest to their seed (scaled by a per-region weight so sizes vary): a Voronoi-like
    partition that, unlike a plain Voronoi one, never leaves a region in two pieces.
    """
    weights = [rng.uniform(0.85, 1.15) for _ in seeds]
    starts: list[Cell] = []
    for seed in seeds:
        starts.append(min((c for c in cells if c not in starts), key=lambda c: math.dist(grid.centre_m(c), seed)))
    heap = [(0.0, k, start) for k, start in enumerate(starts)]
    heapq.heapify(heap)
    free = set(cells)
    regions: list[list[Cell]] = [[] for _ in seeds]
    while heap:
        _, k, cell = heapq.heappop(heap)
        if cell not in free:
            continue
        free.discard(cell)
        regions[k].append(cell)
        for nb in neighbours(cell):
            if nb in free:
                heapq.heappush(heap, (math.dist(grid.centre_m(nb), seeds[k]) / weights[k], k, nb))
    return [sorted(region) for region in regions]


def north_to_south(regions: list[Region]) -> list[Region]:
    """Regions in reading order of their centroids: north first, then west first."""
    return sorted(regions, key=lambda r: (-round(r.centroid[1], -2), r.centroid[0]))


def split(grid: Grid, parent: Region, parts: int, rng: random.Random) -> list[Region]:
    """Cut a region into ``parts`` connected children of similar size, in reading order."""
    initial = [grid.centre_m(c) for c in rng.sample(parent.cells, parts)]
    children = [Region(cells) for cells in grow(grid, parent.cells, kmeans(grid, parent.cells, initial), rng)]
    for child in children:
        child.centroid = centroid(grid, child.cells)
    return north_to_south(children)


# --- the city ------------------------------------------------------------------------------


def build_hierarchy(grid: Grid, rng: random.Random) -> list[Region]:
    """Districts → street offices → communities, each a set of whole cells."""
    cells = city_cells(grid, rng)
    r = 0.55 * min(OUTLINE_X_M, OUTLINE_Y_M)
    compass = {"centre": (0.0, 0.0), "north": (0.0, r), "east": (r, 0.0), "south": (0.0, -r), "west": (-r, 0.0)}
    seeds = kmeans(grid, cells, [compass[side] for _, _, side in DISTRICTS])
    districts = [Region(part) for part in grow(grid, cells, seeds, rng)]
    street_names = iter(rng.sample(sorted(STREET_NAMES), len(STREET_NAMES)))
    community_names = iter(rng.sample([a + b for a in COMMUNITY_FIRST for b in COMMUNITY_SECOND], 300))
    for number, (district, (name, _, _)) in enumerate(zip(districts, DISTRICTS, strict=True), start=1):
        district.code, district.name = f"{PROVINCE_PREFIX}{number + 1:02d}", name
        district.centroid = centroid(grid, district.cells)
        district.children = split(grid, district, rng.randint(4, 6), rng)
        for s, street in enumerate(district.children, start=1):
            short_name = next(street_names)
            street.code, street.name = f"{district.code}{s:03d}", f"{short_name}街道"
            street.name_en = f"{STREET_NAMES[short_name]} Street"
            parts = max(3, min(6, round(len(street.cells) / 40) + rng.randint(-1, 1)))
            street.children = split(grid, street, parts, rng)
            for c, community in enumerate(street.children, start=1):
                community.code, community.name = f"{street.code}{c:03d}", f"{next(community_names)}社区"
    return districts


def communities(districts: list[Region]) -> Iterable[tuple[Region, Region, Region]]:
    """Every (district, street, community)."""
    for district in districts:
        for street in district.children:
            for community in street.children:
                yield district, street, community


def reading_order(cells: Iterable[Cell]) -> list[Cell]:
    """North-west first, row by row: how cells are numbered in their community."""
    return sorted(cells, key=lambda c: (-c[1], c[0]))


def cell_code(community: Region, sequence: int) -> str:
    """CJ/T 213-shaped: district (6) + street (3) + community (3) + cell (3) digits."""
    if sequence > 999:
        raise ValueError(f"{community.name} has more than 999 cells")
    return f"{community.code}{sequence:03d}"


def grid_geojson(grid: Grid, districts: list[Region]) -> str:
    """One Feature per cell, one per line (readable diffs), no indentation, 6-decimal coordinates."""
    lines = []
    for district, street, community in communities(districts):
        for sequence, cell in enumerate(reading_order(community.cells), start=1):
            properties = {
                "cell_id": cell_code(community, sequence),
                "name": f"{community.name}{sequence:02d}号网格",
                "community_id": community.code,
                "community_name": community.name,
                "street_id": street.code,
                "street_name": street.name,
                "district_id": district.code,
                "district_name": district.name,
                "area_m2": round(grid.area_m2(cell), 1),
            }
            feature = {
                "type": "Feature",
                "properties": properties,
                "geometry": {"type": "Polygon", "coordinates": [grid.ring(cell)]},
            }
            lines.append(json.dumps(feature, ensure_ascii=False, separators=(",", ":")))
    return '{"type":"FeatureCollection","features":[\n' + ",\n".join(lines) + "\n]}\n"


def yaml_str(value: str) -> str:
    """A double-quoted YAML scalar (the JSON escape rules are a subset of YAML's)."""
    return json.dumps(value, ensure_ascii=False)


def categories_yaml() -> str:
    """The catalogue, grouped by major class as CJ/T 214 lists it."""
    out = [
        "# Case categories of the demo city, modelled on CJ/T 214 (components 部件 / events 事件).",
        "# code = family (01 component, 02 event) - major class - minor class.",
        "# Limits are minutes: working minutes (city working hours and working days) when",
        "# time_basis is working, wall-clock minutes (24x7) when calendar; urgent ones run on calendar time.",
        "# One working day is 7 hours = 420 working minutes.",
        "majors:",
    ]
    for major_code, name, name_en, family, minors in MAJORS:
        out += [
            f"  - code: {yaml_str(major_code)}",
            f"    name: {name}",
            f"    name_en: {name_en}",
            f"    family: {family}",
            "    categories:",
        ]
        for minor, minor_name, minor_en, urgent, handling, _ in minors:
            base = URGENT_LIMITS if urgent else WORKING_LIMITS
            out += [
                f"      - code: {yaml_str(f'{major_code}-{minor}')}",
                f"        name: {minor_name}",
                f"        name_en: {minor_en}",
                f"        urgent: {'true' if urgent else 'false'}",
                f"        time_basis: {'calendar' if urgent else 'working'}",
                f"        limits: {{filing: {base['filing']}, dispatch: {base['dispatch']}, "
                f"handling: {handling}, check: {base['check']}}}",
            ]
    return "\n".join(out) + "\n"


def csv_text(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """Comma-separated, no quoting needed: no value holds a comma, quote or newline."""
    lines = [",".join(header)]
    for row in rows:
        values = ["" if v is None else str(v) for v in row]
        if any(ch in v for v in values for ch in ',"\n'):
            raise ValueError(f"value needs quoting: {values}")
        lines.append(",".join(values))
    return "\n".join(lines) + "\n"


def departments(districts: list[Region]) -> list[tuple[str, str, str, str]]:
    """City bureaus and companies, every district government and every street office."""
    rows = list(CITY_DEPARTMENTS)
    old_town = districts[0]
    rows.append(
        (f"sanitation-{old_town.code}", f"{old_town.name}环境卫生所", "Old Town Sanitation Station", "sanitation")
    )
    for district, (name, name_en, _) in zip(districts, DISTRICTS, strict=True):
        if name == HIGH_TECH_ZONE:
            rows.append(
                (f"gov-{district.code}", f"{name}管理委员会", f"{name_en} Management Committee", "district_government")
            )
        else:
            rows.append((f"gov-{district.code}", f"{name}人民政府", f"{name_en} Government", "district_government"))
    for district in districts:
        for street in district.children:
            rows.append((f"office-{street.code}", f"{street.name}办事处", f"{street.name_en} Office", "street_office"))
    return rows


def routing(districts: list[Region]) -> list[tuple[str, str, str, str, str, int]]:
    """The owner rules: by category city-wide, by district, by street; gaps on purpose."""
    rows: list[tuple[str, str, str, str, str, int]] = []
    for major_code, major_owner in MAJOR_OWNERS.items():
        rows.append((f"city-{major_code}", major_code, "city", "", major_owner, ROUTING_PRIORITY))
    for district in districts:
        for street in district.children:
            rows.append(
                (
                    f"street-{STREET_MAJOR}-{street.code}",
                    STREET_MAJOR,
                    "street",
                    street.code,
                    f"office-{street.code}",
                    ROUTING_PRIORITY,
                )
            )
    old_town = districts[0]
    for code in OLD_TOWN_SANITATION_CATEGORIES:
        rows.append(
            (
                f"district-{code}-{old_town.code}",
                code,
                "district",
                old_town.code,
                f"sanitation-{old_town.code}",
                ROUTING_PRIORITY,
            )
        )
    for major_code, _, _, _, minors in MAJORS:
        for minor, _, _, _, _, owner in minors:
            code = f"{major_code}-{minor}"
            if owner is None or owner == "major":
                continue
            if owner == "street":
                for district in districts:
                    for street in district.children:
                        rows.append(
                            (
                                f"street-{code}-{street.code}",
                                code,
                                "street",
                                street.code,
                                f"office-{street.code}",
                                ROUTING_PRIORITY,
                            )
                        )
            elif owner in ("district", "district-civil"):
                for district in districts:
                    if owner == "district" or district.name != HIGH_TECH_ZONE:
                        rows.append(
                            (
                                f"district-{code}-{district.code}",
                                code,
                                "district",
                                district.code,
                                f"gov-{district.code}",
                                ROUTING_PRIORITY,
                            )
                        )
            else:
                rows.append((f"city-{code}", code, "city", "", owner, ROUTING_PRIORITY))
    return rows


def person_names(rng: random.Random, count: int) -> list[str]:
    """Distinct plausible Chinese names."""
    names: list[str] = []
    seen: set[str] = set()
    while len(names) < count:
        name = rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2, 2))))
        if name not in seen:
            seen.add(name)
            names.append(name)
    return names


def inspectors(districts: list[Region], rng: random.Random) -> list[tuple[str, str, list[str]]]:
    """Each community patrolled by one or more inspectors, at most 40 cells each, in bands."""
    patrols: list[list[str]] = []
    for _, _, community in communities(districts):
        codes = [cell_code(community, s) for s in range(1, len(community.cells) + 1)]
        count = math.ceil(len(codes) / CELLS_PER_INSPECTOR_MAX)
        size, extra = divmod(len(codes), count)
        start = 0
        for k in range(count):
            end = start + size + (1 if k < extra else 0)
            patrols.append(codes[start:end])
            start = end
    names = person_names(rng, len(patrols))
    return [(f"insp-{n:03d}", names[n - 1], cells) for n, cells in enumerate(patrols, start=1)]


def users_yaml(
    districts: list[Region],
    patrols: list[tuple[str, str, list[str]]],
    departments_rows: list[tuple[str, str, str, str]],
) -> str:
    """Demo log-ins for every role: one per inspector and one per department, so the simulator can
    act as each of them; the named department log-ins come first, for the README's walk-through.
    """
    first_street = districts[0].children[0]
    users: list[tuple[str, str, str, str | None, str | None]] = [
        (f"inspector{n}", "inspector", f"{name}（网格监督员）", None, inspector_id)
        for n, (inspector_id, name, _) in enumerate(patrols, start=1)
    ]
    users += [
        ("operator", "operator", "受理员 赵敏", None, None),
        ("dispatcher", "dispatcher", "派遣员 钱磊", None, None),
        ("shiftlead", "shift_lead", "值班长 孙静", None, None),
        ("hotline", "hotline", "12345政务服务热线（系统账户）", None, None),
        ("video", "video", "视频智能识别（系统账户）", None, None),
        ("dept-power", "department", "供电公司调度", "co-power", None),
        ("dept-water", "department", "自来水公司调度", "co-water", None),
        ("dept-sanitation", "department", "环卫处值班室", "sanitation", None),
        ("dept-housing", "department", "住建局市政科", "bureau-housing", None),
        ("dept-traffic", "department", "交警支队指挥室", "police-traffic", None),
        ("dept-street", "department", f"{first_street.name}办事处城管科", f"office-{first_street.code}", None),
        ("dept-coordination", "department", "协调组", "coordination", None),
    ]
    named = {department_id for _, _, _, department_id, _ in users if department_id}
    users += [(f"dept-{row[0]}", "department", row[1], row[0], None) for row in departments_rows if row[0] not in named]
    out = [
        "# Demo log-ins. DEMO ONLY: the passwords are plain text and public (demo-<role>);",
        "# a real city replaces this file or turns demo log-ins off.",
        "users:",
    ]
    for username, role, display_name, department_id, inspector_id in users:
        out += [
            f"  - username: {username}",
            f"    password: {yaml_str('demo-' + role)}",
            f"    role: {role}",
            f"    display_name: {yaml_str(display_name)}",
        ]
        if department_id:
            out.append(f"    department_id: {department_id}")
        if inspector_id:
            out.append(f"    inspector_id: {inspector_id}")
    return "\n".join(out) + "\n"


CITY_YAML = f"""\
# The city this folder describes; every other file of the folder belongs to it.
# id: how systems outside name the city (Open311's jurisdiction_id).
id: demo.citycase
name: {CITY_NAME}
name_en: {CITY_NAME_EN}
timezone: Asia/Shanghai
"""

CALENDAR_YAML = """\
timezone: Asia/Shanghai
working_hours: ["08:30-12:00", "14:30-18:00"]
overrides: {}
covered_years: {}
"""

INTEGRATIONS_YAML = """\
# The systems the demo city talks to (shared/integration/endpoints.py reads this file; the
# format is in deploy/cities/README.md). Optional: a city without it has no hotline webhooks and
# pushes nothing to department systems.
#
# A real city never writes a secret here: it names the environment variable that holds it,
#   secrets: [{id: "2026a", env: CITYCASE_HOTLINE_12345_SECRET}]
# and adds a second one while it rotates them.

retry:
  # Given up on after 48 hours of trying, however many attempts that takes (a retry every 15 to
  # 30 minutes once the waits reach max_delay_seconds); max_attempts would bound them by count.
  max_age_hours: 48
  first_delay_seconds: 5
  max_delay_seconds: 1800
  timeout_seconds: 10

hotlines:
  - id: "12345"
    name: 演示市12345政务服务便民热线
    # The demo's bearer-token account pushes work orders as this hotline too
    # (POST /intake/hotline/work-orders with its token).
    account: hotline
    reopen_on_unsatisfied: true
    inbound:
      scheme: standard-webhooks
      secrets:
        # DEMO ONLY: public in this repository, so anyone can sign a work order with it.
        - {id: demo, value: "whsec_KM+nZtM+LX6rB/stn10DrDW8rM0rWq20w4QM+oQHgh0="}
    outbound:
      # No url: `make run` sends the hotline nothing, as no hotline listens on a newcomer's
      # machine (messages would only pile up in the dead letters). To watch receipts, status and
      # replies arrive, start something that answers 2xx there and uncomment:
      # url: http://127.0.0.1:9999/citycase
      scheme: standard-webhooks
      secrets:
        # DEMO ONLY, as above.
        - {id: demo-out, value: "whsec_6x0sY7KLyqOlV+1nZ5kq0k9CEBhL3o2qzH0mTg9bXy4="}

departments: []
# A department with a system of its own receives each dispatched case and every change to it:
#  - department_id: co-water
#    outbound:
#      url: https://water.example.cn/citycase/cases
#      scheme: app-key
#      algorithm: hmac-sm3
#      app_key: citycase-demo
#      secrets: [{id: "2026", env: CITYCASE_CO_WATER_SECRET}]
#      retry: {max_age_hours: 72}
"""


def generate(out: Path) -> dict[str, int]:
    """Write every file of the demo city into ``out``; returns the counts."""
    rng = random.Random(SEED)
    margin = 1.3
    grid = Grid(round(2 * OUTLINE_X_M * margin / CELL_M), round(2 * OUTLINE_Y_M * margin / CELL_M))
    districts = build_hierarchy(grid, rng)
    patrols = inspectors(districts, rng)
    rules = routing(districts)
    departments_rows = departments(districts)
    out.mkdir(parents=True, exist_ok=True)
    files = {
        "city.yaml": CITY_YAML,
        "grid.geojson": grid_geojson(grid, districts),
        "categories.yaml": categories_yaml(),
        "departments.csv": csv_text(("id", "name", "name_en", "kind"), departments_rows),
        "routing.csv": csv_text(
            ("id", "category_pattern", "area_level", "area_id", "department_id", "priority"), rules
        ),
        "inspectors.csv": csv_text(("id", "name", "cell_ids"), ((i, n, ";".join(c)) for i, n, c in patrols)),
        "users.yaml": users_yaml(districts, patrols, departments_rows),
        "calendar.yaml": CALENDAR_YAML,
        "integrations.yaml": INTEGRATIONS_YAML,
    }
    for name, text in files.items():
        (out / name).write_text(text, encoding="utf-8")
    return {
        "districts": len(districts),
        "streets": sum(len(d.children) for d in districts),
        "communities": sum(1 for _ in communities(districts)),
        "cells": sum(len(d.cells) for d in districts),
        "categories": sum(len(minors) for *_, minors in MAJORS),
        "departments": len(departments_rows),
        "routing rules": len(rules),
        "inspectors": len(patrols),
    }


def main() -> None:
    """Command line: write the demo city and print what it holds."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "demo")
    args = parser.parse_args()
    for what, count in generate(args.out).items():
        print(f"{what:>14}: {count}")


if __name__ == "__main__":
    main()
