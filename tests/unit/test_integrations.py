"""The city's integrations.yaml: what it gives the services, and the errors a mistake in it makes."""

from __future__ import annotations

import logging
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import yaml

from services.runtime.registry import load_specs
from services.runtime.runtime import Runtime, SharedParts
from shared.city.loader import load_city
from shared.city.model import City
from shared.core.clock import SimulatedClock
from shared.core.settings import Mode, Settings
from shared.integration import endpoints
from shared.integration.endpoints import Integrations, IntegrationsError, RetryPolicy, load_integrations
from shared.integration.signing import Algorithm, Scheme, UnknownHotline

WEBHOOK_SECRET = "whsec_" + "A" * 44  # 33 bytes
OTHER_SECRET = "whsec_" + "B" * 44
# An Argon2 hash of no password in particular: production refuses plain-text ones before integrations.
HASH = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"


@pytest.fixture(scope="module")
def city() -> City:
    return load_city(Settings().city_dir)


def hotline(**changes: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "id": "12345",
        "name": "12345热线",
        "inbound": {"scheme": "standard-webhooks", "secrets": [{"id": "a", "value": WEBHOOK_SECRET}]},
    }
    return {**entry, **changes}


def load(tmp_path: Path, city: City, content: Any, environ: dict[str, str] | None = None) -> Integrations:
    (tmp_path / "integrations.yaml").write_text(yaml.safe_dump(content, allow_unicode=True), encoding="utf-8")
    return load_integrations(tmp_path, city, environ or {})


def problems(tmp_path: Path, city: City, content: Any, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(IntegrationsError) as wrong:
        load(tmp_path, city, content, environ)
    assert str(tmp_path / "integrations.yaml") in str(wrong.value)
    return list(wrong.value.problems)


def test_no_file_no_integrations(tmp_path: Path, city: City) -> None:
    integrations = load_integrations(tmp_path, city, {})
    assert integrations.hotlines == () == integrations.endpoints
    with pytest.raises(UnknownHotline):
        integrations.hotline("12345")


def test_the_demo_city_has_a_12345_hotline_that_sends_nothing_until_given_a_url(city: City) -> None:
    integrations = load_integrations(Settings().city_dir, city, {})
    (only,) = integrations.hotlines
    assert (only.id, only.account, only.reopen_on_unsatisfied, only.outbound) == ("12345", "hotline", True, None)
    assert integrations.hotline_of_account("hotline") is only
    assert only.verifier.scheme is Scheme.STANDARD_WEBHOOKS
    assert integrations.endpoints == ()


def test_a_full_file(tmp_path: Path, city: City) -> None:
    content = {
        "retry": {"max_attempts": 5, "first_delay_seconds": 2},
        "hotlines": [
            hotline(
                account="hotline",
                reopen_on_unsatisfied=True,
                inbound={
                    "scheme": "app-key",
                    "algorithm": "hmac-sm3",
                    "app_key": "ak-12345",
                    "secrets": [{"id": "old", "value": "0123456789abcdef"}, {"id": "new", "env": "HOTLINE_NEXT"}],
                },
                outbound={
                    "url": "http://127.0.0.1:9999/citycase",
                    "secrets": [{"id": "out", "value": WEBHOOK_SECRET}],
                    "retry": {"max_attempts": 8},
                },
            )
        ],
        "departments": [
            {
                "department_id": "co-water",
                "outbound": {"url": "https://water.example.cn/hook", "secrets": [{"id": "w", "value": OTHER_SECRET}]},
            }
        ],
    }
    integrations = load(tmp_path, city, content, {"HOTLINE_NEXT": "fedcba9876543210fedcba"})
    the_hotline = integrations.hotline("12345")
    verifier = the_hotline.verifier
    assert (verifier.scheme, verifier.algorithm, verifier.app_key) == (Scheme.APP_KEY, Algorithm.HMAC_SM3, "ak-12345")
    assert [(s.id, s.value) for s in verifier.secrets] == [
        ("old", "0123456789abcdef"),
        ("new", "fedcba9876543210fedcba"),
    ]
    outbound = integrations.endpoint("hotline:12345")
    assert outbound is the_hotline.outbound
    assert outbound.name == "hotline:12345"
    assert outbound.url == "http://127.0.0.1:9999/citycase"
    assert outbound.signer.scheme is Scheme.STANDARD_WEBHOOKS
    # The endpoint's own key wins, the file's defaults fill the rest, the code's defaults the others.
    assert outbound.retry == RetryPolicy(max_attempts=8, first_delay_seconds=2)
    water = integrations.department("co-water")
    assert water is not None
    assert (water.name, water.retry.max_attempts) == ("department:co-water", 5)
    assert integrations.department("co-gas") is None
    assert [e.name for e in integrations.endpoints] == ["hotline:12345", "department:co-water"]


def test_every_problem_is_listed_with_its_field_and_no_secret(tmp_path: Path, city: City) -> None:
    content = {
        "hotlines": [
            hotline(account="nobody"),
            hotline(
                name="x",
                inbound={"secrets": [{"id": "a", "env": "SOME_VARIABLE"}, {"id": "a", "value": "whsec_c2hvcnQ="}]},
            ),
        ],
        "departments": [
            {
                "department_id": "dept-nowhere",
                "outbound": {"url": "https://x.example", "secrets": [{"id": "s", "value": WEBHOOK_SECRET}]},
            }
        ],
    }
    found = problems(tmp_path, city, content)
    assert found == [
        "hotlines[0].account: 'nobody' is not an account of users.yaml",
        "hotlines[1].inbound.secrets: two with id 'a'",
        "hotlines[1].inbound.secrets[1]: a standard-webhooks secret holds 24 to 64 random bytes, this one 5",
        "departments[0].department_id: 'dept-nowhere' is not a department of departments.csv",
        "hotlines: two with id '12345'",
    ]
    assert not any("c2hvcnQ" in problem for problem in found)


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"id": "../admin"}, "hotlines[0].id: String should match pattern"),
        ({"id": "12.345"}, "hotlines[0].id: String should match pattern"),
        ({"colour": "red"}, "hotlines[0].colour: Extra inputs are not permitted"),
        ({"inbound": {"secrets": []}}, "hotlines[0].inbound.secrets: List should have at least 1 item"),
        (
            {"inbound": {"secrets": [{"id": str(n), "value": WEBHOOK_SECRET} for n in range(3)]}},
            "hotlines[0].inbound.secrets: List should have at most 2 items",
        ),
        (
            {"inbound": {"secrets": [{"id": "a", "value": WEBHOOK_SECRET, "env": "X"}]}},
            "hotlines[0].inbound.secrets[0]: Value error, a secret has either env",
        ),
        ({"inbound": {"secrets": [{"id": "a"}]}}, "hotlines[0].inbound.secrets[0]: Value error, a secret has either"),
        (
            {"inbound": {"scheme": "app-key", "secrets": [{"id": "a", "value": "0123456789abcdef"}]}},
            "hotlines[0].inbound: Value error, the app-key scheme needs app_key",
        ),
        (
            {"inbound": {"algorithm": "hmac-sm3", "secrets": [{"id": "a", "value": WEBHOOK_SECRET}]}},
            "hotlines[0].inbound: Value error, algorithm and app_key belong to the app-key scheme",
        ),
        (
            {"inbound": {"scheme": "app-key", "app_key": "k", "secrets": [{"id": "a", "value": "short"}]}},
            "hotlines[0].inbound.secrets[0]: an app-key secret has at least 16 characters",
        ),
        (
            {"inbound": {"secrets": [{"id": "a", "value": "plain"}]}},
            "hotlines[0].inbound.secrets[0]: a standard-webhooks secret starts with 'whsec_'",
        ),
        ({"account": "inspector1"}, "hotlines[0].account: 'inspector1' has role inspector, not hotline"),
        ({"id": "dispatcher"}, "hotlines[0].id: 'dispatcher' is the name of an account of users.yaml too"),
        ({"id": "insp-001"}, "hotlines[0].id: 'insp-001' is the id of an inspector too"),
        (
            {"outbound": {"url": "http://127.0.0.1:9"}},
            "hotlines[0].outbound: Value error, an outbound url needs a secret",
        ),
        ({"outbound": {"url": "not a url", "secrets": []}}, "hotlines[0].outbound.url: Input should be a valid URL"),
        (
            {
                "outbound": {
                    "url": "http://h.example",
                    "secrets": [{"id": "a", "value": WEBHOOK_SECRET}],
                    "retry": {"max_delay_seconds": 1},
                }
            },
            "hotlines[0].outbound.retry: Value error, max_delay_seconds is less than first_delay_seconds",
        ),
        (
            {
                "outbound": {
                    "url": "http://h.example",
                    "secrets": [{"id": "a", "value": WEBHOOK_SECRET}],
                    "retry": {"max_attempts": 0},
                }
            },
            "hotlines[0].outbound.retry.max_attempts: Input should be greater than or equal to 1",
        ),
    ],
)
def test_a_mistake_names_its_field(tmp_path: Path, city: City, changes: dict[str, Any], problem: str) -> None:
    found = problems(tmp_path, city, {"hotlines": [hotline(**changes)]})
    assert len(found) == 1
    assert found[0].startswith(problem)


def test_file_level_mistakes(tmp_path: Path, city: City) -> None:
    assert problems(tmp_path, city, ["a", "list"]) == ["the file holds a mapping (retry, hotlines, departments)"]
    assert problems(tmp_path, city, {"hotline": []}) == ["hotline: Extra inputs are not permitted"]
    assert problems(tmp_path, city, {"retry": {"timeout_seconds": -1}}) == [
        "retry.timeout_seconds: Input should be greater than 0"
    ]
    (tmp_path / "integrations.yaml").write_text("hotlines: [", encoding="utf-8")
    with pytest.raises(IntegrationsError, match="not readable YAML"):
        load_integrations(tmp_path, city, {})


def test_an_empty_file_is_no_integrations(tmp_path: Path, city: City) -> None:
    (tmp_path / "integrations.yaml").write_text("# nothing yet\n", encoding="utf-8")
    assert load_integrations(tmp_path, city, {}).hotlines == ()


def test_a_secret_from_the_environment(tmp_path: Path, city: City) -> None:
    content = {"hotlines": [hotline(inbound={"secrets": [{"id": "env", "env": "CITYCASE_HOTLINE_SECRET"}]})]}
    loaded = load(tmp_path, city, content, {"CITYCASE_HOTLINE_SECRET": OTHER_SECRET})
    assert loaded.hotline("12345").verifier.secrets[0].value == OTHER_SECRET


def test_secrets_in_the_environment_are_read_where_something_signs_or_verifies(tmp_path: Path, city: City) -> None:
    content = {
        "hotlines": [
            hotline(
                reopen_on_unsatisfied=True,
                inbound={"secrets": [{"id": "a", "env": "CITYCASE_IN"}]},
                outbound={"url": "https://hotline.example", "secrets": [{"id": "o", "env": "CITYCASE_OUT"}]},
            )
        ]
    }
    environ: dict[str, str] = {}
    # Loaded without them: what closure reads needs no secret.
    loaded = load_integrations_with(tmp_path, city, content, environ)
    assert loaded.hotline("12345").reopen_on_unsatisfied is True
    assert [endpoint.name for endpoint in loaded.endpoints] == ["hotline:12345"]
    with pytest.raises(IntegrationsError) as missing:
        loaded.resolve_secrets()
    assert missing.value.problems == (
        "hotlines[0].inbound.secrets[0].env: the environment variable CITYCASE_IN is not set",
        "hotlines[0].outbound.secrets[0].env: the environment variable CITYCASE_OUT is not set",
    )
    with pytest.raises(IntegrationsError, match="CITYCASE_OUT is not set"):
        _ = loaded.endpoint("hotline:12345").signer
    # Read when needed, and checked then for their scheme (never shown).
    environ.update(CITYCASE_IN=OTHER_SECRET, CITYCASE_OUT="whsec_c2hvcnQ=")
    with pytest.raises(IntegrationsError) as malformed:
        loaded.resolve_secrets()
    assert malformed.value.problems == (
        "hotlines[0].outbound.secrets[0]: a standard-webhooks secret holds 24 to 64 random bytes, this one 5",
    )
    environ["CITYCASE_OUT"] = WEBHOOK_SECRET
    loaded.resolve_secrets()
    assert loaded.hotline("12345").verifier.secrets[0].value == OTHER_SECRET
    assert loaded.endpoint("hotline:12345").signer.secrets[0].value == WEBHOOK_SECRET


def load_integrations_with(tmp_path: Path, city: City, content: Any, environ: dict[str, str]) -> Integrations:
    """Like ``load``, reading secrets from ``environ`` itself (the test changes it afterwards)."""
    (tmp_path / "integrations.yaml").write_text(yaml.safe_dump(content, allow_unicode=True), encoding="utf-8")
    return load_integrations(tmp_path, city, environ)


def test_only_intake_starts_with_the_secrets_the_other_services_start_without(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    city_dir = tmp_path / "city"
    shutil.copytree(Settings().city_dir, city_dir)
    content = {
        "hotlines": [
            hotline(
                account="hotline", reopen_on_unsatisfied=True, inbound={"secrets": [{"id": "a", "env": "CITYCASE_T7"}]}
            )
        ]
    }
    (city_dir / "integrations.yaml").write_text(yaml.safe_dump(content, allow_unicode=True), encoding="utf-8")
    monkeypatch.delenv("CITYCASE_T7", raising=False)
    settings = Settings(city_dir=city_dir, data_dir=tmp_path)
    shared = SharedParts.load(settings, SimulatedClock(datetime(2026, 11, 16, 1, 0, tzinfo=UTC)))
    others = Runtime(load_specs(["dispatch", "handling", "closure", "assessment"]), shared)
    assert [service.name for service in others.services] == ["dispatch", "handling", "closure", "assessment"]
    with pytest.raises(IntegrationsError, match="the environment variable CITYCASE_T7 is not set"):
        Runtime(load_specs(["intake"]), shared)
    monkeypatch.setenv("CITYCASE_T7", OTHER_SECRET)
    (intake,) = Runtime(load_specs(["intake"]), shared).services
    assert intake.name == "intake"


def test_a_retry_policy_needs_an_age_or_a_count_of_attempts(tmp_path: Path, city: City) -> None:
    assert problems(tmp_path, city, {"retry": {"max_age_hours": None}}) == [
        "retry: Value error, a retry policy needs max_age_hours or max_attempts: without either, a message the"
        " endpoint always refuses is tried forever and its case's later messages wait forever behind it"
    ]
    outbound = {"url": "https://h.example", "secrets": [{"id": "o", "value": WEBHOOK_SECRET}]}
    unbounded = hotline(outbound={**outbound, "retry": {"max_age_hours": None}})
    assert problems(tmp_path, city, {"hotlines": [unbounded]})[0].startswith(
        "hotlines[0].outbound.retry: Value error, a retry policy needs max_age_hours or max_attempts"
    )
    # Counted only, or an endpoint back to unlimited attempts where the file's default counts them.
    counted = load(
        tmp_path, city, {"retry": {"max_age_hours": None, "max_attempts": 30}, "hotlines": [hotline(outbound=outbound)]}
    )
    assert (
        counted.endpoint("hotline:12345").retry.max_attempts,
        counted.endpoint("hotline:12345").retry.max_age_hours,
    ) == (30, None)
    unlimited = hotline(outbound={**outbound, "retry": {"max_attempts": None}})
    loaded = load(tmp_path, city, {"retry": {"max_attempts": 30}, "hotlines": [unlimited]})
    assert loaded.endpoint("hotline:12345").retry == RetryPolicy()


def test_attempts_that_run_out_long_before_the_age_are_warned_of(
    tmp_path: Path, city: City, caplog: pytest.LogCaptureFixture
) -> None:
    outbound = {"url": "https://h.example", "secrets": [{"id": "o", "value": WEBHOOK_SECRET}]}
    content = {
        "retry": {"max_attempts": 12},
        "hotlines": [hotline(outbound=outbound)],
        "departments": [{"department_id": "co-water", "outbound": {**outbound, "retry": {"max_attempts": 200}}}],
    }
    with caplog.at_level(logging.WARNING, logger="shared.integration.endpoints"):
        loaded = load(tmp_path, city, content)
    assert loaded.endpoint("hotline:12345").retry.max_attempts == 12
    (warning,) = [record.getMessage() for record in caplog.records]
    assert warning == (
        f"{tmp_path / 'integrations.yaml'}: hotlines[0].outbound.retry: max_attempts 12 gives up after 1h44m of trying"
        " at most, long before max_age_hours 48: an endpoint down longer than that has its messages dead-lettered"
        " (leave max_attempts out to retry for the whole age)"
    )


def test_hmac_sm3_is_refused_at_start_where_openssl_lacks_it(tmp_path: Path, city: City) -> None:
    inbound = {
        "scheme": "app-key",
        "algorithm": "hmac-sm3",
        "app_key": "k",
        "secrets": [{"id": "a", "value": "x" * 16}],
    }
    with mock.patch.object(endpoints, "sm3_available", return_value=False):
        found = problems(tmp_path, city, {"hotlines": [hotline(inbound=inbound)]})
    assert found == [
        "hotlines[0].inbound.algorithm: hmac-sm3, but this Python's OpenSSL has no SM3 (OpenSSL 1.1.1 or later"
        " built with it is needed)"
    ]


def test_two_hotlines_may_not_share_an_account(tmp_path: Path, city: City) -> None:
    content = {"hotlines": [hotline(account="hotline"), hotline(id="12319", account="hotline")]}
    assert problems(tmp_path, city, content) == ["hotlines: two with account 'hotline'"]


def test_production_refuses_secrets_written_in_the_file(tmp_path: Path) -> None:
    city_dir = tmp_path / "city"
    shutil.copytree(Settings().city_dir, city_dir)
    users = yaml.safe_load((city_dir / "users.yaml").read_text())
    for user in users["users"]:
        user["password_hash"] = HASH
        del user["password"]
    (city_dir / "users.yaml").write_text(yaml.safe_dump(users, allow_unicode=True))
    production = Settings(mode=Mode.PRODUCTION, jwt_secret="s" * 40, city_dir=city_dir)
    clock = SimulatedClock(datetime(2026, 11, 16, 1, 0, tzinfo=UTC))
    with pytest.raises(RuntimeError, match=r"writes secrets in the file \(hotlines\[0\].inbound.secrets\[0\], "):
        SharedParts.load(production, clock)
    demonstration = production.model_copy(update={"allow_plain_passwords": True})
    assert SharedParts.load(demonstration, clock).integrations.hotline("12345").account == "hotline"
