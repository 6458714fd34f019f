"""A year's official days loaded while the city runs reach every process: the command line (or
any process) writes the year's file to the folder they share, and each process's watcher adopts
it into its calendar, which sets its services' recomputes going.
"""

from __future__ import annotations

import asyncio
from datetime import date
from pathlib import Path

import pytest

from services.runtime.calendar import city_calendar, follow_official_years
from services.tools.cli import main
from shared.city.calendar import OfficialYear, OfficialYears, YearSource
from shared.city.model import City
from shared.core.settings import Settings

NOTICE = OfficialYear(2027, frozenset({date(2027, 1, 1), date(2027, 1, 4)}), frozenset({date(2027, 1, 9)}))


def notice_file(tmp_path: Path, text: str = "holidays: [2027-01-01, 2027-01-04]\nworkdays: [2027-01-09]\n") -> Path:
    path = tmp_path / "notice-2027.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_command_line_saves_a_year_where_every_process_reads_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CITYCASE_CALENDAR_DIR", str(tmp_path / "calendar"))
    assert main(["calendar", "load", "2027", str(notice_file(tmp_path))]) == 0
    assert "2027: 2 holidays, 1 make-up working days" in capsys.readouterr().out
    assert OfficialYears(tmp_path / "calendar").read() == [NOTICE]


def test_the_command_line_refuses_a_file_that_is_not_a_years_days(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CITYCASE_CALENDAR_DIR", str(tmp_path / "calendar"))
    wrong = notice_file(tmp_path, "holidays: []\nworkdays: [2027-01-04]\n")
    assert main(["calendar", "load", "2027", str(wrong)]) == 1
    assert "2027-01-04 is not a Saturday or Sunday" in capsys.readouterr().err
    assert OfficialYears(tmp_path / "calendar").read() == []


def test_a_process_starts_with_the_years_loaded_so_far(tmp_path: Path, city: City) -> None:
    settings = Settings(calendar_dir=tmp_path / "calendar")
    assert city_calendar(settings, city).source_of(2027) is YearSource.PROVISIONAL
    OfficialYears(settings.official_years_path).save(NOTICE)
    assert city_calendar(settings, city).official_years == (NOTICE,)


async def test_a_running_process_adopts_a_year_another_one_saved(tmp_path: Path, city: City) -> None:
    settings = Settings(calendar_dir=tmp_path / "calendar")
    calendar = city_calendar(settings, city)
    years = OfficialYears(settings.official_years_path)
    watcher = asyncio.create_task(follow_official_years(calendar, years, interval_seconds=0.01))
    try:
        years.save(NOTICE)
        async with asyncio.timeout(10):
            while calendar.source_of(2027) is not YearSource.OFFICIAL:
                await asyncio.sleep(0.01)
    finally:
        watcher.cancel()
        with pytest.raises(asyncio.CancelledError):
            await watcher
    assert calendar.official_years == (NOTICE,)
    assert calendar.generation == 1
