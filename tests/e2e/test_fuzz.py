"""A property-based fuzz of every API the city serves (schemathesis): each service's OpenAPI
document and the process's own (log-in, operations, calendar), called in-process on the embedded
city with valid and invalid input, as a shift lead, an inspector, a department, the hotline and
nobody, aimed now and then at cases in every stage and at the city's real categories,
departments and places. No answer may be a server error, and every answer must be one its
operation documents: its status, media type, headers and body.

Bounded: a fixed number of examples per operation, derandomized, so every run sends the same
requests and takes about the same time. The live feed is fuzzed too: it never ends on its own,
so its first event is taken as its answer.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.python.asgi import ASGIApp, ASGIClient, shutdown_lifespans
from starlette.routing import Mount

from services.runtime.app import create_app
from shared.city.model import City
from shared.core.clock import SimulatedClock
from tests.e2e.harness import PASSWORDS, PNG, START, _spots, city_settings

# Each service's (and intake's Open311), then the process's own (log-in, operations, calendar)
# last: logging out would take its callers' tokens from the rest.
APIS = ["/intake", "/dispatch", "/handling", "/closure", "/assessment", "/open311", ""]
CALLERS = ["shiftlead", "inspector1", "dept-street", "hotline"]
EXAMPLES_PER_OPERATION = 25
STREET_CATEGORY = "02-05-01"  # routed to dept-street

Operation = schemathesis.APIOperation[Any, Any, Any, Any]
Case = schemathesis.Case[Operation]

CONFIG = schemathesis.Config.from_dict(
    {
        # The live feed sends an event whenever the figures change, until its client leaves.
        "max-stream-events": 1,
        # No undeclared parameters or fields: a query parameter no route declares is ignored, as
        # HTTP APIs do, where the check of invalid input would want it refused (every body model
        # refuses unknown fields, pydantic's ``extra="forbid"``).
        "generation": {"allow-extra-parameters": False},
        # Every check of one request and its answer, and the probes of ignored auth (the request
        # again without its token, and with a forged one, must be refused). The stateful checks
        # (use after free, resource availability) follow links between operations; this fuzz
        # aims at seeded cases instead.
        "checks": {
            "enabled": False,
            **{
                check: {"enabled": True}
                for check in (
                    "not_a_server_error",
                    "status_code_conformance",
                    "content_type_conformance",
                    "response_headers_conformance",
                    "response_schema_conformance",
                    "negative_data_rejection",
                    "ignored_auth",
                    "unsupported_method",
                    "missing_required_header",
                )
            },
        },
    }
)


@dataclass
class Targets:
    """What exists in the city for a generated request to hit now and then."""

    tokens: dict[str, str]
    path_values: dict[str, list[str]]
    body_values: dict[str, list[Any]]


class Seeder:
    """Puts cases in every stage into the city before the fuzz, over the in-process client."""

    def __init__(self, client: ASGIClient, city: City) -> None:
        self.client = client
        self.tokens = {user: self._login(user) for user in CALLERS}
        self.spots = ({"lon": lon, "lat": lat} for lon, lat in _spots(city, city.inspector("insp-001").cell_ids))

    def _login(self, user: str) -> str:
        answer = self.client.post("/auth/token", data={"username": user, "password": PASSWORDS[user]})
        assert answer.status_code == 200, answer.text
        token: str = answer.json()["access_token"]
        return token

    def call(self, user: str | None, method: str, path: str, expect: int = 200, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.tokens[user]}"} if user else {}
        answer = self.client.request(method, path, headers=headers, **kwargs)
        assert answer.status_code == expect, f"{method} {path}: {answer.status_code} {answer.text}"
        return answer.json()

    def wait_until(self, user: str, path: str, holds: Callable[[Any], bool], timeout_s: float = 30) -> None:
        """Poll ``path`` until ``holds`` (events travel asynchronously)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            answer = self.client.get(path, headers={"Authorization": f"Bearer {self.tokens[user]}"})
            if answer.status_code == 200 and holds(answer.json()):
                return
            time.sleep(0.05)
        raise AssertionError(f"{path} never satisfied the condition")

    def report(self, digest: str) -> str:
        body = {"category_code": STREET_CATEGORY, "description": "found on patrol", "location": next(self.spots)}
        report = self.call("inspector1", "POST", "/intake/reports", 201, json={**body, "photos": [digest]})
        case_id: str = report["id"]
        self.wait_until("dept-street", f"/handling/cases/{case_id}", lambda task: task["status"] == "assigned")
        return case_id


def seed(client: ASGIClient, city: City) -> Targets:
    """Cases dispatched, accepted and handled (awaiting the check), a citizen's report awaiting
    verification, a hotline work order and a photo; the callers' tokens."""
    seeder = Seeder(client, city)
    seeder.wait_until("shiftlead", "/readyz", lambda body: body["ready"] is True)
    photo = ("files", ("photo.png", PNG, "image/png"))
    digest: str = seeder.call("inspector1", "POST", "/intake/photos", 201, files=[photo])[0]["digest"]
    dispatched, accepted, handled = (seeder.report(digest) for _ in range(3))
    for case_id in (accepted, handled):
        seeder.call("dept-street", "POST", f"/handling/cases/{case_id}/accept")
    seeder.call("dept-street", "POST", f"/handling/cases/{handled}/report", data={"result": "cleared"})
    seeder.wait_until("shiftlead", f"/closure/cases/{handled}", lambda case: case["status"] == "checking")
    complaint = {"category_code": STREET_CATEGORY, "description": "bin overflowing", "location": next(seeder.spots)}
    public = seeder.call(None, "POST", "/intake/public/reports", 201, json=complaint)["id"]
    order = {**complaint, "location": next(seeder.spots), "external_ref": "12345-2026-000001"}
    work_order = seeder.call("hotline", "POST", "/intake/hotline/work-orders", 201, json=order)["id"]
    cases = [dispatched, accepted, handled]
    return Targets(
        tokens=seeder.tokens,
        path_values={"case_id": cases, "report_id": [*cases, public, work_order], "digest": [digest]},
        body_values={
            "category_code": [category.code for category in city.categories],
            "department_id": [department.id for department in city.departments],
            "location": list(itertools.islice(seeder.spots, 4)),
            "photos": [[digest]],
        },
    )


@dataclass
class FuzzedCity:
    """A running embedded city, its API documents and what to aim at."""

    schemas: Sequence[schemathesis.BaseSchema]
    targets: Targets


@pytest.fixture(params=["embedded"])
def fuzzed(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[FuzzedCity]:
    app = create_app(["all"], city_settings(request.param, tmp_path), SimulatedClock(START))
    # Loading the first document starts the city, in schemathesis's own event loop.
    schemas = [schemathesis.openapi.from_asgi(f"{prefix}/openapi.json", app, config=CONFIG) for prefix in APIS]
    try:
        with ASGIClient(cast(ASGIApp, app)) as client:
            targets = seed(client, app.state.runtime.shared.city)
        yield FuzzedCity(schemas, targets)
    finally:
        shutdown_lifespans()


def _aimed(case: Case, targets: Targets, data: st.DataObject) -> None:
    """Now and then a real category, department, place or photo in place of a generated one in a
    valid body, so it gets past the first lookup into the rules behind it (an invalid one stays
    as invalid as it was generated)."""
    valid = case.meta is not None and case.meta.generation.mode is GenerationMode.POSITIVE
    if not valid or not isinstance(case.body, dict) or not data.draw(st.booleans(), label="aimed body"):
        return
    for field, values in targets.body_values.items():
        if field in case.body:
            case.body[field] = data.draw(st.sampled_from(values), label=field)


def test_no_request_is_answered_with_a_server_error(fuzzed: FuzzedCity, subtests: pytest.Subtests) -> None:
    for schema in fuzzed.schemas:
        for path in schema:
            for operation in schema[path].values():
                with subtests.test(f"{operation.method.upper()} {schema.base_path.rstrip('/')}{operation.path}"):
                    _fuzz(operation, fuzzed.targets)


def _fuzz(operation: Operation, targets: Targets) -> None:
    aimed_paths = [
        {parameter.name: value}
        for parameter in operation.path_parameters
        for value in targets.path_values.get(parameter.name, [])
    ]
    cases = st.one_of(
        [
            operation.as_strategy(mode, path_parameters=path)
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
            for path in [None, *aimed_paths]
        ]
    )

    # Health checks: schemathesis' strategies, of invalid input above all, are slow to draw and
    # filter much; that says nothing about the API.
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=cases, caller=st.sampled_from([*CALLERS, None]), data=st.data())
    def fuzz(case: Case, caller: str | None, data: st.DataObject) -> None:
        _aimed(case, targets, data)
        # Nobody: the generated headers, with or without a token of their own.
        headers = {"Authorization": f"Bearer {targets.tokens[caller]}"} if caller else {}
        case.call_and_validate(headers=headers)

    fuzz()


@pytest.mark.parametrize("mode", ["embedded"])
def test_every_error_and_every_resent_report_is_documented(mode: str, tmp_path: Path) -> None:
    app = create_app(["all"], city_settings(mode, tmp_path), SimulatedClock(START))
    documents = {"": app.openapi()} | {
        route.path: route.app.openapi()
        for route in app.routes
        if isinstance(route, Mount) and isinstance(route.app, FastAPI)
    }
    for prefix, document in documents.items():
        for path, operations in document["paths"].items():
            for method, operation in operations.items():
                errors = operation["responses"]["default"]["content"]
                if prefix == "/open311":  # Open311's own error bodies, in XML or JSON
                    assert errors["application/json"]["schema"]["items"]["required"] == ["code", "description"]
                    assert "text/xml" in errors, f"{method} {path}"
                    continue
                error = errors["application/json"]["schema"]
                assert (error["title"], error["required"]) == ("ErrorBody", ["code", "message"]), f"{method} {path}"
        # FastAPI's own 422 shape, which the error handlers never send.
        assert "HTTPValidationError" not in document.get("components", {}).get("schemas", {}), prefix
    for path in ("/reports", "/hotline/work-orders", "/public/reports", "/video/detections"):
        assert {"200", "201"} <= set(documents["/intake"]["paths"][path]["post"]["responses"]), path
