"""The library page's files as the local gateway serves them: only files inside web/, with their types."""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.gateway import Gateway, GatewayServer, Route
from devtools.static_files import WEB_ROOT, StaticFiles

OUTSIDE = ["pyproject.toml", "serverless.yml"]
TRAVERSALS = [
    "/../pyproject.toml",
    "/web/../pyproject.toml",
    "/web/../../pyproject.toml",
    "/%2e%2e/pyproject.toml",
    "/%2E%2E%2Fpyproject.toml",
    "/web/%2e%2e%2fserverless.yml",
    "/..%5cpyproject.toml",
    "/%2fetc/passwd",
    "//etc/passwd",
    "/web//etc/passwd",
    "/index.html%00.png",
    "/./index.html",
    "/.git/config",
    "/no-such-file.js",
]


@pytest.mark.parametrize(
    ("path", "content_type", "needle"),
    [
        ("/", "text/html; charset=utf-8", b"<title>Video library</title>"),
        ("/index.html", "text/html; charset=utf-8", b"<title>Video library</title>"),
        ("/web/", "text/html; charset=utf-8", b"<title>Video library</title>"),
        ("/web/index.html", "text/html; charset=utf-8", b"<title>Video library</title>"),
        ("/app.js", "text/javascript; charset=utf-8", b"VIDEO_LIBRARY_CONFIG"),
        ("/web/app.js", "text/javascript; charset=utf-8", b"VIDEO_LIBRARY_CONFIG"),
        ("/styles.css", "text/css; charset=utf-8", b".video-grid"),
        ("/config.js", "text/javascript; charset=utf-8", b"apiBaseUrl"),
    ],
)
def test_the_page_and_its_files_are_served_with_their_types(path: str, content_type: str, needle: bytes) -> None:
    answer = StaticFiles()("GET", path)

    assert answer is not None and answer.status == 200
    assert answer.headers["content-type"] == content_type
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert needle in answer.body


@pytest.mark.parametrize("path", TRAVERSALS)
def test_nothing_outside_web_nor_hidden_is_served(path: str) -> None:
    assert StaticFiles().file_for(path) is None
    assert StaticFiles()("GET", path) is None


def test_a_symlink_out_of_the_root_is_not_followed(tmp_path: Path) -> None:
    root = tmp_path / "web"
    root.mkdir()
    (tmp_path / "secret.txt").write_text("secret")
    (root / "inside.txt").write_text("inside")
    (root / "link.txt").symlink_to(tmp_path / "secret.txt")

    files = StaticFiles(root)

    assert files.file_for("/inside.txt") == (root / "inside.txt").resolve()
    assert files.file_for("/link.txt") is None
    assert files.file_for("/missing.txt") is None


def test_only_get_and_head_are_served() -> None:
    assert StaticFiles()("HEAD", "/") is not None
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        assert StaticFiles()(method, "/index.html") is None


@pytest.fixture
def server() -> Iterator[GatewayServer]:
    """A gateway with one API route and the static fallback, over real HTTP (clients normalise `..`;
    http.client sends the path as given)."""
    route = Route("GET", "/api/echo", "echo", "tests/unit/gateway_echo.handler", False, 29, 256)
    gateway = Gateway([route])
    gateway.fallback = StaticFiles()
    running = GatewayServer(gateway, "127.0.0.1", 0, access_log=lambda _line: None)
    thread = threading.Thread(target=running.serve_forever, daemon=True)
    thread.start()
    yield running
    running.shutdown()
    running.server_close()


def fetch(server: GatewayServer, method: str, path: str) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=10)
    try:
        connection.request(method, path)
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def test_over_http_routes_win_and_traversal_finds_nothing(server: GatewayServer) -> None:
    page_status, page_headers, page = fetch(server, "GET", "/")
    api_status, _, api = fetch(server, "GET", "/api/echo")
    head_status, head_headers, head = fetch(server, "HEAD", "/app.js")

    assert page_status == 200 and page_headers["content-type"] == "text/html; charset=utf-8"
    assert page == (WEB_ROOT / "index.html").read_bytes()
    assert api_status == 200 and json.loads(api)["routeKey"] == "GET /api/echo"
    assert head_status == 200 and head == b""
    assert int(head_headers["content-length"]) == (WEB_ROOT / "app.js").stat().st_size
    outside = [(WEB_ROOT.parent / name).read_bytes() for name in OUTSIDE]
    for path in TRAVERSALS:
        status, headers, body = fetch(server, "GET", path)
        assert status == 404, path
        assert headers["content-type"] == "application/json", path
        assert all(secret not in body for secret in outside), path
