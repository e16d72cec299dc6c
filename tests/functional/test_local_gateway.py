"""The local API Gateway on the wire: broken framing gets API Gateway's 400 (never a hang or a dropped
connection), CORS is answered as an HTTP API's CORS configuration does, and make dev's webhook secret is the
one given to it."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from devtools.gateway import (
    DEFAULT_CORS_HEADERS,
    Answer,
    CorsConfig,
    Gateway,
    GatewayServer,
    cors_from_serverless,
    read_serverless,
)
from devtools.local_stack import DEV_WEBHOOK_SECRET, StackConfig

PAGE_ORIGIN = "https://library.example.com"


def echo(request: dict[str, Any]) -> Answer:
    body = json.dumps({"received": request["body"].decode()}).encode()
    return Answer(200, {"content-type": "application/json"}, body)


@pytest.fixture
def gateway() -> Gateway:
    gateway = Gateway([], cors=CorsConfig((PAGE_ORIGIN,), ("Content-Type", "Authorization"), ("OPTIONS", "POST")))
    gateway.dev_routes[("POST", "/echo")] = echo
    return gateway


@pytest.fixture
def server(gateway: Gateway) -> Iterator[GatewayServer]:
    # A short body timeout: a client that announces more than it sends is refused after it, not waited for.
    running = GatewayServer(gateway, "127.0.0.1", 0, access_log=lambda _: None, body_read_timeout_s=0.5)
    running.max_payload_bytes = 1024
    thread = threading.Thread(target=running.serve_forever, daemon=True)
    thread.start()
    yield running
    running.shutdown()
    running.server_close()


def exchange(server: GatewayServer, raw: bytes, *, half_close: bool = False) -> tuple[int, dict[str, str], bytes]:
    """Send raw bytes, read the whole answer (the server closes after a refusal), parse it."""
    with socket.create_connection(server.server_address[:2], timeout=10) as sock:
        sock.sendall(raw)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        received = b""
        while b"\r\n\r\n" not in received:
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
        head, _, body = received.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        length = int(headers.get("content-length", "0"))
        while len(body) < length:
            chunk = sock.recv(65536)
            if not chunk:
                break
            body += chunk
        return int(lines[0].split()[1]), headers, body


def post(length_headers: str, body: bytes) -> bytes:
    head = b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" + length_headers.encode()
    return head + b"\r\n" + body


@pytest.mark.parametrize(
    "length_headers",
    [
        "Content-Length: abc\r\n",
        "Content-Length: -5\r\n",
        "Content-Length: +2\r\n",
        "Content-Length: 2\r\nContent-Length: 3\r\n",
        "Content-Length: 2, 3\r\n",
        "Content-Length: 2\r\nTransfer-Encoding: chunked\r\n",
        "Transfer-Encoding: gzip\r\n",
    ],
    ids=["not-a-number", "negative", "signed", "two-values", "list", "with-transfer-encoding", "unknown-encoding"],
)
def test_a_malformed_content_length_gets_api_gateways_400(server: GatewayServer, length_headers: str) -> None:
    # GIVEN a request whose framing cannot be trusted
    # WHEN it reaches the gateway
    status, headers, body = exchange(server, post(length_headers, b"{}"))

    # THEN API Gateway's 400, as JSON, and the connection is closed (its remaining bytes mean nothing)
    assert status == 400
    assert headers["content-type"] == "application/json" and headers["connection"] == "close"
    assert json.loads(body) == {"message": "Bad Request"}


def test_a_body_shorter_than_announced_is_refused_when_the_client_stops_sending(server: GatewayServer) -> None:
    status, _, body = exchange(server, post("Content-Length: 100\r\n", b'{"a": 1}'), half_close=True)

    assert status == 400 and json.loads(body) == {"message": "Bad Request"}


def test_a_body_shorter_than_announced_is_refused_when_the_client_waits(server: GatewayServer) -> None:
    # GIVEN a client that announces 100 bytes, sends 8 and waits for an answer with the connection open
    status, _, body = exchange(server, post("Content-Length: 100\r\n", b'{"a": 1}'))

    # THEN it gets 400 once the body is overdue, instead of a connection that hangs
    assert status == 400 and json.loads(body) == {"message": "Bad Request"}


def test_a_body_over_the_payload_limit_gets_413_unread(server: GatewayServer) -> None:
    status, _, body = exchange(server, post("Content-Length: 5000\r\n", b"{}"))

    assert status == 413 and json.loads(body) == {"message": "Request Entity Too Large"}


def test_well_formed_bodies_arrive_whole(server: GatewayServer) -> None:
    plain = exchange(server, post("Content-Length: 8\r\n", b'{"a": 1}'))
    chunked = exchange(server, post("Transfer-Encoding: chunked\r\n", b'3\r\n{"a\r\n5;ext=1\r\n": 1}\r\n0\r\n\r\n'))

    assert plain[0] == chunked[0] == 200
    assert json.loads(plain[2]) == json.loads(chunked[2]) == {"received": '{"a": 1}'}


def test_a_broken_chunked_body_gets_400(server: GatewayServer) -> None:
    status, _, body = exchange(server, post("Transfer-Encoding: chunked\r\n", b"zz\r\nabc\r\n0\r\n\r\n"))

    assert status == 400 and json.loads(body) == {"message": "Bad Request"}


@pytest.mark.parametrize("request_line", [b"TRACE /echo HTTP/1.1", b"QUERY /echo HTTP/1.1", b"GET /nowhere HTTP/1.1"])
def test_a_request_no_route_takes_gets_api_gateways_404(server: GatewayServer, request_line: bytes) -> None:
    status, _, body = exchange(server, request_line + b"\r\nHost: x\r\n\r\n")

    assert status == 404 and json.loads(body) == {"message": "Not Found"}


def test_a_broken_request_line_gets_a_json_400(server: GatewayServer) -> None:
    status, headers, body = exchange(server, b"GET /echo with spaces HTTP/1.1\r\nHost: x\r\n\r\n")

    assert status == 400 and headers["content-type"] == "application/json"
    assert json.loads(body) == {"message": "Bad Request"}


def test_a_preflight_from_an_allowed_origin_is_answered_by_the_gateway(server: GatewayServer) -> None:
    preflight = (
        f"OPTIONS /api/video/save-to-library HTTP/1.1\r\nHost: x\r\nOrigin: {PAGE_ORIGIN}\r\n"
        "Access-Control-Request-Method: POST\r\nAccess-Control-Request-Headers: authorization,content-type\r\n\r\n"
    )
    status, headers, body = exchange(server, preflight.encode())

    assert status == 204 and body == b"" and "content-length" not in headers
    assert headers["access-control-allow-origin"] == PAGE_ORIGIN
    assert headers["access-control-allow-methods"] == "OPTIONS,POST"
    assert headers["access-control-allow-headers"] == "Content-Type,Authorization"


def test_another_origin_gets_no_cors_headers(server: GatewayServer) -> None:
    preflight = "OPTIONS /echo HTTP/1.1\r\nHost: x\r\nOrigin: https://evil.example\r\n\r\n"
    request = post("Content-Length: 2\r\nOrigin: https://evil.example\r\n", b"{}")

    status, preflight_headers, _ = exchange(server, preflight.encode())
    answer_status, answer_headers, _ = exchange(server, request)

    assert status == 204 and answer_status == 200
    assert not [name for name in {**preflight_headers, **answer_headers} if name.startswith("access-control-")]


def test_answers_to_an_allowed_origin_carry_its_cors_header(server: GatewayServer) -> None:
    status, headers, _ = exchange(server, post(f"Content-Length: 2\r\nOrigin: {PAGE_ORIGIN}\r\n", b"{}"))

    assert status == 200 and headers["access-control-allow-origin"] == PAGE_ORIGIN


def write_serverless(tmp_path: Path, cors: object) -> Path:
    config = read_serverless()
    config["provider"]["httpApi"]["cors"] = cors
    if cors is None:
        del config["provider"]["httpApi"]["cors"]
    path = tmp_path / "serverless.yml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_cors_true_means_what_osls_deploys(tmp_path: Path) -> None:
    cors = cors_from_serverless(write_serverless(tmp_path, True))

    assert cors is not None
    assert cors.allowed_origins == ("*",) and cors.allowed_headers == DEFAULT_CORS_HEADERS
    assert cors.allowed_methods == ("OPTIONS", "DELETE", "GET", "POST")  # OPTIONS and every routed method
    assert cors.preflight({"origin": "https://any.example"}).headers["access-control-allow-origin"] == "*"


def test_cors_restricted_to_the_pages_origin(tmp_path: Path) -> None:
    # GIVEN the object form, its origin from a parameter (serverless.yml's params.default)
    config = read_serverless()
    config.setdefault("params", {}).setdefault("default", {})["pageOrigin"] = PAGE_ORIGIN
    config["provider"]["httpApi"]["cors"] = {
        "allowedOrigins": ["${param:pageOrigin}"],
        "allowCredentials": True,
        "maxAge": 600,
    }
    path = tmp_path / "serverless.yml"
    path.write_text(yaml.safe_dump(config))

    cors = cors_from_serverless(path)

    assert cors is not None and cors.allowed_origins == (PAGE_ORIGIN,)
    allowed = cors.preflight({"origin": PAGE_ORIGIN}).headers
    assert allowed["access-control-allow-origin"] == PAGE_ORIGIN
    assert allowed["access-control-allow-credentials"] == "true" and allowed["access-control-max-age"] == "600"
    assert cors.preflight({"origin": "https://evil.example"}).headers == {}


def test_no_cors_configuration_means_no_preflight_answer(tmp_path: Path) -> None:
    assert cors_from_serverless(write_serverless(tmp_path, None)) is None
    assert Gateway([]).dispatch("OPTIONS", "/api/video/library", "", {"origin": PAGE_ORIGIN}, b"").status == 404


def test_make_dev_uses_the_webhook_secret_it_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIAPI_WEBHOOK_SECRET", "from-the-environment")
    given = StackConfig.from_environment()
    monkeypatch.delenv("PIAPI_WEBHOOK_SECRET")
    default = StackConfig.from_environment()

    assert given.webhook_secret == "from-the-environment"
    assert default.webhook_secret == DEV_WEBHOOK_SECRET
