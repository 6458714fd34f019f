"""Log-ins a production city can trust: hashed passwords only (the demo city's plain ones are
public), and a signing secret no other installation shares."""

from __future__ import annotations

import io
import shutil
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from pwdlib import PasswordHash

from services.runtime.runtime import SharedParts
from services.tools.cli import main
from shared.core.clock import SimulatedClock
from shared.core.settings import DEV_JWT_SECRET, Mode, Settings

CLOCK = SimulatedClock(datetime(2026, 11, 16, 1, 0, tzinfo=UTC))
SECRET = "a-production-secret-of-forty-characters-0"
DEMO = Settings().city_dir


def test_production_refuses_the_demo_citys_plain_text_passwords() -> None:
    production = Settings(mode=Mode.PRODUCTION, jwt_secret=SECRET)
    with pytest.raises(RuntimeError, match="plain-text passwords"):
        SharedParts.load(production, CLOCK)
    # A demonstration says so explicitly.
    demo = production.model_copy(update={"allow_plain_passwords": True})
    assert SharedParts.load(demo, CLOCK).directory.authenticate("shiftlead", "demo-shift_lead") is not None


def test_a_city_with_hashed_passwords_runs_in_production(tmp_path: Path) -> None:
    city = tmp_path / "city"
    shutil.copytree(DEMO, city)
    users = yaml.safe_load((city / "users.yaml").read_text())
    hasher = PasswordHash.recommended()
    lead = next(user for user in users["users"] if user["username"] == "shiftlead")
    users["users"] = [lead]
    lead["password_hash"] = hasher.hash("a long and private passphrase")
    del lead["password"]
    (city / "users.yaml").write_text(yaml.safe_dump(users, allow_unicode=True))
    (city / "integrations.yaml").unlink()  # its hotline's account is gone, and its secrets are public
    shared = SharedParts.load(Settings(mode=Mode.PRODUCTION, jwt_secret=SECRET, city_dir=city), CLOCK)
    assert shared.directory.authenticate("shiftlead", "a long and private passphrase") is not None
    assert shared.directory.authenticate("shiftlead", "demo-shift_lead") is None


def test_embedded_mode_signs_with_a_secret_of_its_own_data_folder(tmp_path: Path) -> None:
    first = Settings(mode=Mode.EMBEDDED, data_dir=tmp_path / "a")
    secret = first.token_secret()
    assert secret != DEV_JWT_SECRET
    assert len(secret) >= 48
    assert first.token_secret() == secret  # kept, so tokens outlive a restart
    assert stat.S_IMODE((tmp_path / "a" / "token-secret").stat().st_mode) == 0o600
    assert Settings(mode=Mode.EMBEDDED, data_dir=tmp_path / "b").token_secret() != secret
    assert Settings(mode=Mode.EMBEDDED, data_dir=tmp_path, jwt_secret=SECRET).token_secret() == SECRET
    assert Settings(mode=Mode.PRODUCTION, jwt_secret=SECRET).token_secret() == SECRET


def test_the_cli_hashes_a_password_read_from_standard_input(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("a long and private passphrase\n"))
    assert main(["accounts", "hash-password"]) == 0
    hashed = capsys.readouterr().out.strip()
    assert PasswordHash.recommended().verify("a long and private passphrase", hashed)
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert main(["accounts", "hash-password"]) == 2
