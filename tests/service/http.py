"""A service's routes over HTTP on the embedded store of a ``ServiceUnderTest``: mounted under its
prefix as its process mounts them (so the addresses it writes, a ``Link`` header's, are the real
ones), with its error handlers and the photo routes, and called as a given caller (the token's
checks are the e2e tests' business).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI

from services.runtime.registry import load_specs
from shared.core.auth import Principal
from shared.web.auth import current_principal
from shared.web.errors import install_error_handlers
from shared.web.limits import RateLimits, Rules
from shared.web.photos import router as photos_router
from tests.service.conftest import ServiceUnderTest

BASE_URL = "http://citycase.test"


@asynccontextmanager
async def served(sut: ServiceUnderTest, caller: Principal) -> AsyncIterator[httpx.AsyncClient]:
    """A client of ``sut``'s routes under ``/<service>``, every request made as ``caller``."""
    (spec,) = load_specs([sut.ctx.service])
    service = FastAPI()
    service.state.context = sut.ctx
    install_error_handlers(service)
    service.include_router(spec.router)
    service.include_router(photos_router)

    async def as_caller() -> Principal:
        return caller

    service.dependency_overrides[current_principal] = as_caller
    app = FastAPI()
    app.mount(f"/{sut.ctx.service}", service)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL) as client:
        yield client


@asynccontextmanager
async def served_mounts(sut: ServiceUnderTest) -> AsyncIterator[httpx.AsyncClient]:
    """A client of ``sut``'s mounts (intake's ``/open311/...``) as its process mounts them: on the
    service's context, with the project's error handlers and then the mount's own, and rate limits
    of their own; no caller (a mount's routes that want one ask for it themselves)."""
    (spec,) = load_specs([sut.ctx.service])
    app = FastAPI()
    for prefix, mount in spec.mounts.items():
        mounted = FastAPI()
        mounted.state.context = sut.ctx
        mounted.state.rate_limits = RateLimits(Rules.of(sut.ctx.settings))
        install_error_handlers(mounted)
        if mount.install is not None:
            mount.install(mounted)
        mounted.include_router(mount.router)
        app.mount(prefix, mounted)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL) as client:
        yield client


_LINK = re.compile(r'<([^>]*)>\s*;\s*rel="next"')


def next_link(response: httpx.Response) -> str | None:
    """The address of the next page a list's answer names (RFC 8288 ``rel="next"``), or None."""
    header = response.headers.get("link")
    if header is None:
        return None
    found = _LINK.fullmatch(header)
    assert found, f"not one next link: {header}"
    return found.group(1)


async def read_to_the_end(client: httpx.AsyncClient, path: str) -> list[list[dict[str, object]]]:
    """Every page of the list at ``path``, following ``rel="next"`` as a client would: each next
    address absolute, on the same origin and path as the first."""
    pages: list[list[dict[str, object]]] = []
    url: str | None = path
    while url is not None:
        response = await client.get(url)
        assert response.status_code == 200, response.text
        pages.append(response.json())
        url = next_link(response)
        if url is not None:
            assert url.startswith(f"{BASE_URL}{path.partition('?')[0]}?"), url
        assert len(pages) < 1000, "the pages never end"
    return pages
