"""The API documentation pages, Swagger UI at ``/docs`` and ReDoc at ``/redoc``, with their
scripts and styles served by the process itself: a city's network often has no way to the
internet, and FastAPI's own pages load theirs from a CDN (a blank page offline).

The assets come from the ``fastapi-offline`` package, pinned like any dependency, so every
service process serves its documentation without the browser console's build. Of the packages
that ship them, ``swagger-ui-bundle`` has Swagger UI 4.15 (2022), no ReDoc, and pulls in Jinja2;
``drf-spectacular-sidecar`` has current builds of both but requires Django; copying them from
npm at build time would tie every service to the console's Node build. ``fastapi-offline``
carries current builds of both (Swagger UI 5.32, ReDoc 2.5) and needs nothing but FastAPI. Only
its files are used: its pages start Swagger UI with an inline script, which the pages' Content
Security Policy forbids, so the pages here start it from a script file of their own.
"""

from __future__ import annotations

import html
from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from starlette.middleware.gzip import GZipMiddleware
from starlette.staticfiles import StaticFiles

from shared.web.headers import DOCS_CSP

ASSETS = "/docs-assets"
"""Where a documented app serves the pages' scripts, styles and icon, below its own prefix."""
PAGES = {"documentation-swagger-ui": "/docs", "documentation-redoc": "/redoc"}
"""The documentation pages of an app, by route name."""

_INIT = "swagger-init.js"
# FastAPI's own settings for Swagger UI (``swagger_ui_default_parameters``), read from the page
# so that one file serves every service's page.
_SWAGGER_INIT = """"use strict";
// Started from a file rather than an inline script: the page's CSP allows scripts of its origin only.
const element = document.getElementById("swagger-ui");
window.ui = SwaggerUIBundle({
  url: element.dataset.openapiUrl,
  dom_id: "#swagger-ui",
  layout: "BaseLayout",
  deepLinking: true,
  showExtensions: true,
  showCommonExtensions: true,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
  // No badge from the online validator: nothing leaves for another site.
  validatorUrl: null,
});
"""


def asset_directory() -> Path:
    """The folder of the Swagger UI and ReDoc builds."""
    return Path(str(files("fastapi_offline") / "static"))


def install_docs(app: FastAPI) -> None:
    """Serve Swagger UI and ReDoc for ``app``'s OpenAPI document, from local assets under
    ``ASSETS``; nothing when the app has no document (documentation off). Build the app with
    ``docs_url=None, redoc_url=None`` so FastAPI's CDN pages stay away."""
    openapi_url = app.openapi_url
    if openapi_url is None:
        return

    spec = html.escape(openapi_url)

    def page(request: Request, title: str, head: str, body: str) -> HTMLResponse:
        head = (
            '<meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{html.escape(app.title)} - {title}</title>"
            f'<link rel="icon" type="image/png" href="{_root(request)}{ASSETS}/favicon.png">{head}'
        )
        document = f'<!DOCTYPE html>\n<html lang="en"><head>{head}</head><body>{body}</body></html>\n'
        return HTMLResponse(document, headers={"Content-Security-Policy": DOCS_CSP, "Cache-Control": "no-cache"})

    @app.get(PAGES["documentation-swagger-ui"], include_in_schema=False, name="documentation-swagger-ui")
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = _root(request)
        return page(
            request,
            "Swagger UI",
            f'<link rel="stylesheet" href="{root}{ASSETS}/swagger-ui.css">',
            f'<div id="swagger-ui" data-openapi-url="{root}{spec}"></div>'
            f'<script src="{root}{ASSETS}/swagger-ui-bundle.js"></script>'
            f'<script src="{root}{ASSETS}/{_INIT}"></script>',
        )

    @app.get(PAGES["documentation-redoc"], include_in_schema=False, name="documentation-redoc")
    async def redoc(request: Request) -> HTMLResponse:
        root = _root(request)
        return page(
            request,
            "ReDoc",
            "",
            f'<redoc spec-url="{root}{spec}"></redoc><script src="{root}{ASSETS}/redoc.standalone.js"></script>',
        )

    @app.get(f"{ASSETS}/{_INIT}", include_in_schema=False)
    async def swagger_init() -> Response:
        return Response(_SWAGGER_INIT, media_type="text/javascript")

    # Compressed on the way: the two bundles are 2.6 MB, a fifth of that gzipped.
    app.mount(ASSETS, GZipMiddleware(StaticFiles(directory=asset_directory()), minimum_size=1024), name="docs-assets")


def _root(request: Request) -> str:
    """The prefix the app is mounted under (``/intake``), for the URLs a page names."""
    return html.escape(str(request.scope.get("root_path", "")).rstrip("/"))
