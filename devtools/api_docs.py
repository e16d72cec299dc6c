"""The API's spec on the local stack: ``/openapi.json`` (also ``/docs/openapi.json``), and ``/docs`` showing it.

The spec served is the committed ``openapi.json`` (``make openapi`` regenerates it from the code; a test fails
when it is stale), exactly what clients and the schemathesis run read. With the ``swagger-ui-dist`` npm package
installed (``npm ci``), ``/docs`` is Swagger UI, served locally (the page needs no network beyond 127.0.0.1).
Without it ``make dev`` still works, Python alone: ``/docs`` then lists the routes with their summaries and
answers, and links the spec, saying how to get Swagger UI.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from devtools.gateway import Answer

SWAGGER_DIST = Path(__file__).resolve().parent.parent / "node_modules" / "swagger-ui-dist"
SWAGGER_PAGE = b"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>video-library API</title>
<link rel="stylesheet" href="/docs/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/docs/swagger-ui-bundle.js"></script>
<script>window.ui = SwaggerUIBundle({url: "/openapi.json", dom_id: "#swagger-ui"});</script>
</body></html>
"""
HTML = "text/html; charset=utf-8"


def swagger_installed(dist: Path = SWAGGER_DIST) -> bool:
    return all((dist / name).is_file() for name in ("swagger-ui.css", "swagger-ui-bundle.js"))


def plain_page(spec: dict[str, Any]) -> bytes:
    """The routes of ``spec`` as a plain HTML list: what /docs shows without Swagger UI."""
    rows = []
    for path, operations in spec.get("paths", {}).items():
        for method, operation in operations.items():
            answers = ", ".join(sorted(operation.get("responses", {})))
            rows.append(
                f"<li><code>{html.escape(method.upper())} {html.escape(path)}</code> — "
                f"{html.escape(operation.get('summary', ''))} <small>({html.escape(answers)})</small></li>"
            )
    info = spec.get("info", {})
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>video-library API</title></head><body>'
        f"<h1>{html.escape(info.get('title', 'API'))} {html.escape(str(info.get('version', '')))}</h1>"
        f"<p>{html.escape(info.get('description', ''))}</p><ul>{''.join(rows)}</ul>"
        '<p>The whole spec: <a href="/openapi.json">/openapi.json</a>. For Swagger UI here, install '
        "the node tooling once (<code>npm ci</code>) and reload.</p></body></html>\n"
    ).encode()


def _spec() -> dict[str, Any]:
    from devtools.openapi import SPEC_FILE

    spec: dict[str, Any] = json.loads(SPEC_FILE.read_text())
    return spec


def _spec_file(_: dict[str, Any]) -> Answer:
    from devtools.openapi import SPEC_FILE

    return Answer(200, {"content-type": "application/json"}, SPEC_FILE.read_bytes())


def _page(dist: Path) -> Callable[[dict[str, Any]], Answer]:
    def serve(_: dict[str, Any]) -> Answer:
        if swagger_installed(dist):
            return Answer(200, {"content-type": HTML}, SWAGGER_PAGE)
        return Answer(200, {"content-type": HTML}, plain_page(_spec()))

    return serve


def _asset(dist: Path, name: str, content_type: str) -> Callable[[dict[str, Any]], Answer]:
    def serve(_: dict[str, Any]) -> Answer:
        path = dist / name
        if not path.is_file():
            return Answer(404, {"content-type": "text/plain"}, b"swagger-ui-dist is not installed: run `npm ci`")
        return Answer(200, {"content-type": content_type}, path.read_bytes())

    return serve


def docs_routes(dist: Path = SWAGGER_DIST) -> dict[tuple[str, str], Callable[[dict[str, Any]], Answer]]:
    return {
        ("GET", "/docs"): _page(dist),
        ("GET", "/openapi.json"): _spec_file,
        ("GET", "/docs/openapi.json"): _spec_file,
        ("GET", "/docs/swagger-ui.css"): _asset(dist, "swagger-ui.css", "text/css"),
        ("GET", "/docs/swagger-ui-bundle.js"): _asset(dist, "swagger-ui-bundle.js", "text/javascript"),
    }
