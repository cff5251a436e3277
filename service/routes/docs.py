"""Router: /openapi.json and /docs — the OpenAPI document and Swagger UI, served offline.

Swagger UI's files come from the installed ``swagger-ui-py`` package (pinned; it ships Swagger UI
5, which renders OpenAPI 3.1): nothing is loaded from a public CDN, so the page works in an
air-gapped cluster and the admin token typed into Authorize never reaches a third-party script.
Every URL in the page is relative, so it also works through the API server's pod proxy; the page
is served at ``/docs`` and ``/docs/`` (the router treats them alike) with its links written for
the URL it was asked under. The page's own files are routed but kept out of the document, so
Swagger UI does not list them as operations.
"""

from __future__ import annotations

import functools
import importlib.resources
from collections.abc import Callable
from typing import Any

from FasterAPI import Response

from .. import __version__
from ..http.api import Api, Call, Operation, Reply, Sized, json_reply
from ..http.openapi import openapi_document

TITLE = "fasterdb-sidecar"
DESCRIPTION = (
    "Readiness that follows the database, replica lag, pool statistics and the database's own view "
    "for PostgreSQL applications; transfers and jobs as an optional maintenance part."
)
# Swagger UI may not load or send anything anywhere but this sidecar.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'"
)
# {here}: how the page's URL reaches /docs/ ("docs/" from /docs, "" from /docs/).
PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>fasterdb-sidecar API</title>
  <link rel="stylesheet" href="{here}swagger-ui.css">
  <link rel="icon" type="image/png" href="{here}favicon.png">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="{here}swagger-ui-bundle.js"></script>
  <script src="{here}init.js"></script>
</body>
</html>
"""
# The document's URL is taken relative to this script's own (…/docs/init.js), which is the same
# whether the page was asked for as /docs or /docs/, and under any path prefix.
INIT = """window.ui = SwaggerUIBundle({
  url: new URL("../openapi.json", document.currentScript.src).href,
  dom_id: "#swagger-ui",
  deepLinking: true,
  persistAuthorization: false,
  validatorUrl: null
});
"""
# name in the URL -> (file in swagger_ui/static, media type)
ASSETS = {
    "swagger-ui.css": ("swagger-ui.css", "text/css"),
    "swagger-ui-bundle.js": ("swagger-ui-bundle.js", "application/javascript"),
    "favicon.png": ("favicon-32x32.png", "image/png"),
}


@functools.cache
def _asset(filename: str) -> bytes:
    """One file of the installed Swagger UI dist, read once."""
    return (importlib.resources.files("swagger_ui") / "static" / filename).read_bytes()


def _static(name: str, media_type: str, summary: str) -> Operation:
    return Operation(
        "GET",
        f"/docs/{name}",
        "docs_" + name.replace("-", "_").replace(".", "_"),
        summary,
        "docs",
        (Reply(200, summary, None, media_type=media_type, schema={"type": "string"}),),
        in_schema=False,
    )


def register(api: Api) -> None:
    """/openapi.json, /docs and the page's assets; the document covers every operation of ``api``."""
    openapi = Operation(
        "GET",
        "/openapi.json",
        "openapi",
        "This OpenAPI 3.1 document",
        "docs",
        (Reply(200, "the OpenAPI document", None, schema={"type": "object"}),),
    )

    @functools.cache
    def document() -> dict[str, Any]:
        return openapi_document(api.operations, title=TITLE, version=__version__, description=DESCRIPTION)

    @api.route(openapi)
    async def openapi_json(call: Call) -> Response:
        """The document, generated once from the registered operations."""
        return json_reply(document())

    page = Operation(
        "GET",
        "/docs",
        "docs",
        "Swagger UI (served from the installed package, no CDN)",
        "docs",
        (Reply(200, "the Swagger UI page", None, media_type="text/html", schema={"type": "string"}),),
    )

    @api.route(page)
    async def docs(call: Call) -> Response:
        """The Swagger UI page, its links relative to the URL it was asked under (/docs or /docs/)."""
        here = "" if call.request.path.endswith("/") else "docs/"
        return Sized(PAGE.format(here=here), headers={"content-security-policy": CSP}, media_type="text/html")

    @api.route(_static("init.js", "application/javascript", "Swagger UI's start-up script"))
    async def init(call: Call) -> Response:
        """Swagger UI's start-up (a file of its own, so the page needs no inline script)."""
        return Sized(INIT, media_type="application/javascript")

    def serve(filename: str, media_type: str) -> Callable[[Call], Any]:
        async def asset(call: Call) -> Response:
            return Sized(_asset(filename), headers={"cache-control": "max-age=86400"}, media_type=media_type)

        return asset

    for name, (filename, media_type) in ASSETS.items():
        api.route(_static(name, media_type, f"Swagger UI asset {name}"))(serve(filename, media_type))
