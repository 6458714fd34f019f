"""Settings: one env prefix, a database per service in either mode."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.core.settings import Mode, Settings


def test_embedded_services_each_get_a_sqlite_file(tmp_path: Path) -> None:
    settings = Settings(mode=Mode.EMBEDDED, data_dir=tmp_path)
    assert settings.database_url("intake") == f"sqlite+aiosqlite:///{tmp_path}/intake.db"
    assert settings.event_log_path == tmp_path / "events.db"


def test_production_services_each_log_in_as_their_own_role() -> None:
    settings = Settings(mode=Mode.PRODUCTION, pg_database="citycase_test")
    assert (
        settings.database_url("dispatch")
        == "postgresql+asyncpg://citycase_dispatch:citycase_dispatch@127.0.0.1:5432/citycase_test?ssl=prefer"
    )
    local = Settings(mode=Mode.PRODUCTION, pg_ssl="disable")
    assert local.database_url("intake").endswith("/citycase?ssl=disable")


def test_environment_overrides_use_one_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CITYCASE_MODE", "production")
    monkeypatch.setenv("CITYCASE_KAFKA_PARTITIONS", "12")
    monkeypatch.setenv("CITYCASE_DATABASE_URLS__CLOSURE", "postgresql+asyncpg://u:p@db/closure")
    settings = Settings()
    assert settings.mode is Mode.PRODUCTION
    assert settings.kafka_partitions == 12
    assert settings.database_url("closure") == "postgresql+asyncpg://u:p@db/closure"
    assert settings.database_url("intake").startswith("postgresql+asyncpg://citycase_intake:")
