"""/docs on the local stack: Swagger UI when the npm package is there, a plain list of the routes when not.

GIVEN `make dev` started with or without `npm ci` having run, WHEN /docs is asked for, THEN it answers 200 with
something useful either way, and the spec itself is always there.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from devtools.api_docs import docs_routes


def answer(routes: dict[tuple[str, str], Any], method: str, path: str) -> tuple[int, str, bytes]:
    result = routes[(method, path)]({})
    return result.status, result.headers["content-type"], result.body


def test_without_swagger_ui_docs_lists_the_routes_and_links_the_spec(tmp_path: Path) -> None:
    routes = docs_routes(tmp_path / "no-such-dist")

    status, content_type, page = answer(routes, "GET", "/docs")
    spec_status, _, spec = answer(routes, "GET", "/docs/openapi.json")

    assert (status, content_type) == (200, "text/html; charset=utf-8")
    assert b"<code>POST /api/video/generate</code>" in page
    assert b"<code>POST /webhooks/piapi</code>" in page
    assert b"npm ci" in page
    assert spec_status == 200
    assert "/api/video/save-to-library" in json.loads(spec)["paths"]
    assert answer(routes, "GET", "/docs/swagger-ui-bundle.js")[0] == 404


def test_with_swagger_ui_docs_serves_it_from_the_package(tmp_path: Path) -> None:
    (tmp_path / "swagger-ui.css").write_text("body {}")
    (tmp_path / "swagger-ui-bundle.js").write_text("window.SwaggerUIBundle = () => {};")
    routes = docs_routes(tmp_path)

    _, _, page = answer(routes, "GET", "/docs")

    assert b"SwaggerUIBundle" in page
    assert answer(routes, "GET", "/docs/swagger-ui-bundle.js") == (
        200,
        "text/javascript",
        b"window.SwaggerUIBundle = () => {};",
    )
