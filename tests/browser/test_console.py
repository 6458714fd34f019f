"""The console driven the way people use it: each role logs in and lands on its home; the
dashboard shows what the assessment API answers, draws every cell of the grid, and moves within
two seconds when a case closes elsewhere in the city; the tabs of one browser share one session,
which outlives a server that is away; a case search pages through its own results; nothing is
fetched from another host and the browser logs no error (the ``page`` fixture checks those two
after every test).
"""

from __future__ import annotations

import io
import time
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from PIL import Image
from playwright.sync_api import Page, Request, Response, Route, expect

from shared.city.loader import load_city
from shared.core.settings import Settings
from tests.browser.conftest import City, Watch, log_in, save_screenshot

STREET_VENDING = "02-05-01"  # routed to the street office of the place: dept-street for insp-001's cells
DASHBOARD_DRAWN = "() => performance.getEntriesByName('dashboard-rendered').length > 0"
GRID_CELLS = 4014

# The console puts nothing on `window` for tests: they import the ECharts chunk the page loaded
# (a module is one instance per URL) and ask its getInstanceByDom for the chart of an element.
_CHART = """
  const url = performance.getEntriesByType('resource').map((e) => e.name)
    .find((resource) => /\\/assets\\/echarts-[\\w-]+\\.js$/.test(resource))
  const chart = (await import(url)).getInstanceByDom(document.querySelector(`[data-chart=${name}]`))
"""
# What the map drew: its map's name, its data items, the regions of its coordinate system.
MAP_DRAWN = f"""async (name) => {{{_CHART}
  const series = chart.getOption().series[0]
  const regions = chart.getModel().getSeriesByIndex(0).coordinateSystem.regions.length
  return {{ map: series.map, data: series.data.length, regions }}
}}"""
# The labels of a bar chart's categories, bottom up.
BAR_LABELS = f"async (name) => {{{_CHART} return chart.getOption().yAxis[0].data }}"


def figure(answer: dict[str, Any], name: str) -> str:
    """A figure as the console writes it: a rate in percent with two decimals, a count whole."""
    value = answer["counters"][name] if name in answer["counters"] else answer["indicators"][name]
    if value is None:
        return "—"
    return f"{value * 100:.2f}%" if name.endswith("_rate") else f"{value:,}"


class BearerSeen:
    """The bearer token the page last sent, as it sent it (the console keeps it in memory)."""

    def __init__(self, page: Page) -> None:
        self.token = ""
        page.on("request", self._on_request)

    def _on_request(self, request: Request) -> None:
        header = request.headers.get("authorization", "")
        if header.startswith("Bearer "):
            self.token = header.removeprefix("Bearer ")


def map_drawn(page: Page, level: str) -> dict[str, Any]:
    """What the map drew, once it draws ``level``."""
    deadline = time.monotonic() + 10
    while True:
        drawn: dict[str, Any] = page.evaluate(MAP_DRAWN, "map")
        if drawn["map"] == f"citycase-{level}" or time.monotonic() > deadline:
            return drawn
        page.wait_for_timeout(100)


def test_the_login_page(page: Page, city: City) -> None:
    page.goto(f"{city.url}/dashboard")
    expect(page).to_have_url(f"{city.url}/login?redirect=/dashboard")
    expect(page.get_by_role("button", name="登录")).to_be_visible()
    save_screenshot(page, "login.png")


def test_a_page_visited_again_is_the_console_again(page: Page, city: City) -> None:
    # The second visit revalidates the cached index.html (304): the page must keep the console's
    # Content-Security-Policy, or its own scripts are refused and it stays blank.
    for _ in range(2):
        page.goto(f"{city.url}/login")
        expect(page.get_by_role("button", name="登录")).to_be_visible()


def test_a_wrong_password_shows_the_servers_message(page: Page, city: City, watch: Watch) -> None:
    watch.allow_console_error("401")  # the browser logs the refused request
    page.goto(f"{city.url}/login")
    page.get_by_label("用户名").fill("shiftlead")
    page.get_by_label("密码").fill("not-the-password")
    page.get_by_role("button", name="登录").click()
    expect(page.get_by_role("alert")).to_contain_text("wrong username or password")
    expect(page).to_have_url(f"{city.url}/login")


@pytest.mark.parametrize(
    ("user", "home", "role"),
    [
        ("shiftlead", "/dashboard", "值班长"),
        ("operator", "/workbench/operator", "受理员"),
        ("dispatcher", "/workbench/dispatcher", "派遣员"),
        ("dept-street", "/workbench/department", "专业部门"),
        ("inspector1", "/workbench/inspector", "网格监督员"),
    ],
)
def test_each_role_lands_on_its_home(page: Page, city: City, user: str, home: str, role: str) -> None:
    log_in(page, city, user)
    expect(page).to_have_url(f"{city.url}{home}")
    expect(page.locator("header.top-bar [data-role=role]")).to_have_text(role)
    links = page.locator("header.top-bar nav a")
    if user in ("shiftlead", "operator", "dispatcher"):
        expect(links.filter(has_text="指挥大屏")).to_have_count(1)
    else:
        # Departments and inspectors read only their own figures: the city's dashboard is not theirs.
        expect(links.filter(has_text="指挥大屏")).to_have_count(0)
        page.goto(f"{city.url}/dashboard")
        expect(page).to_have_url(f"{city.url}{home}")


def test_a_reload_keeps_the_session_and_logging_out_ends_it(page: Page, city: City) -> None:
    log_in(page, city, "dispatcher")
    page.reload()
    expect(page.locator("header.top-bar [data-role=role]")).to_have_text("派遣员")
    page.get_by_role("button", name="退出登录").click()
    expect(page).to_have_url(f"{city.url}/login")
    page.goto(f"{city.url}/workbench/dispatcher")
    expect(page).to_have_url(f"{city.url}/login?redirect=/workbench/dispatcher")


def test_the_dashboard_shows_the_apis_figures_and_every_cell(page: Page, city: City) -> None:
    bearer = BearerSeen(page)
    log_in(page, city, "shiftlead")
    page.wait_for_function(DASHBOARD_DRAWN, timeout=15_000)

    # The same token the page uses, asking the same API an integrator would.
    headers = {"Authorization": f"Bearer {bearer.token}"}
    month = city.api.get("/assessment/indicators", params={"period": "month"}, headers=headers).json()
    today = city.api.get("/assessment/indicators", params={"period": "day"}, headers=headers).json()
    assert month["counters"]["reports"] > 0, "the simulated day should have left figures"
    expect(page.locator("[data-figure]")).to_have_count(5)
    expect(page.locator("[data-figure=reports_today] .value")).to_have_text(figure(today, "reports"))
    for name in ("effective_filing_rate", "on_time_closure_rate", "closure_rate", "overdue_open"):
        expect(page.locator(f"[data-figure={name}] .value")).to_have_text(figure(month, name))
    assert month["counters"]["overdue_open"] > 0, "the morning after should have an overdue backlog"
    expect(page.locator("[data-chart=backlog]")).to_be_visible()

    assert map_drawn(page, "cell") == {"map": "citycase-cell", "data": GRID_CELLS, "regions": GRID_CELLS}

    ranking = city.api.get(
        "/assessment/rankings",
        params={"scope_kind": "department", "indicator": "on_time_closure_rate", "period": "month", "limit": 10},
        headers=headers,
    ).json()["ranking"]
    labels = page.evaluate(BAR_LABELS, "ranking")
    assert [label.split("  ", 1)[1] for label in reversed(labels)] == [row["name"] for row in ranking]

    # The charts draw their lines and bars in over a second (canvas animations, which the
    # screenshot's own `animations="disabled"` does not reach).
    page.wait_for_timeout(1500)
    save_screenshot(page, "dashboard.png")


def test_the_dashboard_switches_level_and_language(page: Page, city: City) -> None:
    log_in(page, city, "shiftlead")
    page.wait_for_function(DASHBOARD_DRAWN, timeout=15_000)
    page.locator("[data-level=district]").click()
    districts = len(load_city(Settings().city_dir).districts)
    assert map_drawn(page, "district") == {"map": "citycase-district", "data": districts, "regions": districts}
    page.get_by_label("语言").select_option("en")
    expect(page.locator("[data-figure=reports_today] h3")).to_have_text("Reports today")
    expect(page.get_by_role("button", name="Log out")).to_be_visible()


def test_a_closure_shows_on_the_open_dashboard_within_two_seconds(page: Page, city: City) -> None:
    log_in(page, city, "shiftlead")
    page.wait_for_function(DASHBOARD_DRAWN, timeout=15_000)
    expect(page.locator(".live-badge[data-state=open]")).to_be_visible()

    # The other roles, through the public API: an inspector reports, the street office signs for
    # the case and reports it handled, the inspector checks it on site.
    case_id = _report_a_new_case(city)
    _wait_for(lambda: city.call("shiftlead", "GET", f"/intake/cases/{case_id}")["status"] == "dispatched")
    city.call("dept-street", "POST", f"/handling/cases/{case_id}/accept")
    city.call(
        "dept-street",
        "POST",
        f"/handling/cases/{case_id}/report",
        data={"result": "cleared"},
        files=[("photos", ("after.png", _photo(), "image/png"))],
    )
    _wait_for(lambda: any(c["id"] == case_id for c in city.call("inspector1", "GET", "/closure/checks")))

    closed = page.locator("[data-figure=closure_rate] [data-part=closed]")
    before = city.call("shiftlead", "GET", "/assessment/indicators", params={"period": "month"})
    expect(closed).to_contain_text(figure(before, "closed"))

    answer = city.call("inspector1", "POST", f"/closure/cases/{case_id}/check", json={"passed": True, "note": "gone"})
    assert answer["status"] == "closed"
    started = time.monotonic()
    expect(closed).to_contain_text(f"{before['counters']['closed'] + 1:,}", timeout=2_000)
    seen_after = time.monotonic() - started
    assert seen_after < 2.0, f"the closure showed after {seen_after:.2f}s"


def test_an_expired_token_is_renewed_once_for_every_call_it_failed(page: Page, city: City, watch: Watch) -> None:
    watch.allow_console_error("401")  # the browser logs each refused call before the retry
    log_in(page, city, "shiftlead")
    page.wait_for_function(DASHBOARD_DRAWN, timeout=15_000)
    refreshes: list[str] = []

    def count_refreshes(request: Request) -> None:
        if urlsplit(request.url).path == "/auth/refresh":
            refreshes.append(request.url)

    page.on("request", count_refreshes)

    # Past the access token's 15 minutes: the page's next calls are refused, all at once.
    city.advance_clock(timedelta(minutes=16))
    page.locator("[data-period=week]").click()

    week = city.call("shiftlead", "GET", "/assessment/indicators", params={"period": "week"})
    span = f"{week['period']['start']} ~ {week['period']['end']}"
    expect(page.locator("[data-figure=closure_rate] .period")).to_have_text(span)
    expect(page.locator("[data-figure=closure_rate] .value")).to_have_text(figure(week, "closure_rate"))
    # One refresh for the map, rankings, backlog and figures together: a refresh token is good
    # once, and a second use would have ended the session.
    assert len(refreshes) == 1
    expect(page).to_have_url(f"{city.url}/dashboard")


def test_the_tabs_of_one_browser_refresh_in_turn_and_log_out_together(page: Page, city: City, watch: Watch) -> None:
    watch.allow_console_error("401")  # the refusals the test makes
    log_in(page, city, "shiftlead")
    page.goto(f"{city.url}/cases")
    other = _another_tab(page, watch)
    other.goto(f"{city.url}/cases")
    for tab in (page, other):
        expect(tab.locator("header.top-bar [data-role=role]")).to_have_text("值班长")
        expect(tab.locator("table.case-results tbody tr").first).to_be_visible()

    refreshes: list[str] = []
    page.context.on("request", lambda request: _note_refresh(request, refreshes))
    # Both tabs find their access token refused at once; the first tab's refresh is held on its
    # way to the server while the second asks for its own.
    held: list[Route] = []

    def hold(route: Route) -> None:
        held.append(route)

    page.route(_path("/auth/refresh"), hold, times=1)
    for tab in (page, other):
        tab.route(_path("/intake/cases"), _refuse_token, times=1)
    page.get_by_role("button", name="查询").click()
    _wait_until(page, lambda: bool(held))
    other.get_by_role("button", name="查询").click()
    other.wait_for_timeout(500)
    # The second tab waits its turn rather than spend the same single-use token...
    assert len(refreshes) == 1
    with page.expect_response(_found_cases), other.expect_response(_found_cases):
        held[0].continue_()
    # ...and takes up the pair the first one was given.
    assert len(refreshes) == 1
    for tab in (page, other):
        expect(tab.get_by_role("alert")).to_have_count(0)
        expect(tab).to_have_url(f"{city.url}/cases")

    # The session is still good on the server: the second tab's own refresh is answered.
    other.route(_path("/intake/cases"), _refuse_token, times=1)
    with other.expect_response(_found_cases):
        other.get_by_role("button", name="查询").click()
    assert len(refreshes) == 2
    expect(other.get_by_role("alert")).to_have_count(0)
    expect(other.locator("header.top-bar [data-role=role]")).to_have_text("值班长")

    # Logging out in one tab logs out the other.
    page.get_by_role("button", name="退出登录").click()
    expect(other.get_by_role("status")).to_have_text("会话已结束，请重新登录。")
    expect(other.locator("header.top-bar")).to_have_count(0)
    other.goto(f"{city.url}/cases")
    expect(other).to_have_url(f"{city.url}/login?redirect=/cases")


@pytest.mark.parametrize("away", ["unreachable", "503"])
def test_a_reload_while_the_server_is_away_keeps_the_session(page: Page, city: City, watch: Watch, away: str) -> None:
    watch.allow_console_error("net::ERR_FAILED")  # the calls the test cuts off
    watch.allow_console_error("503")
    log_in(page, city, "dispatcher")

    def server_away(route: Route) -> None:
        if route.request.resource_type not in ("fetch", "xhr", "eventsource"):
            route.fallback()  # the console's own files still load: only its API is away
        elif away == "unreachable":
            route.abort()
        else:
            route.fulfill(status=503, json={"code": "unavailable", "message": "the service is unavailable"})

    page.route("**/*", server_away)
    page.reload()
    waiting = page.locator("[data-awaiting-server]")
    expect(waiting.get_by_role("alert")).to_contain_text("无法连接服务器")
    expect(waiting).to_contain_text("您仍处于登录状态")
    expect(page).to_have_url(f"{city.url}/workbench/dispatcher")

    page.unroute("**/*", server_away)
    waiting.get_by_role("button", name="重试").click()
    expect(page.locator("header.top-bar [data-role=role]")).to_have_text("派遣员")
    expect(page.locator(".workbench h1")).to_be_visible()
    expect(waiting).to_have_count(0)
    expect(page).to_have_url(f"{city.url}/workbench/dispatcher")


def test_a_new_search_starts_from_its_own_first_page(page: Page, city: City, watch: Watch) -> None:
    watch.allow_console_error("503")  # the failure the test makes
    log_in(page, city, "shiftlead")
    # Pages of two, so that a few cases make several pages.
    searched: list[dict[str, list[str]]] = []

    def pages_of_two(route: Route) -> None:
        parts = urlsplit(route.request.url)
        query = parse_qs(parts.query) | {"limit": ["2"]}
        searched.append(query)
        route.continue_(url=parts._replace(query=urlencode(query, doseq=True)).geturl())

    page.route(_path("/intake/cases"), pages_of_two)
    page.goto(f"{city.url}/cases")
    rows = page.locator("table.case-results tbody tr")
    more = page.get_by_role("button", name="加载更多")
    expect(rows).to_have_count(2)
    expect(more).to_be_visible()

    # Another search, whose first page fails: the cursor of the search before is not its cursor.
    page.route(_path("/intake/cases"), _unavailable, times=1)
    page.locator("select[name=source]").select_option("inspector")
    page.get_by_role("button", name="查询").click()
    expect(page.get_by_role("alert")).to_contain_text("服务器出错")
    expect(more).to_have_count(0)
    expect(rows).to_have_count(0)

    wanted = {"source": "inspector", "limit": 2}
    first = city.call("shiftlead", "GET", "/intake/cases", params=wanted)
    assert first["next"], "the simulated day should have left more than two cases an inspector reported"
    second = city.call("shiftlead", "GET", "/intake/cases", params=wanted | {"after": first["next"]})
    page.get_by_role("alert").get_by_role("button", name="重试").click()
    expect(rows).to_have_count(2)
    more.click()
    expect(rows).to_have_count(2 + len(second["items"]))
    numbers = [c["case_number"] for c in first["items"] + second["items"]]
    assert rows.locator("td:first-child").all_inner_texts() == numbers
    retried, continued = searched[-2:]
    assert retried["source"] == ["inspector"]
    assert "after" not in retried
    assert continued["source"] == ["inspector"]
    assert continued["after"] == [first["next"]]


def _another_tab(page: Page, watch: Watch) -> Page:
    """A second tab of the page's browser (its context: the same storage), kept to the same rules."""
    tab = page.context.new_page()
    tab.on("request", watch.on_request)
    tab.on("console", watch.on_console)
    tab.on("pageerror", watch.on_page_error)
    return tab


def _path(path: str) -> Any:
    """A route's matcher for the API path ``path``, whatever the query."""
    return lambda url: urlsplit(url).path == path


def _note_refresh(request: Request, refreshes: list[str]) -> None:
    if urlsplit(request.url).path == "/auth/refresh":
        refreshes.append(request.url)


def _found_cases(response: Response) -> bool:
    return urlsplit(response.url).path == "/intake/cases" and response.ok


def _refuse_token(route: Route) -> None:
    """The answer of the server to an access token that ran out."""
    route.fulfill(status=401, json={"code": "unauthorized", "message": "the token has expired"})


def _unavailable(route: Route) -> None:
    route.fulfill(status=503, json={"code": "unavailable", "message": "the service is unavailable"})


def _wait_until(page: Page, condition: Any, timeout_s: float = 10.0) -> None:
    """Wait, letting the page's events through, until ``condition()`` holds."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("the page did not get there in time")
        page.wait_for_timeout(50)


def _report_a_new_case(city: City) -> str:
    """A street-vending report at the centre of one of inspector1's cells where no open case of
    the category is near (else it would merge into that one as a duplicate)."""
    demo = load_city(Settings().city_dir)
    for cell_id in demo.inspector("insp-001").cell_ids:
        centre = demo.grid.polygon(cell_id).centroid
        body = {
            "category_code": STREET_VENDING,
            "description": "found on patrol (browser test)",
            "location": {"lon": centre.x, "lat": centre.y},
        }
        report = city.call("inspector1", "POST", "/intake/reports", expect=201, json=body)
        if report["status"] == "filed":
            return str(report["id"])
    raise AssertionError("every cell of insp-001 has an open street-vending case")


def _wait_for(condition: Any, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("the city did not get there in time")
        time.sleep(0.05)


def _photo() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 12), (200, 120, 40)).save(buffer, "PNG")
    return buffer.getvalue()
