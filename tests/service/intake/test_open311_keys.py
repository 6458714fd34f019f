"""Open311's API keys from the command line: issued (the key printed once, only its digest kept),
listed without the keys, revoked; a revoked key is refused at the door."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from intake.open311 import keys
from services.runtime.registry import load_specs
from services.tools.cli import main
from shared.core.clock import SystemClock
from shared.core.settings import Settings
from shared.db.engine import create_engine
from shared.messaging.store import ServiceStore
from shared.web.limits import RateLimits, Rules


def admitted(settings: Settings, key: str) -> keys.ApiKey:
    """The key as the door admits it, on the folder's intake database."""

    async def admit() -> keys.ApiKey:
        (spec,) = load_specs(["intake"])
        engine = create_engine(settings.database_url("intake"))
        store = ServiceStore(
            "intake", engine, spec.metadata, clock=SystemClock(), case_events_topic=settings.topic_case_events
        )
        try:
            return await keys.admit(store, RateLimits(Rules.of(settings)), key)
        finally:
            await engine.dispose()

    return asyncio.run(admit())


def test_a_key_is_issued_listed_and_revoked_from_the_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CITYCASE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CITYCASE_MODE", "embedded")
    settings = Settings()
    # Issued before the city ever ran: the command brings intake's schema to its head first.
    assert main(["open311", "keys", "issue", "Street Fix", "--per-minute", "30"]) == 0
    issued = capsys.readouterr()
    key = issued.out.strip()
    assert len(key) == 43
    key_id = issued.err.split()[0]
    assert f"{key_id}  Street Fix  30/minute  issued " in issued.err
    assert "shown this once" in issued.err
    assert admitted(settings, key).application == "Street Fix"

    assert main(["open311", "keys", "list"]) == 0
    listed = capsys.readouterr().out
    assert listed.startswith("1 key(s)\n")
    assert f"{key_id}  Street Fix  30/minute" in listed
    assert listed.rstrip().endswith("active")
    assert key not in listed

    assert main(["open311", "keys", "revoke", key_id]) == 0
    assert " revoked " in capsys.readouterr().out
    with pytest.raises(keys.KeyRefused, match="api_key has been revoked"):
        admitted(settings, key)
    assert main(["open311", "keys", "list"]) == 0
    assert " revoked " in capsys.readouterr().out


def test_the_command_line_refuses_what_names_no_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CITYCASE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CITYCASE_MODE", "embedded")
    assert main(["open311", "keys", "revoke", "5f0e8b1c-0000-4000-8000-000000000000"]) == 1
    assert "no API key 5f0e8b1c-0000-4000-8000-000000000000" in capsys.readouterr().err
    assert main(["open311", "keys", "issue", "street/fix"]) == 1
    assert "an application's name: 1 to 56 letters" in capsys.readouterr().err
    assert main(["open311", "keys", "issue", "Street Fix", "--per-minute", "0"]) == 1
    assert "1 request a minute or more" in capsys.readouterr().err
    assert main(["open311", "keys", "list"]) == 0
    assert capsys.readouterr().out == "0 key(s)\n"
