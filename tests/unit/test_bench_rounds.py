"""The benchmark's A/B rounds (``bench.__main__.ab_rounds``): the loads alternate, and the figures
are the medians of the rounds' own ratios, so that a drift moving both loads of a round alike
cancels out."""

from __future__ import annotations

from typing import Any

from bench.__main__ import ab_rounds


async def test_the_ratio_is_the_median_of_each_round_s_ratio_and_the_order_alternates() -> None:
    calls: list[tuple[str, int]] = []
    # The machine slows down by half from round to round; intake stays at a fifth of the floor.
    speed = {0: 1.0, 1: 0.5, 2: 0.25}

    def load(name: str, rate: float, cpu_ms: float) -> Any:
        async def run(seed: int, seconds: float) -> dict[str, Any]:
            calls.append((name, seed))
            factor = speed[seed - 2]  # bench.__main__.REPORTS_SEED is the first round's seed
            return {"ok_per_s": rate * factor, "cpu_ms_per_report": cpu_ms / factor}

        return run

    figures = await ab_rounds(
        "intake", load("intake", 200.0, 5.0), "floor", load("floor", 1000.0, 1.0), rounds=3, seconds=1
    )

    assert [name for name, _seed in calls] == ["floor", "intake", "intake", "floor", "floor", "intake"]
    assert [seed for _name, seed in calls] == [2, 2, 3, 3, 4, 4]  # both loads of a round get its reports
    assert figures["throughput_ratio"] == 0.2
    assert figures["cpu_ratio"] == 0.2
    assert figures["intake_reports_per_s"] == 100.0  # the median round's
    assert figures["floor_cpu_ms_per_report"] == 2.0
    assert [r["throughput_ratio"] for r in figures["detail"]] == [0.2, 0.2, 0.2]


async def test_without_a_second_load_the_rounds_measure_the_first_alone() -> None:
    async def intake(seed: int, seconds: float) -> dict[str, Any]:
        return {"ok_per_s": 100.0 + seed, "cpu_ms_per_report": 5.0}

    figures = await ab_rounds("intake", intake, None, intake, rounds=2, seconds=1)

    assert figures["rounds"] == 2
    assert figures["intake_reports_per_s"] == 102.5
    assert "throughput_ratio" not in figures
    assert all("floor" not in r for r in figures["detail"])
