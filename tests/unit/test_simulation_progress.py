"""The simulator's progress: a line per simulated day always; on a terminal, also a bar with the
share of the simulated days done and an ETA, redrawn in place and taken away before the summary.
"""

from __future__ import annotations

import io
import re
import time
from datetime import datetime, timedelta
from typing import cast
from zoneinfo import ZoneInfo

from services.tools.simulator.actors import Tally
from services.tools.simulator.client import CityClient
from services.tools.simulator.run import _duration, _Progress

ZONE = ZoneInfo("Asia/Shanghai")
START = datetime(2026, 1, 5, tzinfo=ZONE)
END = START + timedelta(days=4)


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class _Calls:
    calls = 0


def progress(out: io.StringIO, began: float) -> tuple[_Progress, Tally, _Calls]:
    tally, client = Tally(), _Calls()
    return _Progress(out, cast(CityClient, client), tally, ZONE, began, START, END), tally, client


def test_a_terminal_sees_a_bar_with_an_eta_under_the_day_lines() -> None:
    out = _Terminal()
    bar, tally, client = progress(out, began=time.monotonic() - 60)  # a minute in
    bar.advanced(START)
    tally.add("reports", 800)
    client.calls = 6000
    bar.advanced(START + timedelta(days=1, hours=12))  # the first day is over: its line, then the bar
    text = out.getvalue()
    day_line, _, redrawn = text.rpartition("\n")
    assert "2026-01-05     800 reports     6000 calls" in day_line
    bar_text = redrawn.rsplit("\r\x1b[2K", 1)[1]
    assert bar_text.startswith("2026-01-06 12:00 [#########...............]  38%  reports 800  open 0")
    # 1.5 of 4 simulated days took a minute (and the moments this test took): 2.5 more take 100 s.
    assert re.search(r"  1m0\ds elapsed, ETA 1m4\ds$", bar_text), bar_text
    bar.advanced(END + timedelta(hours=1))
    assert "the open cases run to their end" in out.getvalue().rsplit("\r", 1)[1]
    bar.close()
    assert out.getvalue().endswith("\r\x1b[2K")  # the summary starts on a clean line


def test_elsewhere_only_the_day_lines() -> None:
    out = io.StringIO()
    bar, tally, _ = progress(out, began=time.monotonic())
    bar.advanced(START)
    tally.add("reports", 3)
    bar.advanced(START + timedelta(days=1))
    bar.day_done()
    bar.close()
    lines = out.getvalue().splitlines()
    assert [line.split()[:3] for line in lines] == [["2026-01-05", "3", "reports"], ["2026-01-06", "0", "reports"]]
    assert "\r" not in out.getvalue()
    assert "\x1b" not in out.getvalue()


def test_durations_read_at_a_glance() -> None:
    assert [_duration(s) for s in (0, 12.4, 245, 3720, 31 * 3600)] == ["0s", "12s", "4m05s", "1h02m", "31h00m"]
