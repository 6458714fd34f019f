"""The profile summaries of bench/README.md: who used the CPU, from py-spy's collapsed stacks."""

from __future__ import annotations

from bench.stacks import samples, summarise

STACKS = [
    "main (services/tools/cli.py:140);_save_filing (intake/handlers.py:361);execute (sqlalchemy/orm/session.py:9) 6",
    "greenlet_spawn (sqlalchemy/util/concurrency.py:3);fetch (asyncpg/prepared_stmt.py:1) 3",
    " 1",
]


def test_samples_are_counted_by_the_package_of_their_innermost_frame_and_by_the_project_frame_that_asked() -> None:
    total, by_package, by_owner = summarise(samples(STACKS))
    assert total == 10
    assert by_package == {"sqlalchemy": 6, "asyncpg": 3, "(native)": 1}
    assert by_owner == {"_save_filing (intake/handlers.py)": 6, "(none)": 4}
