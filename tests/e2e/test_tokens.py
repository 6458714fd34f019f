"""Tokens over HTTP, in the embedded city on a simulated clock: an access token lives minutes, a
refresh token buys the next pair once (a second use ends the session), logging out ends it, a
removed or moved user is refused at the next request, and no refusal tells a forger why.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import pytest_asyncio
import yaml

from services.runtime.local import serve
from services.tools.simulator.client import Answer, CityClient
from shared.core.auth import Principal, Role, TokenIssuer
from shared.core.clock import SimulatedClock
from shared.core.settings import SERVICE_NAMES, Mode, Settings
from tests.e2e.harness import PASSWORDS, START, Harness, running_city

REFUSED = {"code": "http_401", "message": "a valid bearer token is required", "details": None}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def city(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Harness]:
    async with running_city("embedded", tmp_path_factory.mktemp("tokens")) as harness:
        yield harness


async def log_in(client: httpx.AsyncClient, user: str) -> dict[str, Any]:
    response = await client.post("/auth/token", data={"username": user, "password": PASSWORDS[user]})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def refresh(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post("/auth/refresh", data={"grant_type": "refresh_token", "refresh_token": token})


async def me(client: httpx.AsyncClient, access_token: str) -> httpx.Response:
    return await client.get("/auth/me", headers={"Authorization": f"Bearer {access_token}"})


@pytest.mark.asyncio(loop_scope="module")
async def test_a_refresh_token_buys_a_new_pair_once_and_a_second_use_ends_the_session(city: Harness) -> None:
    first = await log_in(city.client, "dept-street")
    assert (first["token_type"], first["expires_in"], first["refresh_expires_in"]) == ("bearer", 15 * 60, 12 * 3600)
    answer = await refresh(city.client, first["refresh_token"])
    assert answer.status_code == 200, answer.text
    second = answer.json()
    assert second["refresh_token"] != first["refresh_token"]
    inbox = await city.client.get("/handling/inbox", headers={"Authorization": f"Bearer {second['access_token']}"})
    assert inbox.status_code == 200
    # The first refresh token again: a copy in someone else's hands. Refused, and the session ends,
    # so the newer refresh token is refused too.
    reused = await refresh(city.client, first["refresh_token"])
    assert (reused.status_code, reused.headers["www-authenticate"]) == (401, "Bearer")
    assert (await refresh(city.client, second["refresh_token"])).status_code == 401
    # Not a refresh token, or not the grant: refused without a word on why.
    assert (await refresh(city.client, second["access_token"])).status_code == 401
    wrong_grant = await city.client.post(
        "/auth/refresh", data={"grant_type": "password", "refresh_token": second["refresh_token"]}
    )
    assert wrong_grant.status_code == 422


@pytest.mark.asyncio(loop_scope="module")
async def test_logging_out_ends_the_session(city: Harness) -> None:
    grant = await log_in(city.client, "operator")
    logout = await city.client.post("/auth/logout", data={"refresh_token": grant["refresh_token"]})
    assert logout.status_code == 204
    assert (await refresh(city.client, grant["refresh_token"])).status_code == 401
    # Logging out twice, or with something that is no token, answers the same.
    for token in (grant["refresh_token"], "not-a-token"):
        assert (await city.client.post("/auth/logout", data={"refresh_token": token})).status_code == 204


@pytest.mark.asyncio(loop_scope="module")
async def test_refusals_say_nothing_a_forger_could_use(city: Harness) -> None:
    lead = Principal("shiftlead", Role.SHIFT_LEAD, "值班长 孙静")
    expired = (await log_in(city.client, "shiftlead"))["access_token"]
    city.clock.advance(timedelta(minutes=16))
    grant = await log_in(city.client, "dept-street")
    foreign = TokenIssuer("another-installation-secret-of-40-chars", city.clock).issue_machine(lead)
    claims = {"iss": "citycase", "sub": "shiftlead", "role": "shift_lead", "kind": "machine", "exp": 4102444800}
    unsigned = jwt.encode(claims, None, algorithm="none")
    for headers in (
        {},
        {"Authorization": "Bearer not.a.token"},
        {"Authorization": f"Bearer {foreign}"},
        {"Authorization": f"Bearer {expired}"},
        {"Authorization": f"Bearer {unsigned}"},
        {"Authorization": f"Bearer {grant['refresh_token']}"},  # a refresh token is no bearer
        {"Authorization": f"Basic {grant['access_token']}"},
    ):
        for method, path in (("GET", "/intake/reports"), ("POST", "/dispatch/cases/x/dispatch"), ("GET", "/auth/me")):
            answer = await city.client.request(method, path, headers=headers)
            assert (answer.status_code, answer.json()) == (401, REFUSED), (headers, path)
            assert answer.headers["www-authenticate"] == "Bearer"
    # A department at a shift lead's route: refused without naming the roles that may.
    refused = await city.client.get(
        "/dispatch/extensions", headers={"Authorization": f"Bearer {grant['access_token']}"}
    )
    assert refused.status_code == 403
    assert refused.json() == {"code": "http_403", "message": "this account may not do this", "details": None}


@pytest.mark.asyncio(loop_scope="module")
async def test_an_access_token_lives_minutes_and_a_session_a_shift(city: Harness) -> None:
    grant = await log_in(city.client, "inspector1")
    city.clock.advance(timedelta(minutes=14))
    assert (await me(city.client, grant["access_token"])).status_code == 200
    city.clock.advance(timedelta(minutes=2))
    assert (await me(city.client, grant["access_token"])).status_code == 401
    renewed = await refresh(city.client, grant["refresh_token"])
    assert renewed.status_code == 200
    assert (await me(city.client, renewed.json()["access_token"])).json()["inspector_id"] == "insp-001"
    # The session ends 12 hours after the log-in, however often it was refreshed.
    city.clock.advance(timedelta(hours=12))
    assert (await refresh(city.client, renewed.json()["refresh_token"])).status_code == 401


def city_folder(tmp_path: Path, change: dict[str, dict[str, Any] | None]) -> Path:
    """A copy of the demo city whose ``users.yaml`` has the users in ``change`` edited (a dict of
    new fields) or removed (None)."""
    folder = tmp_path / f"city-{len(list(tmp_path.glob('city-*')))}"
    shutil.copytree(Settings().city_dir, folder)
    users = yaml.safe_load((folder / "users.yaml").read_text())
    kept = []
    for user in users["users"]:
        edit = change.get(user["username"], {})
        if edit is not None:
            kept.append({**user, **edit})
    users["users"] = kept
    (folder / "users.yaml").write_text(yaml.safe_dump(users, allow_unicode=True))
    return folder


@pytest.mark.asyncio(loop_scope="module")
async def test_a_removed_or_moved_user_loses_access_at_the_next_request(tmp_path: Path) -> None:
    data = tmp_path / "data"
    async with running_city("embedded", data) as before:
        grants = {user: await log_in(before.client, user) for user in ("dept-street", "inspector1", "dispatcher")}
    # The city's users.yaml is edited: the street office's user moves to the power company, the
    # inspector leaves; the city restarts on the same data folder (and so the same secret).
    moved_and_removed = city_folder(tmp_path, {"dept-street": {"department_id": "co-power"}, "inspector1": None})
    async with running_city("embedded", data, city_dir=moved_and_removed) as after:
        for user in ("dept-street", "inspector1"):
            assert (await me(after.client, grants[user]["access_token"])).status_code == 401, user
            assert (await refresh(after.client, grants[user]["refresh_token"])).status_code == 401, user
        # Everyone else's tokens still work.
        assert (await me(after.client, grants["dispatcher"]["access_token"])).json()["username"] == "dispatcher"
        assert (await refresh(after.client, grants["dispatcher"]["refresh_token"])).status_code == 200
        # The moved user logs in again, and speaks for the new department.
        moved = await log_in(after.client, "dept-street")
        assert moved["department_id"] == "co-power"


@pytest.mark.asyncio(loop_scope="module")
async def test_the_simulator_refreshes_its_tokens_and_logs_in_again_when_the_session_ends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = SimulatedClock(START)
    async with serve(Settings(mode=Mode.EMBEDDED, data_dir=tmp_path), clock) as url:
        client = CityClient(dict.fromkeys(SERVICE_NAMES, url), clock, PASSWORDS)
        sent: list[str] = []
        request = client._request

        async def noting(base: str, method: str, target: str, **kwargs: Any) -> Answer:
            sent.append(target)
            return await request(base, method, target, **kwargs)

        monkeypatch.setattr(client, "_request", noting)
        try:
            for step in (timedelta(0), timedelta(minutes=11), timedelta(hours=13)):
                clock.advance(step)
                assert await client.call("inspector1", "GET", "intake", "/verifications") == []
        finally:
            await client.aclose()
    assert [target for target in sent if target.startswith("/auth/")] == [
        "/auth/token",
        "/auth/refresh",  # before the access token ran out
        "/auth/token",  # the session had ended
    ]
