"""The workbenches and the case file, driven the way each person uses them: every role logs in to
its workbench; a department finds no other department's case, by search or by address; the shift
lead decides an extension, suspends, resumes and supervises; an operator rejects a detection and
an inspector answers a verification; the monthly bulletin shows the API's figures and downloads
as a workbook. Last, one case goes the whole way with every step clicked in the console — an
operator files a video detection, a dispatcher places it (no rule owns its category), the street
office signs for it and returns it, the dispatcher sends it back, the street office signs again
and reports it handled with a photo chosen from the device, the inspector's check passes — and
the case file shows it closed with its timeline (last, so the street office's inbox holds the
cases the tests before it left there when its screenshot is taken).

The other parties (the video system, a citizen, an inspector on patrol) act through the public
API, as they would; the ``page``/``people`` fixtures check that no page asks another host and
that the browser logs no error.
"""

from __future__ import annotations

import io
import json
import re
import time
import uuid
import zipfile
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from PIL import Image
from playwright.sync_api import FilePayload, Locator, Page, expect

from shared.city.loader import load_city
from shared.core.settings import Settings
from tests.browser.conftest import City, Watch, log_in, save_screenshot

OTHER_EVENT = "02-06-01"  # 其他事件: no routing rule names its owner, so it waits for a dispatcher
STREET_VENDING = "02-05-01"  # routed to the street office of the place: dept-street for insp-001's cells
STREET_OFFICE = "白鹭街道办事处"  # office-990102001, dept-street's department
STREET_OFFICE_ID = "office-990102001"
CASE_NUMBER = re.compile(r"\d{4}-\d{2}-\d{6}")


# --- the other parties, through the public API --------------------------------------------------


def _cell_centres() -> list[dict[str, float]]:
    """The centres of insp-001's cells (all in dept-street's street)."""
    demo = load_city(Settings().city_dir)
    centres = []
    for cell_id in demo.inspector("insp-001").cell_ids:
        centre = demo.grid.polygon(cell_id).centroid
        centres.append({"lon": centre.x, "lat": centre.y})
    return centres


def _photo(colour: tuple[int, int, int] = (40, 140, 90)) -> bytes:
    """A small real JPEG, as a camera or a phone would send."""
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), colour).save(buffer, "JPEG")
    return buffer.getvalue()


def _report(city: City, user: str | None, path: str, category: str, description: str, wanted: str) -> dict[str, Any]:
    """A report at the first of insp-001's cells where it is not merged into an open case of the
    category nearby; it must come out ``wanted``."""
    for location in _cell_centres():
        body: dict[str, Any] = {"category_code": category, "description": description, "location": location}
        if user == "video":
            photo = ("files", ("camera.jpg", _photo(), "image/jpeg"))
            body["photos"] = [city.call("video", "POST", "/intake/photos", expect=201, files=[photo])[0]["digest"]]
        if user is None:
            answer = city.api.post(path, json=body)
            assert answer.status_code == 201, answer.text
            report: dict[str, Any] = answer.json()
        else:
            report = city.call(user, "POST", path, expect=201, json=body)
        if report["status"] != "merged":
            assert report["status"] == wanted, report
            return report
    raise AssertionError(f"every cell of insp-001 has an open case of {category}")


def _street_office_case(city: City, description: str) -> dict[str, Any]:
    """A case the street office (dept-street) holds: an inspector's street-vending report, filed
    at once and routed by the rules."""
    report = _report(city, "inspector1", "/intake/reports", STREET_VENDING, description, "filed")
    path = f"/intake/cases/{report['id']}"
    _wait_for(lambda: city.call("shiftlead", "GET", path)["department_id"] == STREET_OFFICE_ID)
    case: dict[str, Any] = city.call("shiftlead", "GET", path)
    return case


def _listed(city: City, user: str, path: str, case_id: str, **params: str) -> Callable[[], bool]:
    """Whether the list ``user`` reads at ``path`` holds the case (a work queue, an inbox)."""
    return lambda: any(item["id"] == case_id for item in city.call(user, "GET", path, params=params))


def _wait_for(condition: Callable[[], Any], timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("the city did not get there in time")
        time.sleep(0.05)


def _unique(text: str) -> str:
    return f"{text}（浏览器测试 {uuid.uuid4().hex[:6]}）"


# --- what a person does in the console ----------------------------------------------------------


def row(page: Page, text: str) -> Locator:
    """The row of a work list that shows ``text``."""
    return page.locator("table.pick-list tbody tr", has_text=text)


def notice(page: Page) -> Locator:
    return page.locator(".done-notice")


def open_workbench(page: Page) -> None:
    page.locator("header.top-bar nav a", has_text="工作台").click()
    expect(page.locator(".workbench h1")).to_be_visible()


def refresh_until(page: Page, text: str) -> Locator:
    """Click the workbench's refresh until a row with ``text`` shows (the events travel in the
    background), then that row."""
    target = row(page, text)
    deadline = time.monotonic() + 15
    while not target.count():
        assert time.monotonic() < deadline, f"no row with {text}"
        page.locator("[data-action=refresh]").click()
        page.wait_for_timeout(200)
    return target


def dispatch_to_street_office(page: Page, case_number: str, description: str, returned_because: str | None) -> None:
    """The dispatcher picks the case, reads it, and dispatches it to the street office."""
    refresh_until(page, case_number).click()
    expect(page.locator(".case-summary [data-description]")).to_have_text(description)
    if returned_because:
        expect(page.locator(".case-summary [data-return-reason]")).to_contain_text(returned_because)
    page.locator(".dispatch-actions").get_by_role("button", name="派遣").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("按名称筛选").fill("白鹭")
    label = f"{STREET_OFFICE} (已回退)" if returned_because else STREET_OFFICE
    dialog.get_by_label("责任部门").select_option(label=label)
    dialog.get_by_role("button", name="派遣").click()
    expect(notice(page)).to_contain_text(f"{case_number}: 已派遣至 {STREET_OFFICE}")
    expect(row(page, case_number)).to_have_count(0)


def wait_for_images(page: Page) -> None:
    """Every image of the page decoded (the photos arrive as blobs after the page draws)."""
    page.wait_for_function("() => [...document.images].every((image) => image.complete && image.naturalWidth > 0)")


# --- the tests ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("user", "title"),
    [
        ("operator", "受理员工作台"),
        ("dispatcher", "派遣员工作台"),
        ("shiftlead", "值班长工作台"),
        ("dept-street", f"{STREET_OFFICE}工作台"),
        ("inspector1", "网格监督员工作台"),
    ],
)
def test_each_role_sees_its_workbench(page: Page, city: City, user: str, title: str) -> None:
    log_in(page, city, user)
    if user == "shiftlead":
        open_workbench(page)  # the shift lead lands on the dashboard
    expect(page.locator(".workbench h1")).to_have_text(title)
    expect(page.locator("table.pick-list")).to_be_visible()
    expect(page.locator(".workbench [role=alert]")).to_have_count(0)
    if user == "dispatcher":
        page.get_by_label("语言").select_option("en")
        expect(page.locator(".workbench h1")).to_have_text("Dispatcher workbench")
        expect(page.get_by_role("tab", name=re.compile("Unclear ownership"))).to_be_visible()


def _queued(n: int, street_id: str, district_id: str) -> dict[str, Any]:
    """A case waiting in the coordination queue, as GET /dispatch/queue answers it."""
    return {
        "id": str(uuid.UUID(int=n + 1)),
        "case_number": f"2026-01-{900000 + n:06d}",
        "category_code": OTHER_EVENT,
        "street_id": street_id,
        "district_id": district_id,
        "status": "coordination",
        "department_id": None,
        "attempt": 0,
        "rule_id": None,
        "dispatched_at": None,
        "accepted": False,
        "handling_deadline": None,
        "handling_deadline_provisional": False,
        "deadline_missed_at": None,
        "suspended_at": None,
        "extension_deadline": None,
        "extension_reason": None,
        "extension_requested_by": None,
        "supervision_level": 0,
        "dispatch_deadline": None,
        "dispatch_deadline_provisional": False,
    }


def test_a_queue_of_many_pages_shows_whole_in_the_workbench(page: Page, city: City) -> None:
    """After a storm the coordination queue holds 1,200 cases, three pages of the API: the
    dispatcher sees them all, counted, and finds one of the last page by its number. The pages
    are the test's (the shared city keeps its own queue); each names the next as the API does,
    the first by an address of the process behind a proxy, which the console must not call."""
    cell = load_city(Settings().city_dir).cells[0]
    queue = [_queued(n, cell.street_id, cell.district_id) for n in range(1200)]
    pages = {None: (queue[:500], "p2"), "p2": (queue[500:1000], "p3"), "p3": (queue[1000:], None)}
    asked: list[str | None] = []

    def answer(route: Any) -> None:
        after = dict(parse_qsl(urlsplit(route.request.url).query)).get("after")
        asked.append(after)
        rows, following = pages[after]
        headers = {"Content-Type": "application/json"}
        if following == "p2":
            headers["Link"] = (
                f'<http://10.0.0.5:8101/dispatch/queue?status=coordination&limit=500&after={following}>; rel="next"'
            )
        elif following:
            headers["Link"] = f'</dispatch/queue?status=coordination&limit=500&after={following}>; rel="next"'
        route.fulfill(status=200, headers=headers, body=json.dumps(rows))

    page.route(re.compile(r"/dispatch/queue\?(.*&)?status=coordination"), answer)
    log_in(page, city, "dispatcher")
    expect(page.get_by_role("tab", name=re.compile("权属不清"))).to_contain_text("1200")
    expect(page.locator("table.pick-list tbody tr")).to_have_count(1200)
    assert asked[:3] == [None, "p2", "p3"]

    page.locator(".queue-filter input[type=search]").fill(queue[-1]["case_number"])
    expect(page.locator("table.pick-list tbody tr")).to_have_count(1)
    expect(row(page, queue[-1]["case_number"])).to_be_visible()


def test_a_department_finds_no_other_departments_case(page: Page, city: City, watch: Watch) -> None:
    watch.allow_console_error("403")  # the browser logs the refused request for the case file
    case = _street_office_case(city, _unique("占道经营"))

    log_in(page, city, "dept-water")
    expect(row(page, case["case_number"])).to_have_count(0)
    page.locator("header.top-bar nav a", has_text="案卷").click()
    page.get_by_label("案卷号").fill(case["case_number"])
    page.get_by_role("button", name="查询").click()
    expect(page.locator("[data-empty]")).to_have_text("没有符合条件的案卷")

    # Everything its search finds is its own.
    page.get_by_role("button", name="重置").click()
    results = page.locator("table.case-results tbody tr")
    own = city.call("dept-water", "GET", "/intake/cases")["items"]
    expect(results).to_have_count(len(own))
    assert all(c["department_id"] == "co-water" for c in own)

    page.goto(f"{city.url}/cases/{case['id']}")
    refusal = page.get_by_role("alert")
    expect(refusal).to_contain_text("无权查看此案卷")
    expect(refusal).to_contain_text("this case is not your department's")
    expect(page.locator(".case-file-body")).to_have_count(0)
    expect(page.get_by_text(case["case_number"])).to_have_count(0)


def test_the_shift_lead_decides_an_extension_and_suspends_resumes_supervises(page: Page, city: City) -> None:
    case = _street_office_case(city, _unique("流动摊贩"))
    number, case_id = case["case_number"], case["id"]
    wanted = datetime.fromisoformat(case["handling_deadline"]) + timedelta(days=2)
    city.call("dept-street", "POST", f"/handling/cases/{case_id}/accept")
    city.call(
        "dept-street",
        "POST",
        f"/handling/cases/{case_id}/extension",
        json={"requested_deadline": wanted.isoformat(), "reason": "需协调城管中队联合执法"},
    )
    _wait_for(_listed(city, "shiftlead", "/dispatch/extensions", case_id))

    log_in(page, city, "shiftlead")
    open_workbench(page)
    row(page, number).click()
    expect(page.locator("[data-extension]")).to_contain_text("需协调城管中队联合执法")
    page.get_by_role("button", name="批准延期").click()
    expect(notice(page)).to_have_text("已批准延期")

    page.get_by_role("tab", name=re.compile("在办案件")).click()
    page.get_by_label("筛选（案卷号、类别、位置、描述）").fill(number)
    row(page, number).click()
    page.get_by_role("button", name="挂账", exact=True).click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("原因").fill("等待产权单位确认")
    dialog.get_by_role("button", name="挂账").click()
    expect(notice(page)).to_contain_text("已挂账")

    page.get_by_role("tab", name=re.compile("挂账案件")).click()
    refresh_until(page, number).click()
    page.get_by_role("button", name="恢复办理").click()
    expect(notice(page)).to_have_text("已恢复办理")
    page.get_by_role("tab", name=re.compile("在办案件")).click()
    refresh_until(page, number).click()
    page.get_by_role("button", name="督办").click()
    page.get_by_role("dialog").get_by_label("督办意见").fill("请于今日内处置完毕")
    page.get_by_role("dialog").get_by_role("button", name="督办").click()
    expect(notice(page)).to_have_text("已督办（第 1 次）")

    state = city.call("shiftlead", "GET", f"/dispatch/cases/{case_id}")
    assert state["status"] == "dispatched"
    assert state["supervision_level"] == 1
    assert datetime.fromisoformat(state["handling_deadline"]) >= wanted


def test_an_operator_rejects_and_an_inspector_answers_a_verification(people: Callable[[], Page], city: City) -> None:
    detection = _unique("疑似违章停车")
    _report(city, "video", "/intake/video/detections", OTHER_EVENT, detection, "awaiting_review")
    complaint = _unique("小区门口有人焚烧垃圾")
    public = _report(city, None, "/intake/public/reports", OTHER_EVENT, complaint, "verifying")
    assert public["verifier_id"] == "insp-001"

    operator = people()
    log_in(operator, city, "operator")
    row(operator, detection).click()
    operator.get_by_role("button", name="不予立案").click()
    dialog = operator.get_by_role("dialog")
    dialog.get_by_label("原因类别").select_option(label="信息不实或无法定位")
    dialog.get_by_label("说明").fill("画面为正常临时停靠")
    dialog.get_by_role("button", name="不予立案").click()
    expect(notice(operator)).to_have_text("已不予立案")
    expect(row(operator, detection)).to_have_count(0)

    inspector = people()
    log_in(inspector, city, "inspector1")
    inspector.get_by_role("tab", name=re.compile("核实任务")).click()
    row(inspector, complaint).click()
    inspector.get_by_role("button", name="不属实").click()
    expect(inspector.get_by_role("alert")).to_have_text("不通过（不属实）时请写明现场情况")
    inspector.get_by_label("现场说明").fill("现场未见焚烧痕迹")
    inspector.get_by_role("button", name="不属实").click()
    expect(notice(inspector)).to_have_text("已提交核实结果")
    assert city.call("operator", "GET", f"/intake/reports/{public['id']}")["status"] == "rejected"


def test_the_monthly_bulletin_and_its_workbook(page: Page, city: City) -> None:
    log_in(page, city, "shiftlead")
    page.locator("header.top-bar nav a", has_text="月度通报").click()
    month = "2026-01"  # the simulated city's month
    bulletin = city.call("shiftlead", "GET", f"/assessment/bulletins/{month}")
    expect(page.get_by_label("月份")).to_have_value(month)
    expect(page.locator("[data-total=reports] .value")).to_have_text(f"{bulletin['totals']['reports']:,}")
    rate = bulletin["totals"]["on_time_closure_rate"]
    expect(page.locator("[data-total=on_time_closure_rate] .value")).to_have_text(f"{rate * 100:.2f}%")
    first = bulletin["department_ranking"][0]["name"]
    expect(page.get_by_role("table", name="部门排名（按期结案率）").locator("tbody tr").first).to_contain_text(first)

    with page.expect_download() as download:
        page.get_by_role("button", name="下载 Excel").click()
    assert download.value.suggested_filename == f"bulletin-{month}.xlsx"
    path = download.value.path()
    with zipfile.ZipFile(path) as workbook:
        assert "xl/workbook.xml" in workbook.namelist()


def test_a_case_goes_the_whole_way_in_the_console(people: Callable[[], Page], city: City) -> None:
    description = _unique("人行道上堆放建筑杂物")
    detection = _report(city, "video", "/intake/video/detections", OTHER_EVENT, description, "awaiting_review")
    case_id = detection["id"]

    # The operator files the detection (立案).
    operator = people()
    log_in(operator, city, "operator")
    expect(operator).to_have_url(f"{city.url}/workbench/operator")
    row(operator, description).click()
    expect(operator.locator(".report-detail [data-description]")).to_have_text(description)
    expect(operator.locator(".report-detail .photo-thumb img")).to_have_count(1)
    operator.get_by_role("button", name="立案", exact=True).click()
    expect(notice(operator)).to_contain_text("已立案，案卷号")
    number = CASE_NUMBER.search(notice(operator).inner_text())
    assert number, notice(operator).inner_text()
    case_number = number.group()
    expect(row(operator, description)).to_have_count(0)

    # No rule owns the category (权属不清): the dispatcher places it.
    _wait_for(_listed(city, "dispatcher", "/dispatch/queue", case_id))
    dispatcher = people()
    log_in(dispatcher, city, "dispatcher")
    dispatch_to_street_office(dispatcher, case_number, description, returned_because=None)

    # The street office signs for it (签收), then finds it is not theirs and returns it (回退).
    _wait_for(_listed(city, "dept-street", "/handling/inbox", case_id))
    department = people()
    log_in(department, city, "dept-street")
    row(department, case_number).click()
    expect(department.locator(".task-detail [data-description]")).to_have_text(description)
    department.get_by_role("button", name="签收", exact=True).click()
    expect(notice(department)).to_contain_text("已签收")
    department.get_by_role("button", name="回退", exact=True).click()
    reason = "杂物属于相邻工地，应由住建部门处理"
    dialog = department.get_by_role("dialog")
    dialog.get_by_label("原因").fill(reason)
    dialog.get_by_role("button", name="回退").click()
    expect(notice(department)).to_contain_text("已回退")
    expect(row(department, case_number)).to_have_count(0)

    # The dispatcher sees why and sends it back to the street office.
    _wait_for(_listed(city, "dispatcher", "/dispatch/queue", case_id, status="returned"))
    dispatcher.get_by_role("tab", name=re.compile("回退待重派")).click()
    dispatch_to_street_office(dispatcher, case_number, description, returned_because=reason)

    # Signed for again, and reported handled with a photo chosen from the device (处置反馈).
    _wait_for(_listed(city, "dept-street", "/handling/inbox", case_id))
    refresh_until(department, case_number).click()
    department.get_by_role("button", name="签收", exact=True).click()
    expect(notice(department)).to_contain_text("已签收")
    department.get_by_label("处置结果").fill("已清走杂物，人行道恢复通行")
    after: FilePayload = {"name": "after.jpg", "mimeType": "image/jpeg", "buffer": _photo(colour=(90, 160, 210))}
    department.get_by_label("选择照片").set_input_files(files=[after])
    thumbnail = department.locator(".photo-upload .photo-thumb img")
    expect(thumbnail).to_have_count(1)
    expect(department.locator(".photo-upload [role=status]")).to_have_text("已上传 1 张")
    wait_for_images(department)
    save_screenshot(department, "workbench.png")
    department.get_by_role("button", name="提交").click()
    expect(notice(department)).to_contain_text("已提交处置反馈")
    expect(row(department, case_number)).to_have_count(0)

    # The inspector checks it on site (核查): passed, so it closes (结案).
    _wait_for(_listed(city, "inspector1", "/closure/checks", case_id))
    inspector = people()
    log_in(inspector, city, "inspector1")
    row(inspector, case_number).click()
    expect(inspector.locator(".case-summary [data-description]")).to_have_text(description)
    expect(inspector.locator(".case-summary .photo-strip .photo-thumb img")).to_have_count(2)  # reported, handled
    inspector.get_by_label("现场说明").fill("人行道已清理干净")
    inspector.get_by_role("button", name="核查通过").click()
    expect(notice(inspector)).to_contain_text(f"{case_number}: 已提交核查结果")

    # The case file, found by its number: closed, and every step with who and why.
    _wait_for(lambda: city.call("operator", "GET", f"/intake/cases/{case_id}")["status"] == "closed")
    operator.locator("header.top-bar nav a", has_text="案卷").click()
    operator.get_by_label("案卷号").fill(case_number)
    operator.get_by_role("button", name="查询").click()
    operator.locator("table.case-results").get_by_role("link", name=case_number).click()
    expect(operator).to_have_url(f"{city.url}/cases/{case_id}")
    expect(operator.locator(".case-file-header h1")).to_contain_text(case_number)
    expect(operator.locator(".case-file-header .status-tag")).to_have_text("已结案")
    people_did = [
        "report.received",
        "case.filed",
        "case.dispatched",
        "case.accepted",
        "case.returned",
        "case.dispatched",
        "case.accepted",
        "case.handled",
        "case.check_passed",
        "case.closed",
    ]
    # The services' own steps besides, each right after the step it follows; on a clock that
    # stands still, two services' steps of one instant may be recorded in either order.
    services_did = ["case.queued_for_coordination", "case.check_requested"]
    steps = operator.locator(".case-timeline li")
    expect(steps).to_have_count(len(people_did) + len(services_did))
    shown = [steps.nth(i).get_attribute("data-event") or "" for i in range(steps.count())]
    assert [step for step in shown if step not in services_did] == people_did
    assert sorted(shown) == sorted(people_did + services_did)
    returned = operator.locator(".case-timeline li[data-event='case.returned']")
    expect(returned).to_contain_text("回退")
    expect(returned).to_contain_text("dept-street")
    expect(returned).to_contain_text(reason)
    expect(operator.locator(".case-timeline li[data-event='case.filed']")).to_contain_text("operator")
    expect(operator.locator(".case-timeline li[data-event='case.check_passed']")).to_contain_text("人行道已清理干净")
    expect(operator.locator(".photos-panel .photo-thumb img")).to_have_count(2)
    expect(operator.locator(".deadlines-panel [data-step=handling]")).to_contain_text("按时完成")
    expect(operator.locator("[data-chart=place-map] canvas")).to_have_count(1)
    wait_for_images(operator)
    save_screenshot(operator, "case-file.png")
