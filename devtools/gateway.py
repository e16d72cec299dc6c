"""A local API Gateway (HTTP API, payload format 2.0) in front of the real handler functions.

Routes are read from ``serverless.yml`` (``functions.*.events[].httpApi``) so the two cannot drift apart.
Each request becomes the event AWS would send (path parameters, query, headers, cookies, base64 bodies),
routes with the JWT authorizer need ``Authorization: Bearer <token>`` (see ``local_jwt``), and the handler's
answer is turned back into HTTP as API Gateway does. As in Lambda, one function handles one event at a time
(the handlers' Powertools resolvers keep the current event on a module-level object).

As API Gateway does, a request that has no answer after 30 s (``INTEGRATION_TIMEOUT_S``, which an HTTP API
cannot raise) gets ``503 {"message": "Service Unavailable"}`` while the function carries on to its own end.
"""

from __future__ import annotations

import base64
import importlib
import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import yaml

from devtools.apigw import http_api_event
from devtools.lambda_context import LocalLambdaContext
from devtools.local_jwt import InvalidToken, verify

ROOT = Path(__file__).resolve().parent.parent
Handler = Callable[[dict[str, Any], Any], Any]
# API Gateway HTTP APIs end every integration at 30 s, and that cannot be raised.
INTEGRATION_TIMEOUT_S = 30.0
# API Gateway's own answers, given before or instead of the function's: {"message": <this>}.
GATEWAY_MESSAGES = {
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    413: "Request Entity Too Large",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class _CloudFormationLoader(yaml.SafeLoader):
    """Reads serverless.yml, whose CloudFormation tags (!Ref, !GetAtt, ...) mean nothing locally."""


_CloudFormationLoader.add_multi_constructor("!", lambda loader, suffix, node: None)


@dataclass
class Route:
    method: str
    path: str  # API Gateway's template, e.g. /api/video/{video_id}
    function: str
    handler: str  # serverless.yml's handler, e.g. functions/x/handler.handler
    authorized: bool
    timeout_s: float
    memory_mb: int
    pattern: re.Pattern[str] = field(init=False)

    def __post_init__(self) -> None:
        regex = ""
        for piece in re.split(r"(\{[^}]+\})", self.path):
            if piece.startswith("{") and piece.endswith("+}"):
                regex += f"(?P<{piece[1:-2]}>.+)"
            elif piece.startswith("{"):
                regex += f"(?P<{piece[1:-1]}>[^/]+)"
            else:
                regex += re.escape(piece)
        self.pattern = re.compile(f"^{regex}$")

    @property
    def route_key(self) -> str:
        return f"{self.method} {self.path}"


def read_serverless(path: Path = ROOT / "serverless.yml") -> dict[str, Any]:
    """serverless.yml with ``${param:name}`` resolved from ``params.default`` (CloudFormation tags dropped)."""
    config: dict[str, Any] = yaml.load(path.read_text(), Loader=_CloudFormationLoader)  # noqa: S506 (SafeLoader)
    defaults = (config.get("params") or {}).get("default") or {}

    def resolve(value: Any) -> Any:
        if isinstance(value, dict):
            return {key: resolve(item) for key, item in value.items()}
        if isinstance(value, list):
            return [resolve(item) for item in value]
        if isinstance(value, str) and (found := re.fullmatch(r"\$\{param:(\w+)\}", value)):
            return defaults.get(found.group(1), value)
        return value

    resolved: dict[str, Any] = resolve(config)
    return resolved


@dataclass(frozen=True)
class FunctionConfig:
    name: str
    handler: str
    timeout_s: float
    memory_mb: int
    events: list[Any]


def function_config(name: str, path: Path = ROOT / "serverless.yml") -> FunctionConfig:
    """One function of serverless.yml as Lambda would run it (timeout and memory with the provider's defaults)."""
    config = read_serverless(path)
    provider = config.get("provider", {})
    function = config["functions"][name]
    return FunctionConfig(
        name=name,
        handler=function["handler"],
        timeout_s=float(function.get("timeout", provider.get("timeout", 6))),
        memory_mb=int(function.get("memorySize", provider.get("memorySize", 1024))),
        events=list(function.get("events") or []),
    )


def routes_from_serverless(path: Path = ROOT / "serverless.yml") -> list[Route]:
    config = read_serverless(path)
    provider = config.get("provider", {})
    routes = []
    for name, function in (config.get("functions") or {}).items():
        for event in function.get("events") or []:
            http = event.get("httpApi") if isinstance(event, dict) else None
            if not isinstance(http, dict):
                continue
            routes.append(
                Route(
                    method=str(http["method"]).upper(),
                    path=str(http["path"]),
                    function=name,
                    handler=function["handler"],
                    authorized="authorizer" in http,
                    timeout_s=float(function.get("timeout", provider.get("timeout", 29))),
                    memory_mb=int(function.get("memorySize", provider.get("memorySize", 1024))),
                )
            )
    # Literal paths win over templated ones, as in API Gateway.
    return sorted(routes, key=lambda r: r.path.count("{"))


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    cookies: list[str] = field(default_factory=list)


def _json_answer(status: int, body: object) -> Answer:
    return Answer(status, {"content-type": "application/json"}, json.dumps(body).encode())


def gateway_answer(status: int) -> Answer:
    """One of API Gateway's own answers."""
    return _json_answer(status, {"message": GATEWAY_MESSAGES[status]})


class Gateway:
    def __init__(
        self, routes: list[Route], *, jwt_secret: str | None = None, timeout_s: float = INTEGRATION_TIMEOUT_S
    ) -> None:
        self.routes = routes
        self.jwt_secret = jwt_secret
        self.timeout_s = timeout_s
        self.dev_routes: dict[tuple[str, str], Callable[[dict[str, Any]], Answer]] = {}
        # (method, path) -> an answer for what no route matches, e.g. static files (devtools.static_files)
        self.fallback: Callable[[str, str], Answer | None] | None = None
        self._handlers: dict[str, Handler] = {}
        self._locks: dict[str, threading.Lock] = {route.function: threading.Lock() for route in routes}

    def handler_of(self, route: Route) -> Handler:
        if route.function not in self._handlers:
            module_path, _, attribute = route.handler.rpartition(".")
            module = importlib.import_module(module_path.replace("/", "."))
            self._handlers[route.function] = getattr(module, attribute)
        return self._handlers[route.function]

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        for route in self.routes:
            if route.method in (method, "ANY") and (found := route.pattern.match(path)):
                return route, {k: unquote(v) for k, v in found.groupdict().items()}
        return None

    def dispatch(self, method: str, path: str, query: str, headers: dict[str, str], body: bytes) -> Answer:
        dev_route = self.dev_routes.get((method, path))
        if dev_route is not None:
            return dev_route({"query": query, "headers": headers, "body": body})
        matched = self.match(method, path)
        if matched is None:
            fallback = self.fallback(method, path) if self.fallback is not None else None
            return fallback or gateway_answer(404)
        route, path_parameters = matched
        claims = None
        if route.authorized:
            try:
                claims = verify(headers.get("authorization"), secret=self.jwt_secret)
            except InvalidToken:
                return gateway_answer(401)
        event = http_api_event(
            method,
            path,
            route_key=route.route_key,
            body=body if body else None,
            headers=headers,
            query=query,
            path_parameters=path_parameters or None,
            claims=claims,
        )
        context = LocalLambdaContext(
            function_name=f"video-library-dev-{route.function}",
            memory_limit_in_mb=route.memory_mb,
            timeout_s=route.timeout_s,
        )
        outcome: list[Answer] = []
        done = threading.Event()

        def invoke() -> None:
            with self._locks[route.function]:
                try:
                    outcome.append(to_answer(self.handler_of(route)(event, context)))
                except Exception:  # as API Gateway answers when the function fails
                    import traceback

                    traceback.print_exc()
                    outcome.append(gateway_answer(500))
                finally:
                    done.set()

        threading.Thread(target=invoke, name=f"invoke-{route.function}", daemon=True).start()
        if not done.wait(self.timeout_s):
            # The function is not stopped: on AWS it runs on to its own timeout, its answer thrown away.
            return gateway_answer(503)
        return outcome[0]


def to_answer(result: Any) -> Answer:
    """Payload format 2.0: a dict with statusCode is a full answer; anything else is a 200 JSON body."""
    if not (isinstance(result, dict) and "statusCode" in result):
        return _json_answer(200, result)
    headers = {k.lower(): str(v) for k, v in (result.get("headers") or {}).items()}
    for key, values in (result.get("multiValueHeaders") or {}).items():
        headers[key.lower()] = ", ".join(map(str, values))
    raw = result.get("body") or ""
    body = base64.b64decode(raw) if result.get("isBase64Encoded") else str(raw).encode()
    return Answer(int(result["statusCode"]), headers, body, list(result.get("cookies") or []))


class _RequestHandler(BaseHTTPRequestHandler):
    server: GatewayServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        self.server.access_log(f"{self.command} {self.path} -> {args[1] if len(args) > 1 else ''}")

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        path, _, query = self.path.partition("?")
        headers = {k.lower(): v for k, v in self.headers.items()}
        answer = self.server.gateway.dispatch(self.command, path, query, headers, body)
        self.send_response(answer.status)
        for key, value in answer.headers.items():
            if key not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(key, value)
        for cookie in answer.cookies:
            self.send_header("set-cookie", cookie)
        self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(answer.body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle


class GatewayServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, gateway: Gateway, host: str, port: int, access_log: Callable[[str], None]) -> None:
        super().__init__((host, port), _RequestHandler)
        self.gateway = gateway
        self.access_log = access_log
