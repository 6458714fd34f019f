"""A newcomer's first hour, as README.md walks them through it: the city started as its own process
(``python -m services run all``, as ``make run`` starts it) says where to go, and the walkthrough
"One case from report to closure", run by bash exactly as README.md writes it, takes one case from
the inspector's report to its closure, each step waiting for what the one before set moving.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from services.runtime.registry import load_specs
from shared.core.settings import Mode, Settings
from tests.conftest import REPO
from tests.support.processes import CityProcess

pytestmark = pytest.mark.skipif(
    shutil.which("bash") is None or shutil.which("curl") is None, reason="the walkthrough needs bash and curl"
)

WALKTHROUGH = "## One case from report to closure (make run)"
BASE_URL = re.compile(r"^CITY=(\S+)", re.MULTILINE)
# Run as a test, the walkthrough stops at its first failing step: any command that fails, and any
# HTTP answer that is not a success (curl's --fail-with-body, which still prints the refusal). Each
# answer ends its line, so that the test reads them one by one.
STRICT = "set -eo pipefail\ncurl() { command curl --fail-with-body --max-time 10 -w '\\n' \"$@\"; }\n"


def walkthrough(readme: str) -> str:
    """The shell code of the walkthrough: the first ``sh`` block of its section."""
    section = readme[readme.index(WALKTHROUGH) :]
    block = re.search(r"^```sh\n(.*?)^```$", section, re.MULTILINE | re.DOTALL)
    assert block is not None, "the walkthrough has no sh block"
    return block.group(1)


def against(script: str, url: str) -> str:
    """``script`` with its one base URL set to ``url``."""
    return BASE_URL.sub(f"CITY={url}", script)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def city(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[CityProcess]:
    folder = tmp_path_factory.mktemp("newcomer")
    console = folder / "console"
    console.mkdir()
    (console / "index.html").write_text("<!doctype html><title>citycase</title>")
    process = CityProcess(Settings(mode=Mode.EMBEDDED, data_dir=folder / "var", console_dir=console), folder)
    await process.start()
    try:
        yield process
    finally:
        await process.stop()


def test_the_walkthrough_names_its_city_once() -> None:
    script = walkthrough((REPO / "README.md").read_text(encoding="utf-8"))
    assert BASE_URL.findall(script) == ["http://127.0.0.1:8000"]
    # Every address is built on it: no other host or port written out (its own line aside).
    rest = re.sub(r"^CITY=.*$", "", script, flags=re.MULTILINE)
    assert re.findall(r"localhost|127\.0\.0\.1|:8000", rest) == []
    calls = [line for line in script.splitlines() if "curl " in line]
    assert len(calls) >= 7
    assert [line for line in calls if '"$CITY' not in line] == []


def test_each_step_waits_for_what_it_needs() -> None:
    """A step acting on what another service learnt from an event (the street office's inbox, the
    inspector's check task, the case closed in the case file) first asks until it is there: a call
    sent at once races the events (an empty inbox, a 404 for the accept)."""
    script = walkthrough((REPO / "README.md").read_text(encoding="utf-8"))
    poll = re.search(r"^(\w+)\(\) \{\n(.*?)^\}", script, re.MULTILINE | re.DOTALL)
    assert poll is not None, "no poll function"
    name, body = poll.groups()
    assert re.search(r"for _ in \$\(seq \d+\)", body), "the poll must give up in the end"
    order = [
        r'-X POST "\$CITY/intake/reports"',
        rf"^{name} /handling/inbox .*\$CASE",
        r'-X POST "\$CITY/handling/cases/\$CASE/accept"',
        r'-X POST "\$CITY/handling/cases/\$CASE/report"',
        rf"^{name} /closure/checks .*\$CASE",
        r'-X POST "\$CITY/closure/cases/\$CASE/check"',
        rf'^{name} "/intake/cases/\$CASE" .*closed',
        r'"\$CITY/intake/cases/\$CASE/timeline"',
    ]
    found = [re.search(step, script, re.MULTILINE) for step in order]
    assert [step for step, where in zip(order, found, strict=True) if where is None] == []
    starts = [where.start() for where in found if where is not None]
    assert starts == sorted(starts)


@pytest.mark.asyncio(loop_scope="module")
async def test_the_walkthrough_takes_a_case_to_its_closure(city: CityProcess, tmp_path: Path) -> None:
    script = against(walkthrough((REPO / "README.md").read_text(encoding="utf-8")), city.url)
    # A mark before each numbered step, to tell what each step answered.
    marked = re.sub(r"^# (\d)\.", r'echo "@@ \1"\n# \1.', script, flags=re.MULTILINE)
    bash = await asyncio.create_subprocess_exec(
        "bash",
        "-c",
        STRICT + marked + '\necho "@@ case $CASE"\n',
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    async with asyncio.timeout(120):
        output = (await bash.communicate())[0].decode(errors="replace")
    assert bash.returncode == 0, output
    parts = re.split(r"^@@ (\S+)(?: \S+)?$", output, flags=re.MULTILINE)
    answers = {
        parts[i]: [json.loads(line) for line in parts[i + 1].splitlines() if line] for i in range(1, len(parts), 2)
    }
    assert list(answers) == ["1", "2", "3", "4", "5", "case"], output
    case_id = re.findall(r"^@@ case (\S+)$", output, re.MULTILINE)[-1]
    # 2: the case in the street office's inbox; 3: signed for, then handled.
    assert [[case["id"] for case in inbox] for inbox in answers["2"]] == [[case_id]]
    assert [case["status"] for case in answers["3"]] == ["accepted", "handled"]
    # 4: the inspector's check task, then the case closed by the check.
    [checks, checked] = answers["4"]
    assert [task["id"] for task in checks] == [case_id]
    assert checked["status"] == "closed"
    # 5: the case file says closed, on time; the timeline has every step.
    [seen, timeline] = answers["5"]
    assert (seen["status"], seen["on_time"]) == ("closed", True)
    walked = ["report.received", "case.filed", "case.dispatched", "case.accepted", "case.handled", "case.closed"]
    assert [step["event_type"] for step in timeline if step["event_type"] in walked] == walked


@pytest.mark.asyncio(loop_scope="module")
async def test_the_start_up_says_where_to_go(city: CityProcess) -> None:
    log = city.log.read_text(encoding="utf-8", errors="replace")
    assert f"  console   {city.url}/\n" in log
    assert f"  API docs  {city.url}/docs " in log
    for prefix in ("/intake", "/open311", "/dispatch", "/handling", "/closure", "/assessment"):
        assert f"{city.url}{prefix}/docs\n" in log, prefix
    assert "shiftlead / demo-shift_lead" in log
    # Not a line per migration: the first start of a new city ran every one of them.
    assert "alembic" not in log.lower()
    assert "Running upgrade" not in log


@pytest.mark.asyncio(loop_scope="module")
async def test_migrate_says_one_line_per_service(city: CityProcess) -> None:
    output = await city.cli("migrate")
    heads = {spec.name: _head(spec.name) for spec in load_specs(["all"])}
    said = [line for line in output.splitlines() if line.split(":")[0] in heads]
    assert said == [f"{name}: schema at {head}" for name, head in heads.items()], output
    assert "alembic" not in output.lower()


def _head(service: str) -> str:
    """The newest revision of ``service``'s migrations: the highest numbered file's."""
    versions = sorted((REPO / service / "migrations" / "versions").glob("[0-9]*.py"))
    return versions[-1].name.split("_", 1)[0]
