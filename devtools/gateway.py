"""A local API Gateway (HTTP API, payload format 2.0) in front of the real handler functions.

Routes are read from ``serverless.yml`` (``functions.*.events[].httpApi``) so the two cannot drift apart.
Each request becomes the event AWS would send (path parameters, query, headers, cookies, base64 bodies),
routes with the JWT authorizer need ``Authorization: Bearer <token>`` (see ``local_jwt``), and the handler's
answer is turned back into HTTP as API Gateway does. As in Lambda, one function handles one event at a time
(the handlers' Powertools resolvers keep the current event on a module-level object).

As API Gateway does, a request that has no answer after 30 s (``INTEGRATION_TIMEOUT_S``, which an HTTP API
cannot raise) gets ``503 {"message": "Service Unavailable"}`` while the function carries on to its own end; a
request whose framing is broken (a ``Content-Length`` that is not one non-negative number, or that the body never
reaches, or one beside ``Transfer-Encoding``) gets ``400 {"message": "Bad Request"}`` and the connection is
closed; a body over API Gateway's 10 MB gets 413. With ``httpApi.cors`` in serverless.yml, CORS preflights
(``OPTIONS``) are answered by the gateway itself and allowed origins get ``Access-Control-*`` headers on every
answer, as API Gateway's CORS configuration does.
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
# API Gateway HTTP APIs take request bodies of at most 10 MB.
MAX_PAYLOAD_BYTES = 10 * 1024 * 1024
# How long a declared body may take to arrive before the request is refused as malformed.
BODY_READ_TIMEOUT_S = 10.0
_CHUNK_SIZE = re.compile(rb"[0-9a-fA-F]{1,16}")
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


# What `httpApi.cors: true` means to osls (lib/plugins/aws/package/compile/events/http-api.js): any origin,
# these headers, and OPTIONS plus every routed method.
DEFAULT_CORS_HEADERS = (
    "Content-Type",
    "X-Amz-Date",
    "Authorization",
    "X-Api-Key",
    "X-Amz-Security-Token",
    "X-Amz-User-Agent",
    "X-Amzn-Trace-Id",
)


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    return [str(item) for item in (value if isinstance(value, list) else [value])]


@dataclass(frozen=True)
class CorsConfig:
    """An HTTP API's CORS configuration (CloudFormation's CorsConfiguration, as osls builds it)."""

    allowed_origins: tuple[str, ...]
    allowed_headers: tuple[str, ...]
    allowed_methods: tuple[str, ...]
    allow_credentials: bool = False
    exposed_headers: tuple[str, ...] = ()
    max_age_s: int | None = None

    def allows(self, origin: str | None) -> bool:
        if not origin:
            return False
        return "*" in self.allowed_origins or origin.lower() in {o.lower() for o in self.allowed_origins}

    def _origin_header(self, origin: str) -> str:
        # "*" may not be combined with credentials: a browser then needs its own origin back.
        return "*" if "*" in self.allowed_origins and not self.allow_credentials else origin

    def preflight(self, headers: dict[str, str]) -> Answer:
        """API Gateway answers every OPTIONS itself when CORS is configured; headers only for an allowed origin."""
        origin = headers.get("origin")
        answer = Answer(204, {}, b"")
        if not self.allows(origin):
            return answer
        assert origin is not None
        answer.headers.update(
            {
                "access-control-allow-origin": self._origin_header(origin),
                "access-control-allow-methods": ",".join(self.allowed_methods),
                "access-control-allow-headers": ",".join(self.allowed_headers),
            }
        )
        if self.allow_credentials:
            answer.headers["access-control-allow-credentials"] = "true"
        if self.max_age_s is not None:
            answer.headers["access-control-max-age"] = str(self.max_age_s)
        return answer

    def decorate(self, answer: Answer, headers: dict[str, str]) -> Answer:
        """The headers API Gateway adds to an answer for a request from an allowed origin."""
        origin = headers.get("origin")
        if not self.allows(origin):
            return answer
        assert origin is not None
        answer.headers["access-control-allow-origin"] = self._origin_header(origin)
        if self.allow_credentials:
            answer.headers["access-control-allow-credentials"] = "true"
        if self.exposed_headers:
            answer.headers["access-control-expose-headers"] = ",".join(self.exposed_headers)
        return answer


def cors_from_serverless(path: Path = ROOT / "serverless.yml") -> CorsConfig | None:
    """``provider.httpApi.cors`` of serverless.yml (``true`` or osls's object form); None when CORS is off."""
    config = read_serverless(path)
    cors = ((config.get("provider") or {}).get("httpApi") or {}).get("cors")
    if not cors:
        return None
    settings: dict[str, Any] = cors if isinstance(cors, dict) else {}
    methods = _as_list(settings.get("allowedMethods"))
    if not methods:  # osls: OPTIONS and every method a route uses
        methods = ["OPTIONS", *sorted({route.method for route in routes_from_serverless(path)})]
    max_age = settings.get("maxAge")
    return CorsConfig(
        allowed_origins=tuple(_as_list(settings.get("allowedOrigins")) or ["*"]),
        allowed_headers=tuple(_as_list(settings.get("allowedHeaders")) or DEFAULT_CORS_HEADERS),
        allowed_methods=tuple(methods),
        allow_credentials=bool(settings.get("allowCredentials")),
        exposed_headers=tuple(_as_list(settings.get("exposedResponseHeaders"))),
        max_age_s=int(max_age) if max_age is not None else None,
    )


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
        self,
        routes: list[Route],
        *,
        jwt_secret: str | None = None,
        timeout_s: float = INTEGRATION_TIMEOUT_S,
        cors: CorsConfig | None = None,
    ) -> None:
        self.routes = routes
        self.jwt_secret = jwt_secret
        self.timeout_s = timeout_s
        self.cors = cors
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
        """The answer to one request (``headers`` with lower-case names), CORS headers included."""
        if self.cors is None:
            return self._answer(method, path, query, headers, body)
        if method == "OPTIONS":
            return self.cors.preflight(headers)
        return self.cors.decorate(self._answer(method, path, query, headers, body), headers)

    def _answer(self, method: str, path: str, query: str, headers: dict[str, str], body: bytes) -> Answer:
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
        # A request line too broken to parse leaves no command or path.
        request = f"{getattr(self, 'command', None) or '-'} {getattr(self, 'path', None) or '-'}"
        self.server.access_log(f"{request} -> {args[1] if len(args) > 1 else ''}")

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """What the standard library refuses by itself (a broken request line or header, an unknown method) is
        answered in API Gateway's shape, as JSON, not as an HTML page."""
        self.close_connection = True
        self._send(gateway_answer(code) if code in GATEWAY_MESSAGES else _json_answer(code, {"message": message}))

    def _handle(self) -> None:
        try:
            body = self._read_body()
        except _Refused as refused:
            self.close_connection = True  # the stream's framing is unknown from here on
            self._send(gateway_answer(refused.status))
            return
        path, _, query = self.path.partition("?")
        headers = {k.lower(): v for k, v in self.headers.items()}
        self._send(self.server.gateway.dispatch(self.command, path, query, headers, body))

    def _read_body(self) -> bytes:
        lengths = self.headers.get_all("Content-Length") or []
        encodings = self.headers.get_all("Transfer-Encoding") or []
        if encodings:
            if lengths:  # RFC 9112 6.1: a message with both is a smuggling attempt or a broken client
                raise _Refused(400)
            if [e.strip().lower() for e in ",".join(encodings).split(",")] != ["chunked"]:
                raise _Refused(400)
            return self._read_chunked()
        if not lengths:
            return b""
        values = {value.strip() for value in ",".join(lengths).split(",")}
        if len(values) != 1 or not (value := values.pop()).isascii() or not value.isdigit():
            raise _Refused(400)
        length = int(value)
        if length > self.server.max_payload_bytes:
            raise _Refused(413)
        return self._read_exactly(length)

    def _read_exactly(self, length: int) -> bytes:
        self.connection.settimeout(self.server.body_read_timeout_s)
        try:
            body = self.rfile.read(length) if length else b""
        except TimeoutError:  # the body never reached its announced length
            raise _Refused(400) from None
        finally:
            self.connection.settimeout(None)
        if len(body) != length:  # the client closed before sending it all
            raise _Refused(400)
        return body

    def _read_chunked(self) -> bytes:
        chunks: list[bytes] = []
        total = 0
        while True:
            size_line = self._read_line()
            size_text = size_line.split(b";", 1)[0].strip()
            if not _CHUNK_SIZE.fullmatch(size_text):
                raise _Refused(400)
            size = int(size_text, 16)
            total += size
            if total > self.server.max_payload_bytes:
                raise _Refused(413)
            if size == 0:
                while self._read_line() not in (b"", b"\r\n", b"\n"):  # trailer fields, ignored
                    continue
                return b"".join(chunks)
            chunks.append(self._read_exactly(size))
            if self._read_line() not in (b"\r\n", b"\n"):
                raise _Refused(400)

    def _read_line(self) -> bytes:
        self.connection.settimeout(self.server.body_read_timeout_s)
        try:
            line = self.rfile.readline(65537)
        except TimeoutError:
            raise _Refused(400) from None
        finally:
            self.connection.settimeout(None)
        if not line or len(line) > 65536:
            raise _Refused(400)
        return line

    def _send(self, answer: Answer) -> None:
        self.send_response(answer.status)
        for key, value in answer.headers.items():
            if key not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(key, value)
        for cookie in answer.cookies:
            self.send_header("set-cookie", cookie)
        if answer.status != 204:  # RFC 9110 8.6: never on a 204
            self.send_header("Content-Length", str(len(answer.body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(answer.body)

    def __getattr__(self, name: str) -> Any:
        # Every method goes through the routes (the library answers 501 to any it has no do_<METHOD> for): one no
        # route takes gets API Gateway's 404, whatever its name (TRACE, QUERY, ...).
        if name.startswith("do_"):
            return self._handle
        raise AttributeError(name)


class _Refused(Exception):
    """A request the gateway refuses by itself, before any route (API Gateway's own answer)."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class GatewayServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self,
        gateway: Gateway,
        host: str,
        port: int,
        access_log: Callable[[str], None],
        *,
        body_read_timeout_s: float = BODY_READ_TIMEOUT_S,
        max_payload_bytes: int = MAX_PAYLOAD_BYTES,
    ) -> None:
        super().__init__((host, port), _RequestHandler)
        self.gateway = gateway
        self.access_log = access_log
        self.body_read_timeout_s = body_read_timeout_s
        self.max_payload_bytes = max_payload_bytes
