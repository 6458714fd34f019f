"""The OpenAPI documents a newcomer reads first: each (the process's, each service's, each mount's)
says what its API is for, who calls it and how a caller proves who it is, and the answers of the
services' routes have schemas, not ``{}``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio

from services.runtime.app import create_app
from shared.core.clock import SimulatedClock
from shared.core.settings import SERVICE_NAMES, Mode, Settings
from tests.e2e.harness import START

SERVICES = [f"/{name}" for name in SERVICE_NAMES]
DOCUMENTS = ["", *SERVICES, "/open311"]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def documents(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[dict[str, dict[str, Any]]]:
    settings = Settings(mode=Mode.EMBEDDED, data_dir=tmp_path_factory.mktemp("openapi"))
    app = create_app(["all"], settings, SimulatedClock(START))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://citycase") as client:
        answers = {prefix: await client.get(f"{prefix}/openapi.json") for prefix in DOCUMENTS}
    assert {prefix: answer.status_code for prefix, answer in answers.items()} == dict.fromkeys(DOCUMENTS, 200)
    yield {prefix: answer.json() for prefix, answer in answers.items()}


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize("prefix", DOCUMENTS)
async def test_every_document_says_what_its_api_is_for(documents: dict[str, dict[str, Any]], prefix: str) -> None:
    description = " ".join(documents[prefix]["info"].get("description", "").split())
    assert len(description) > 200, description
    if prefix in SERVICES:
        assert "POST /auth/token" in description  # how a caller gets the token the routes take


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize("prefix", ["", *SERVICES])
async def test_every_json_answer_has_a_schema(documents: dict[str, dict[str, Any]], prefix: str) -> None:
    untyped = [
        f"{method.upper()} {path} {status}"
        for path, operations in documents[prefix]["paths"].items()
        for method, operation in operations.items()
        for status, answer in operation["responses"].items()
        if status.startswith("2") and _untyped(answer.get("content", {}).get("application/json"))
    ]
    assert untyped == []


@pytest.mark.asyncio(loop_scope="module")
async def test_assessment_answers_name_their_fields(documents: dict[str, dict[str, Any]]) -> None:
    document = documents["/assessment"]
    schemas = document["components"]["schemas"]

    def answer(path: str) -> dict[str, Any]:
        reference = document["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
        return schemas[reference["$ref"].rsplit("/", 1)[1]]  # type: ignore[no-any-return]

    assert set(answer("/indicators")["properties"]) == {"scope", "period", "counters", "indicators"}
    assert set(answer("/rankings")["properties"]) == {"scope_kind", "indicator", "period", "ranking"}
    assert set(answer("/stream")["properties"]) == {"consumer", "positions"}
    bulletin = answer("/bulletins/{month}")["properties"]
    assert bulletin["totals"] == {"$ref": "#/components/schemas/FiguresOut"}
    # The totals name every counter and indicator, from the one list of names.
    assert {"reports", "closed_on_time", "on_time_closure_rate", "satisfaction_rate"} <= set(
        schemas["FiguresOut"]["properties"]
    )


def _untyped(content: dict[str, Any] | None) -> bool:
    """A JSON answer documented as anything: no schema, ``{}``, or an object of any fields."""
    if content is None:
        return False  # not a JSON answer (a photo, a workbook, NDJSON, an event stream)
    schema = content.get("schema") or {}
    return not schema or (
        schema.get("type") == "object"
        and "properties" not in schema
        and "$ref" not in schema
        and schema.get("additionalProperties") in (None, True)
    )
