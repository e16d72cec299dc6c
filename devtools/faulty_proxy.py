"""A reverse proxy that breaks the wire on purpose, between our code and moto (``devtools.local_aws``).

``FaultyProxy(upstream_url)`` listens on 127.0.0.1 and a free port (``.url``) and forwards every request to
the upstream unchanged: HTTP/1.1, keep-alive, bodies streamed both ways through a bounded buffer (uploads of
hundreds of MiB pass through it), ``Content-Length`` and chunked bodies alike. Rules added at run time make
chosen requests fail the ways real services and networks fail:

| action | what the client sees |
|---|---|
| ``respond(status, body, headers)`` | that answer; the request never reaches the upstream |
| ``s3_slow_down()``, ``s3_internal_error()`` | S3's ``503 SlowDown``, ``500 InternalError`` |
| ``too_many_requests()`` | R2's ``429`` |
| ``dynamodb_throughput_exceeded()``, ``dynamodb_throttling()`` | DynamoDB's throttling answers (400, ``__type``) |
| ``reset(after_bytes=None)`` | the connection reset (RST) after the whole request, or after N bytes of its body |
| ``lose_answer()`` | the upstream applies the request, then the connection drops without the answer |
| ``stall(seconds=None, after_bytes=0, then="close")`` | silence for N seconds (``None``: until ``clear()`` or |
| | ``stop()``) after the head and N body bytes, then a reset (or the request forwarded) |
| ``delay(seconds)`` | the request forwarded late |

A rule matches on method, path substring, query substring (and one that must be absent), query parameters and
a header value (``Match``; ``s3_put_object()``, ``s3_upload_part()``, ``dynamodb("UpdateItem")``... name the
usual ones). It fires ``times`` times (``None``: always) and, with ``probability``, on a coin drawn from its own
``random.Random(seed)``, so a run is repeatable. The first rule that fires decides; a request no rule fires
on is forwarded. The proxy logs every request it sees (``.log``: method, path, query, headers without
credentials, the connection it came on, the rule that fired, the status the upstream and the client got).

Example (moto behind the proxy; botocore retries the 503 and the object lands)::

    with LocalAws() as aws, FaultyProxy(aws.url) as proxy:
        aws.client("s3").create_bucket(Bucket="videos")
        rule = proxy.add_rule(s3_put_object("campaigns/"), s3_slow_down())
        s3 = boto3.client("s3", endpoint_url=proxy.url, region_name="auto",
                          aws_access_key_id="local", aws_secret_access_key="local")
        s3.put_object(Bucket="videos", Key="campaigns/42/videos/1.mp4", Body=b"...")
        assert rule.fired == 1
        assert [r.client_status for r in proxy.requests(s3_put_object("campaigns/"))] == [503, 200]

In tests, the ``faults`` fixture (``tests/save_support.py``) is this proxy in front of the session's
``local_aws``: set ``R2_ENDPOINT_URL`` and/or ``DYNAMODB_ENDPOINT_URL`` to ``faults.url``. A rule that names
no count fires once; ``times=None`` makes a fault permanent, e.g.
``faults.add_rule(dynamodb("UpdateItem"), stall(), times=None)`` for a DynamoDB that stops answering.

Answers the proxy makes up itself (``respond``) to a request that announced ``Expect: 100-continue`` are sent
before the body, as S3 does, and the connection is then closed; the client sends no body. Otherwise the
proxy says ``100 Continue`` itself when it starts reading a body. Only plain http upstreams are supported.
"""

from __future__ import annotations

import http.client
import io
import random
import select
import socket
import struct
import threading
import zlib
from collections.abc import Iterator, Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socketserver import TCPServer
from typing import ClassVar, Literal
from urllib.parse import parse_qsl, urlsplit

CHUNK = 256 * 1024  # the most body bytes held at once, per connection and direction
_MAX_LINE = 64 * 1024
_BACKSTOP_TIMEOUT_S = 10.0  # for reading what a client may never send after an early answer
_JOIN_TIMEOUT_S = 5.0
# Headers that describe one connection, not the message: never passed across the proxy.
_HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-connection", "te", "upgrade"})
_HOP_BY_HOP_ANSWER = _HOP_BY_HOP | {"transfer-encoding", "trailer"}
_SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "x-amz-security-token", "cookie"})


# ---------------------------------------------------------------------------------------------------------------
# Which requests a rule applies to


@dataclass(frozen=True)
class Match:
    """Requests with this method (any when None), whose path contains ``path_has``, whose query string contains
    ``query_has`` and not ``query_lacks`` and has each ``(name, value)`` of ``params``, and carrying header
    ``header[0]`` with exactly the value ``header[1]``."""

    method: str | None = None
    path_has: str = ""
    query_has: str = ""
    query_lacks: str | None = None
    header: tuple[str, str] | None = None
    params: tuple[tuple[str, str], ...] = ()

    def matches(self, method: str, path: str, query: str, headers: Mapping[str, str]) -> bool:
        if self.method is not None and method.upper() != self.method.upper():
            return False
        if self.path_has not in path or self.query_has not in query:
            return False
        if self.query_lacks is not None and self.query_lacks in query:
            return False
        if self.params and not set(self.params) <= set(parse_qsl(query, keep_blank_values=True)):
            return False
        if self.header is not None:
            name, value = self.header
            return headers.get(name.lower()) == value
        return True


def s3_put_object(key_has: str = "") -> Match:
    """PutObject (a PUT that is not part of a multipart upload) on a path containing ``key_has``."""
    return Match("PUT", key_has, query_lacks="uploadId=")


def s3_create_multipart_upload(key_has: str = "") -> Match:
    return Match("POST", key_has, query_has="uploads")


def s3_upload_part(key_has: str = "", part_number: int | None = None) -> Match:
    """UploadPart; with ``part_number``, only that part."""
    params = () if part_number is None else (("partNumber", str(part_number)),)
    return Match("PUT", key_has, query_has="partNumber=", params=params)


def s3_complete_multipart_upload(key_has: str = "") -> Match:
    return Match("POST", key_has, query_has="uploadId=", query_lacks="partNumber=")


def s3_abort_multipart_upload(key_has: str = "") -> Match:
    return Match("DELETE", key_has, query_has="uploadId=")


def dynamodb(operation: str) -> Match:
    """One DynamoDB operation, e.g. ``dynamodb("UpdateItem")`` (told apart by the ``X-Amz-Target`` header)."""
    return Match("POST", header=("x-amz-target", f"DynamoDB_20120810.{operation}"))


# ---------------------------------------------------------------------------------------------------------------
# What a rule does


@dataclass(frozen=True)
class Respond:
    status: int
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    kind: ClassVar[str] = "respond"


@dataclass(frozen=True)
class Reset:
    after_bytes: int | None = None  # None: after the whole request
    kind: ClassVar[str] = "reset"


@dataclass(frozen=True)
class LoseAnswer:
    kind: ClassVar[str] = "lose_answer"


@dataclass(frozen=True)
class Stall:
    seconds: float | None = None  # None: until clear() or stop()
    after_bytes: int = 0
    then: Literal["close", "forward"] = "close"
    kind: ClassVar[str] = "stall"


@dataclass(frozen=True)
class Delay:
    seconds: float
    kind: ClassVar[str] = "delay"


Action = Respond | Reset | LoseAnswer | Stall | Delay


def respond(status: int, body: bytes = b"", headers: Mapping[str, str] | None = None) -> Respond:
    return Respond(status, body, tuple((headers or {}).items()))


def _s3_error(status: int, code: str, message: str) -> Respond:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message>"
        "<RequestId>FAULTYPROXY0001</RequestId><HostId>faulty-proxy</HostId></Error>"
    ).encode()
    return respond(status, body, {"Content-Type": "application/xml", "x-amz-request-id": "FAULTYPROXY0001"})


def s3_slow_down() -> Respond:
    """S3's ``503 SlowDown``: botocore retries it (a throttling error in every retry mode)."""
    return _s3_error(503, "SlowDown", "Please reduce your request rate.")


def s3_internal_error() -> Respond:
    return _s3_error(500, "InternalError", "We encountered an internal error. Please try again.")


def too_many_requests() -> Respond:
    """R2's answer to too many requests: 429. botocore classifies a 429 by its status, whatever the code."""
    return _s3_error(429, "TooManyRequests", "Reduce your concurrent request rate for the same object.")


def _dynamodb_error(error_type: str, message: str) -> Respond:
    body = f'{{"__type":"{error_type}","message":"{message}"}}'.encode()
    return respond(
        400,
        body,
        {
            "Content-Type": "application/x-amz-json-1.0",
            "x-amzn-RequestId": "FAULTYPROXY0000000000000000000000000000000000000000",
            "x-amzn-ErrorType": f"{error_type.rsplit('#', 1)[-1]}:",
            # botocore checks DynamoDB bodies against this header and retries a mismatch as corruption.
            "x-amz-crc32": str(zlib.crc32(body)),
        },
    )


def dynamodb_throughput_exceeded() -> Respond:
    return _dynamodb_error(
        "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
        "The level of configured provisioned throughput for the table was exceeded. "
        "Consider increasing your provisioning level with the UpdateTable API.",
    )


def dynamodb_throttling() -> Respond:
    return _dynamodb_error(
        "com.amazon.coral.availability#ThrottlingException", "Rate of requests exceeds the allowed throughput."
    )


def reset(after_bytes: int | None = None) -> Reset:
    return Reset(after_bytes)


def lose_answer() -> LoseAnswer:
    return LoseAnswer()


def stall(seconds: float | None = None, *, after_bytes: int = 0, then: Literal["close", "forward"] = "close") -> Stall:
    return Stall(seconds, after_bytes, then)


def delay(seconds: float) -> Delay:
    return Delay(seconds)


# ---------------------------------------------------------------------------------------------------------------
# Rules and the log


@dataclass(eq=False)
class Rule:
    match: Match
    action: Action
    times: int | None
    probability: float | None
    name: str
    seed: int
    skip: int = 0  # matching requests let through before the rule starts firing
    fired: int = 0
    skipped: int = 0
    _coin: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._coin = random.Random(self.seed)  # noqa: S311 (a repeatable test schedule, not a secret)

    def _fires(self) -> bool:
        if self.skipped < self.skip:
            self.skipped += 1
            return False
        if self.times is not None and self.fired >= self.times:
            return False
        if self.probability is not None and self._coin.random() >= self.probability:
            return False
        self.fired += 1
        return True


@dataclass(eq=False)
class SeenRequest:
    method: str
    path: str
    query: str
    headers: dict[str, str]  # lower-case names; credentials left out
    connection: int  # the client connection it came on, numbered from 1
    rule: str | None = None
    action: str | None = None
    upstream_status: int | None = None  # None: not forwarded, or no answer came back
    client_status: int | None = None  # None: the client got no answer


class _Released(Exception):
    """A stall or delay ended by ``clear()`` or ``stop()``: the request is dropped, never forwarded late."""


class _BadFraming(Exception):
    pass


# ---------------------------------------------------------------------------------------------------------------
# The request body, read in its own framing


class _RequestBody:
    """Yields the client's body exactly as it came on the wire (a chunked body keeps its framing), at most
    ``CHUNK`` bytes at a time, while counting the payload bytes."""

    def __init__(self, rfile: io.BufferedIOBase, length: int | None) -> None:
        self._rfile = rfile
        self._chunked = length is None
        self._left_in_chunk = length or 0
        self.finished = length == 0
        self.payload_bytes = 0

    def pieces(self, upto: int | None = None) -> Iterator[bytes]:
        """Until the body ends, or until ``upto`` payload bytes have been read in all."""
        while not self.finished and (upto is None or self.payload_bytes < upto):
            if self._left_in_chunk == 0:
                yield self._next_chunk_header()
                continue
            want = min(CHUNK, self._left_in_chunk)
            if upto is not None:
                want = min(want, upto - self.payload_bytes)
            data = self._rfile.read(want)
            if not data:
                raise ConnectionAbortedError("the client closed the connection in the middle of a body")
            self._left_in_chunk -= len(data)
            self.payload_bytes += len(data)
            if self._left_in_chunk == 0:
                if self._chunked:
                    end = self._rfile.read(2)
                    if end != b"\r\n":
                        raise _BadFraming("a chunk does not end with CRLF")
                    data += end
                else:
                    self.finished = True
            yield data

    def drain(self) -> None:
        for _ in self.pieces():
            pass

    def _next_chunk_header(self) -> bytes:
        line = self._readline()
        try:
            size = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise _BadFraming("a chunk size is not a hex number") from None
        if size < 0:
            raise _BadFraming("a chunk size is negative")
        if size > 0:
            self._left_in_chunk = size
            return line
        framing = line
        while True:  # the trailer section, up to and including its empty line
            trailer_line = self._readline()
            framing += trailer_line
            if trailer_line in (b"\r\n", b"\n"):
                self.finished = True
                return framing

    def _readline(self) -> bytes:
        line = self._rfile.readline(_MAX_LINE + 1)
        if not line:
            raise ConnectionAbortedError("the client closed the connection in the middle of a body")
        if len(line) > _MAX_LINE or not line.endswith(b"\n"):
            raise _BadFraming("a chunk line is too long")
        return line


# ---------------------------------------------------------------------------------------------------------------
# The proxy


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # stop() ends and joins the handlers itself

    def __init__(self, address: tuple[str, int], proxy: FaultyProxy) -> None:
        self.proxy = proxy
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind looks the host name up in DNS; nothing here needs it.
        TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def shutdown_request(self, request: socket.socket) -> None:  # type: ignore[override]
        if self.proxy._take_reset(request):
            # No shutdown(SHUT_WR) first: that would send a FIN before the RST that SO_LINGER 0 makes.
            self.close_request(request)
        else:
            super().shutdown_request(request)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        # An answer goes out as a head and a body: with Nagle's algorithm the second write would wait for the
        # client's delayed ACK (40 ms) on every request.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._upstream: http.client.HTTPConnection | None = None
        self._expect_continue = False
        self._answer_started = False
        self.connection_number = self.server.proxy._register(self)

    def handle(self) -> None:
        if self.connection_number is None:  # accepted while the proxy was stopping
            return
        try:
            super().handle()
        except (OSError, http.client.HTTPException, _BadFraming):
            # The client went away, the upstream did, or stop() shut the sockets: this connection is over.
            self.close_connection = True
        finally:
            self._close_upstream()
            self.server.proxy._unregister(self)

    def log_message(self, format: str, *args: object) -> None:  # tests read .log, not stderr
        return

    def handle_expect_100(self) -> bool:
        # Deferred: an answer made up by a rule goes out before the body, as S3 answers an error.
        self._expect_continue = True
        return True

    def parse_request(self) -> bool:
        self._expect_continue = False
        self._answer_started = False
        return super().parse_request()

    def do_GET(self) -> None:
        self._proxy_one_request()

    do_HEAD = do_PUT = do_POST = do_DELETE = do_PATCH = do_OPTIONS = do_GET

    # -- one request --------------------------------------------------------------------------------------------

    def _proxy_one_request(self) -> None:
        target = urlsplit(self.path)
        path, query = target.path, target.query
        body = self._request_body()
        if body is None:
            return
        headers = {name.lower(): value for name, value in self.headers.items()}
        entry, rule, release = self.server.proxy._note(self.command, path, query, headers, self.connection_number)
        action = rule.action if rule is not None else None
        try:
            if isinstance(action, Respond):
                self._answer_made_up(action, body, entry)
            elif isinstance(action, Reset):
                self._discard_body(body, action.after_bytes)
                self._reset_connection()
            elif isinstance(action, Stall):
                self._stall(action, body, entry, release)
            elif isinstance(action, Delay):
                self._wait(action.seconds, release)
                self._forward(body, entry)
            else:
                self._forward(body, entry, lose_answer=isinstance(action, LoseAnswer))
        except _Released:
            self._close_upstream()  # it may hold half a request
            self._reset_connection()
        except (OSError, http.client.HTTPException, ValueError) as error:
            self._upstream_failed(error, entry)

    def _request_body(self) -> _RequestBody | None:
        encoding = self.headers.get("Transfer-Encoding")
        length_header = self.headers.get("Content-Length")
        if encoding is not None:
            if encoding.strip().lower() != "chunked":
                self._answer_error(501, "only chunked transfer coding is supported")
                return None
            return _RequestBody(self.rfile, None)
        if length_header is None:
            return _RequestBody(self.rfile, 0)
        if not length_header.strip().isdigit():
            self._answer_error(400, "Content-Length is not a number")
            return None
        return _RequestBody(self.rfile, int(length_header))

    def _discard_body(self, body: _RequestBody, upto: int | None = None) -> None:
        """Read (all, or ``upto`` payload bytes of) the body and drop it."""
        if body.finished or upto == 0:
            return
        self._send_continue()
        for _ in body.pieces(upto):
            pass

    def _send_continue(self) -> None:
        if self._expect_continue:
            self._expect_continue = False
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def _answer_made_up(self, action: Respond, body: _RequestBody, entry: SeenRequest) -> None:
        early = self._expect_continue and not body.finished
        if not early:
            body.drain()  # read to the end, so the connection can carry the next request
        headers = [*action.headers, ("Content-Length", str(len(action.body)))]
        if early:
            self.close_connection = True
        entry.client_status = action.status  # before the answer leaves: the client may read the log at once
        self._send_head(action.status, headers)
        if self.command != "HEAD":
            self.wfile.write(action.body)
        if early:
            self._lingering_close(body)

    def _lingering_close(self, body: _RequestBody) -> None:
        """Close after an early answer without a reset: reading what the client may still send, until it
        closes, keeps the kernel from answering its bytes with an RST that could destroy our answer."""
        with suppress(OSError, _BadFraming):
            self.connection.shutdown(socket.SHUT_WR)
            self.connection.settimeout(_BACKSTOP_TIMEOUT_S)
            body.drain()

    def _stall(self, action: Stall, body: _RequestBody, entry: SeenRequest, release: threading.Event) -> None:
        if action.then == "forward" and action.after_bytes == 0:
            self._wait(action.seconds, release)
            self._forward(body, entry)
            return
        if action.then == "forward":
            self._forward(body, entry, pause=(action.after_bytes, action.seconds, release))
            return
        self._discard_body(body, action.after_bytes)
        self._wait(action.seconds, release)
        self._reset_connection()

    @staticmethod
    def _wait(seconds: float | None, release: threading.Event) -> None:
        if release.wait(seconds):
            raise _Released

    def _forward(
        self,
        body: _RequestBody,
        entry: SeenRequest,
        *,
        lose_answer: bool = False,
        pause: tuple[int, float | None, threading.Event] | None = None,
    ) -> None:
        upstream = self._upstream_connection()
        upstream.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
        for name, value in self.headers.items():
            if name.lower() not in _HOP_BY_HOP:
                upstream.putheader(name, value)
        upstream.endheaders()
        if not body.finished:
            self._send_continue()
        if pause is not None:
            pause_after, seconds, release = pause
            for piece in body.pieces(pause_after):
                upstream.send(piece)
            self._wait(seconds, release)
        for piece in body.pieces():
            upstream.send(piece)
        answer = upstream.getresponse()
        entry.upstream_status = answer.status
        if lose_answer:
            while answer.read(CHUNK):  # the upstream has acted and answered: read it all, pass none of it
                pass
            self._reset_connection()
            return
        self._relay_answer(answer, entry)
        if answer.will_close:
            self._close_upstream()

    def _relay_answer(self, answer: http.client.HTTPResponse, entry: SeenRequest) -> None:
        no_body = self.command == "HEAD" or answer.status in (204, 304) or 100 <= answer.status < 200
        headers = [(name, value) for name, value in answer.getheaders() if name.lower() not in _HOP_BY_HOP_ANSWER]
        rechunk = not no_body and answer.getheader("Content-Length") is None
        if rechunk:
            headers.append(("Transfer-Encoding", "chunked"))
        entry.client_status = answer.status
        self._send_head(answer.status, headers, answer.reason)
        if no_body:
            return
        while data := answer.read1(CHUNK):
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data) if rechunk else data)
        if answer.length:  # read1 ends quietly when the upstream closes early; the client must not wait for more
            raise http.client.IncompleteRead(b"", answer.length)
        if rechunk:
            self.wfile.write(b"0\r\n\r\n")

    def _send_head(self, status: int, headers: list[tuple[str, str]], reason: str | None = None) -> None:
        if reason is None:
            reason = self.responses.get(status, ("",))[0]
        if self.close_connection:
            headers = [*headers, ("Connection", "close")]
        lines = [f"HTTP/1.1 {status} {reason}\r\n", *(f"{name}: {value}\r\n" for name, value in headers), "\r\n"]
        self._answer_started = True
        self.wfile.write("".join(lines).encode("latin-1"))

    def _answer_error(self, status: int, message: str) -> None:
        self.close_connection = True
        body = message.encode()
        self._send_head(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
        self.wfile.write(body)

    def _upstream_failed(self, error: BaseException, entry: SeenRequest) -> None:
        self._close_upstream()
        if self._answer_started:
            self._reset_connection()  # half an answer is worse than none
            return
        entry.client_status = 502
        try:
            self._answer_error(502, f"faulty proxy: the upstream failed: {error!r}")
        except OSError:  # the client is gone too
            entry.client_status = None

    def _reset_connection(self) -> None:
        self.close_connection = True
        with suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.server.proxy._mark_reset(self.connection)

    # -- the upstream connection, kept alive as long as the client's ---------------------------------------------

    def _upstream_connection(self) -> http.client.HTTPConnection:
        if self._upstream is not None and _dropped(self._upstream):
            self._close_upstream()
        if self._upstream is None:
            self._upstream = self.server.proxy._connect_upstream()
        return self._upstream

    def _close_upstream(self) -> None:
        if self._upstream is not None:
            self._upstream.close()
            self._upstream = None


def _dropped(connection: http.client.HTTPConnection) -> bool:
    """An idle keep-alive connection the upstream closed (readable while idle means EOF, or garbage)."""
    if connection.sock is None:
        return True
    readable, _, _ = select.select([connection.sock], [], [], 0)
    return bool(readable)


class FaultyProxy:
    """``with FaultyProxy(upstream_url) as proxy: proxy.url`` — see the module's docstring."""

    def __init__(self, upstream_url: str, host: str = "127.0.0.1", port: int = 0) -> None:
        upstream = urlsplit(upstream_url)
        if upstream.scheme != "http" or upstream.hostname is None:
            raise ValueError(f"the upstream must be a plain http URL, not {upstream_url!r}")
        self._upstream_host, self._upstream_port = upstream.hostname, upstream.port or 80
        self._address = (host, port)
        self._lock = threading.Lock()
        self._rules: list[Rule] = []
        self._log: list[SeenRequest] = []
        self._release = threading.Event()
        self._stopping = False
        self._handlers: dict[_Handler, threading.Thread] = {}
        self._to_reset: set[socket.socket] = set()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.connections_accepted = 0

    # -- life cycle ---------------------------------------------------------------------------------------------

    def start(self) -> FaultyProxy:
        self._server = _Server(self._address, self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="faulty-proxy", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting, end every connection (stalled ones included) and wait for their threads."""
        if self._server is None:
            return
        self._server.shutdown()
        with self._lock:
            self._stopping = True
            self._release.set()
            handlers = dict(self._handlers)
        for handler in handlers:
            for sock in (handler.connection, handler._upstream.sock if handler._upstream else None):
                if sock is not None:
                    with suppress(OSError):
                        sock.shutdown(socket.SHUT_RDWR)
        for thread in handlers.values():
            thread.join(_JOIN_TIMEOUT_S)
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(_JOIN_TIMEOUT_S)
        self._server = None

    def __enter__(self) -> FaultyProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "start() first"
        return self._server.server_port

    @property
    def url(self) -> str:
        return f"http://{self._address[0]}:{self.port}"

    # -- rules and log ------------------------------------------------------------------------------------------

    def add_rule(
        self,
        match: Match,
        action: Action,
        *,
        times: int | None = 1,
        probability: float | None = None,
        seed: int = 0,
        name: str | None = None,
        skip: int = 0,
    ) -> Rule:
        """Make requests matching ``match`` meet ``action``, ``times`` times (None: every time), each time with
        ``probability`` (None: always) drawn from ``random.Random(seed)``, after letting the first ``skip`` matching
        requests through (e.g. the second UpdateItem of a save). Rules are tried in the order added."""
        if times is not None and times < 1:
            raise ValueError("times must be at least 1 (or None: unlimited)")
        if probability is not None and not 0.0 <= probability <= 1.0:
            raise ValueError("probability must be between 0 and 1")
        with self._lock:
            rule = Rule(
                match, action, times, probability, name or f"rule {len(self._rules) + 1}: {action.kind}", seed, skip
            )
            self._rules.append(rule)
        return rule

    def clear(self) -> None:
        """Forget the rules and the log, and drop (reset) every request still stalled or delayed."""
        with self._lock:
            self._rules.clear()
            self._log.clear()
            self._release.set()
            if not self._stopping:
                self._release = threading.Event()

    @property
    def log(self) -> list[SeenRequest]:
        with self._lock:
            return list(self._log)

    def requests(self, match: Match | None = None) -> list[SeenRequest]:
        """The requests seen, in arrival order; only those ``match`` matches when given."""
        with self._lock:
            seen = list(self._log)
        if match is None:
            return seen
        return [r for r in seen if match.matches(r.method, r.path, r.query, r.headers)]

    # -- called by the handlers ---------------------------------------------------------------------------------

    def _register(self, handler: _Handler) -> int | None:
        with self._lock:
            if self._stopping:
                return None
            self._handlers[handler] = threading.current_thread()
            self.connections_accepted += 1
            return self.connections_accepted

    def _unregister(self, handler: _Handler) -> None:
        with self._lock:
            self._handlers.pop(handler, None)

    def _note(
        self, method: str, path: str, query: str, headers: dict[str, str], connection: int | None
    ) -> tuple[SeenRequest, Rule | None, threading.Event]:
        visible = {name: value for name, value in headers.items() if name not in _SECRET_HEADERS}
        entry = SeenRequest(method, path, query, visible, connection or 0)
        with self._lock:
            fired = next((r for r in self._rules if r.match.matches(method, path, query, headers) and r._fires()), None)
            if fired is not None:
                entry.rule, entry.action = fired.name, fired.action.kind
            self._log.append(entry)
            return entry, fired, self._release

    def _connect_upstream(self) -> http.client.HTTPConnection:
        if self._stopping:
            raise ConnectionAbortedError("the proxy is stopping")
        connection = http.client.HTTPConnection(self._upstream_host, self._upstream_port)
        connection.connect()
        return connection

    def _mark_reset(self, sock: socket.socket) -> None:
        with self._lock:
            self._to_reset.add(sock)

    def _take_reset(self, sock: socket.socket) -> bool:
        with self._lock:
            if sock in self._to_reset:
                self._to_reset.discard(sock)
                return True
            return False


__all__ = [
    "CHUNK",
    "Action",
    "Delay",
    "FaultyProxy",
    "LoseAnswer",
    "Match",
    "Reset",
    "Respond",
    "Rule",
    "SeenRequest",
    "Stall",
    "delay",
    "dynamodb",
    "dynamodb_throttling",
    "dynamodb_throughput_exceeded",
    "lose_answer",
    "reset",
    "respond",
    "s3_abort_multipart_upload",
    "s3_complete_multipart_upload",
    "s3_create_multipart_upload",
    "s3_internal_error",
    "s3_put_object",
    "s3_slow_down",
    "s3_upload_part",
    "stall",
    "too_many_requests",
]
