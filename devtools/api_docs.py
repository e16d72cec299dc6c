"""The API's spec on the local stack: ``/openapi.json``, and Swagger UI showing it at ``/docs``.

The spec served is the committed ``openapi.json`` (``make openapi`` regenerates it from the code; a test fails
when it is stale), exactly what clients and the schemathesis run read. Swagger UI's files come from the
``swagger-ui-dist`` npm package (``npm ci``), served locally: the page needs no network beyond 127.0.0.1.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from devtools.gateway import Answer

SWAGGER_DIST = Path(__file__).resolve().parent.parent / "node_modules" / "swagger-ui-dist"
PAGE = b"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>video-library API</title>
<link rel="stylesheet" href="/docs/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/docs/swagger-ui-bundle.js"></script>
<script>window.ui = SwaggerUIBundle({url: "/openapi.json", dom_id: "#swagger-ui"});</script>
</body></html>
"""


def _asset(name: str, content_type: str) -> Callable[[dict[str, Any]], Answer]:
    def serve(_: dict[str, Any]) -> Answer:
        path = SWAGGER_DIST / name
        if not path.is_file():
            return Answer(503, {"content-type": "text/plain"}, b"swagger-ui-dist is missing: run `npm ci`")
        return Answer(200, {"content-type": content_type}, path.read_bytes())

    return serve


def _spec(_: dict[str, Any]) -> Answer:
    from devtools.openapi import SPEC_FILE

    return Answer(200, {"content-type": "application/json"}, SPEC_FILE.read_bytes())


def docs_routes() -> dict[tuple[str, str], Callable[[dict[str, Any]], Answer]]:
    return {
        ("GET", "/docs"): lambda _: Answer(200, {"content-type": "text/html; charset=utf-8"}, PAGE),
        ("GET", "/openapi.json"): _spec,
        ("GET", "/docs/openapi.json"): _spec,
        ("GET", "/docs/swagger-ui.css"): _asset("swagger-ui.css", "text/css"),
        ("GET", "/docs/swagger-ui-bundle.js"): _asset("swagger-ui-bundle.js", "text/javascript"),
    }
