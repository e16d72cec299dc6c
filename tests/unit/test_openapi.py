"""The committed OpenAPI spec is what the code generates, and it covers every HTTP route."""

from __future__ import annotations

from devtools.gateway import routes_from_serverless
from devtools.openapi import SPEC_FILE, render, spec


def test_committed_spec_is_current() -> None:
    assert SPEC_FILE.read_text() == render(), "openapi.json is stale: run `make openapi`"


def test_spec_covers_every_http_route_in_serverless_yml() -> None:
    documented = {(method.upper(), path) for path, operations in spec()["paths"].items() for method in operations}
    routes = {(route.method, route.path) for route in routes_from_serverless()}

    assert routes == documented
