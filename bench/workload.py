"""What the benchmark sends: inspectors' reports all over the demo city, and departments' reports
back on the cases dispatched to them, prepared as HTTP requests before the clock starts.
"""

from __future__ import annotations

import io
import json
import random
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from PIL import Image

from bench.load import http_request
from services.runtime.accounts import account_of
from shared.city.model import City, GridCell
from shared.core.auth import Role, TokenIssuer

# A phone photo after the app's compression, PNG-signed so the type check accepts it; each report
# back appends its case id, so every photo is a different file to store.


def _photo() -> bytes:
    """A 48 KB photo that decodes in full (noise does not compress), as uploads are checked."""
    side = 220
    buffer = io.BytesIO()
    Image.frombytes("L", (side, side), random.Random(0).randbytes(side * side)).save(buffer, "PNG")
    return buffer.getvalue()


PHOTO = _photo()
_BOUNDARY = "citycase-bench-boundary"


@dataclass(frozen=True)
class Caller:
    """A city user's bearer token, as the app would hold it."""

    username: str
    authorization: str


def callers(city: City, tokens: TokenIssuer, role: Role) -> list[Caller]:
    """Every demo user of ``role``, logged in."""
    found = [account_of(user).principal for user in city.users if user.role.value == role.value]
    return [Caller(p.username, f"Bearer {tokens.issue_machine(p)}") for p in found]


def department_callers(city: City, tokens: TokenIssuer) -> dict[str, Caller]:
    """One logged-in user per department, by department id."""
    by_department: dict[str, Caller] = {}
    for user in city.users:
        principal = account_of(user).principal
        if principal.role is Role.DEPARTMENT and principal.department_id not in by_department:
            assert principal.department_id is not None
            by_department[principal.department_id] = Caller(
                principal.username, f"Bearer {tokens.issue_machine(principal)}"
            )
    return by_department


def points(city: City, rng: random.Random) -> Iterator[tuple[GridCell, float, float]]:
    """Random points in random cells, each checked to lie in its cell (a report outside the grid is refused)."""
    cells = city.cells
    while True:
        cell = rng.choice(cells)
        west, south, east, north = city.grid.polygon(cell.id).bounds
        lon, lat = rng.uniform(west, east), rng.uniform(south, north)
        located = city.locate(lon, lat)
        if located is not None and located.id == cell.id:
            yield cell, lon, lat


def inspector_reports(city: City, inspectors: Sequence[Caller], host: str, count: int, seed: int) -> list[bytes]:
    """``count`` reports by inspectors on patrol: any category, anywhere in the city, no photo
    (the photo upload is a separate call), each with the app's own id so a resend is harmless.
    """
    rng = random.Random(seed)
    categories = city.categories
    requests = []
    spots = points(city, rng)
    for n in range(count):
        cell, lon, lat = next(spots)
        category = rng.choice(categories)
        inspector = inspectors[n % len(inspectors)]
        body = {
            "category_code": category.code,
            "description": f"{category.name} · {cell.name}",
            "location": {"lon": round(lon, 7), "lat": round(lat, 7)},
            "client_ref": str(uuid.UUID(int=rng.getrandbits(128))),
        }
        headers = {"authorization": inspector.authorization, "content-type": "application/json"}
        requests.append(http_request("POST", "/intake/reports", host, headers, json.dumps(body).encode()))
    return requests


def accepts(cases: Sequence[tuple[str, str]], departments: dict[str, Caller], host: str) -> list[bytes]:
    """A department signs for each (case id, department id) (签收)."""
    return [
        http_request(
            "POST", f"/handling/cases/{case_id}/accept", host, {"authorization": departments[dept].authorization}
        )
        for case_id, dept in cases
    ]


def report_backs(cases: Sequence[tuple[str, str]], departments: dict[str, Caller], host: str) -> list[bytes]:
    """A department reports each case handled, with one photo (处置反馈, multipart as the app sends it)."""
    requests = []
    for case_id, dept in cases:
        body = (
            (
                f'--{_BOUNDARY}\r\ncontent-disposition: form-data; name="result"\r\n\r\n'
                "已清理完毕，现场恢复\r\n"
                f'--{_BOUNDARY}\r\ncontent-disposition: form-data; name="photos"; filename="after.png"\r\n'
                "content-type: image/png\r\n\r\n"
            ).encode()
            + PHOTO
            + case_id.encode()
            + f"\r\n--{_BOUNDARY}--\r\n".encode()
        )
        headers = {
            "authorization": departments[dept].authorization,
            "content-type": f"multipart/form-data; boundary={_BOUNDARY}",
        }
        requests.append(http_request("POST", f"/handling/cases/{case_id}/report", host, headers, body))
    return requests
