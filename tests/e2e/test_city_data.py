"""The city's reference data over HTTP for the console's map and pickers: the geometry of every
level as GeoJSON, the tree of districts, streets and communities, the categories; for any caller
who has logged in, revalidated with an ETag and compressed when the caller accepts it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio
from shapely.geometry import shape

from services.runtime.app import create_app
from shared.city.model import City
from shared.core.clock import SimulatedClock
from shared.core.settings import Mode, Settings
from tests.e2e.harness import PASSWORDS, START

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def process(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[httpx.AsyncClient, City]]:
    """A process serving dispatch (the city's data is every process's, whatever it serves)."""
    settings = Settings(mode=Mode.EMBEDDED, data_dir=tmp_path_factory.mktemp("city"))
    app = create_app(["dispatch"], settings, SimulatedClock(START))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://citycase") as client:
        yield client, app.state.runtime.shared.city


async def bearer(client: httpx.AsyncClient, user: str) -> dict[str, str]:
    answer = await client.post("/auth/token", data={"username": user, "password": PASSWORDS[user]})
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


@pytest.mark.parametrize("path", ["/city/geometry/cell", "/city/geometry/district", "/city/scopes", "/city/categories"])
async def test_any_caller_who_logged_in_reads_the_city(process: tuple[httpx.AsyncClient, City], path: str) -> None:
    client, _ = process
    stranger = await client.get(path)
    assert stranger.status_code == 401
    for user in ("inspector1", "dept-street", "hotline", "operator"):
        assert (await client.get(path, headers=await bearer(client, user))).status_code == 200, user


async def test_the_cells_as_geojson(process: tuple[httpx.AsyncClient, City]) -> None:
    client, city = process
    answer = await client.get("/city/geometry/cell", headers=await bearer(client, "operator"))
    assert answer.headers["content-type"] == "application/geo+json"
    document = answer.json()
    assert document["type"] == "FeatureCollection"
    assert len(document["features"]) == 4014
    assert {feature["id"] for feature in document["features"]} == {cell.id for cell in city.cells}
    first = document["features"][0]
    assert first["properties"]["community_id"] == city.cell(first["id"]).community_id


async def test_a_district_covers_its_cells(process: tuple[httpx.AsyncClient, City]) -> None:
    client, city = process
    headers = await bearer(client, "operator")
    districts = (await client.get("/city/geometry/district", headers=headers)).json()["features"]
    assert [f["properties"]["name"] for f in districts] == [d.name for d in city.districts]
    drawn = {f["id"]: shape(f["geometry"]).buffer(2e-6) for f in districts}
    for cell in city.cells:
        assert drawn[cell.district_id].covers(city.grid.polygon(cell.id)), cell.id


@pytest.mark.parametrize("level", ["cell", "community", "street", "district"])
async def test_a_browser_revalidates_with_the_etag_and_gets_it_compressed(
    process: tuple[httpx.AsyncClient, City], level: str
) -> None:
    client, _ = process
    headers = await bearer(client, "dept-street")
    path = f"/city/geometry/{level}"
    async with client.stream("GET", path, headers={**headers, "Accept-Encoding": "gzip"}) as answer:
        assert answer.headers["content-encoding"] == "gzip"
        compressed = b"".join([chunk async for chunk in answer.aiter_raw()])
    plain = await client.get(path, headers={**headers, "Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    assert len(compressed) < len(plain.content) / 4
    etag = plain.headers["etag"]
    assert answer.headers["etag"] == etag
    assert plain.headers["cache-control"] == "private, no-cache"
    assert plain.headers["vary"] == "Accept-Encoding"
    again = await client.get(path, headers={**headers, "If-None-Match": etag})
    assert (again.status_code, again.content, again.headers["etag"]) == (304, b"", etag)
    stale = await client.get(path, headers={**headers, "If-None-Match": 'W/"an-older-version"'})
    assert stale.status_code == 200
    # The revalidation needs a log-in like the document.
    assert (await client.get(path, headers={"If-None-Match": etag})).status_code == 401


async def test_an_unknown_level_is_invalid(process: tuple[httpx.AsyncClient, City]) -> None:
    client, _ = process
    answer = await client.get("/city/geometry/province", headers=await bearer(client, "operator"))
    assert (answer.status_code, answer.json()["code"]) == (422, "invalid_request")


async def test_the_scope_tree(process: tuple[httpx.AsyncClient, City]) -> None:
    client, city = process
    headers = await bearer(client, "inspector1")
    tree = (await client.get("/city/scopes", headers=headers)).json()
    assert tree["city"] == {"name": city.name, "name_en": city.name_en}
    assert [d["id"] for d in tree["districts"]] == [d.id for d in city.districts]
    streets = [(s["id"], d["id"]) for d in tree["districts"] for s in d["streets"]]
    assert streets == [(s.id, s.district_id) for s in city.streets]
    communities = [
        (c["id"], c["name"], street["id"])
        for district in tree["districts"]
        for street in district["streets"]
        for c in street["communities"]
    ]
    assert communities == [(c.id, c.name, c.street_id) for c in city.communities]
    again = await client.get("/city/scopes", headers={**headers, "If-None-Match": "*"})
    assert again.status_code == 304


async def test_the_categories(process: tuple[httpx.AsyncClient, City]) -> None:
    client, city = process
    categories = (await client.get("/city/categories", headers=await bearer(client, "dept-street"))).json()
    assert [c["code"] for c in categories] == [c.code for c in city.categories]
    manhole = next(c for c in categories if c["code"] == "01-01-04")
    known = city.category("01-01-04")
    assert manhole == {
        "code": known.code,
        "name": known.name,
        "name_en": known.name_en,
        "family": "component",
        "major_code": "01-01",
        "major_name": known.major_name,
        "major_name_en": known.major_name_en,
        "urgent": True,
        "time_basis": "calendar",
        "limits_minutes": {
            "filing": known.filing,
            "dispatch": known.dispatch,
            "handling": known.handling,
            "check": known.check,
        },
    }
