"""Fetching a provider's video safely: only from where we may, never from our own network.

Before the first byte: https only (plain http only for hosts explicitly allowed for local development),
the host in ``ALLOWED_SOURCE_HOSTS`` (exact, or a ``.suffix``), and every address the host resolves to
public. The address check runs inside the connection itself (a guarded network backend), on the very
address the socket connects to, so DNS rebinding between check and connect cannot slip through.
Redirects are followed by hand, each hop checked again. Connect/read timeouts and an overall deadline
bound the time; the size cap is enforced on Content-Length and again on the bytes as they arrive.
"""

from __future__ import annotations

import hashlib
import ipaddress
import socket
import ssl
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin

import httpcore
import httpx
from httpcore._backends.sync import SyncBackend, SyncStream

from video_library.errors import SourceNotAllowed, SourceNotVideo, SourceTooLarge, SourceUnavailable
from video_library.settings import Settings

MAX_REDIRECTS = 5
CONNECT_TIMEOUT_S = 5.0
READ_TIMEOUT_S = 30.0
SNIFF_BYTES = 12

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]


def resolve_host(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (the system resolver; tests replace it)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise SourceUnavailable(f"the source host {host!r} does not resolve") from exc
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    return address.ipv4_mapped or address.sixtofour or (address.teredo[1] if address.teredo else None)


def is_public_address(text: str) -> bool:
    """True for globally routable unicast addresses; False for private, loopback, link-local, reserved, ..."""
    address: IPAddress = ipaddress.ip_address(text.split("%", 1)[0])
    if isinstance(address, ipaddress.IPv6Address) and (embedded := _embedded_ipv4(address)) is not None:
        address = embedded
    return address.is_global and not address.is_multicast


@dataclass(frozen=True)
class SourcePolicy:
    """Where videos may be fetched from."""

    allowed_hosts: tuple[str, ...]
    dev_insecure_hosts: tuple[str, ...] = ()
    resolver: Resolver | None = field(default=None, compare=False)  # None: the system resolver

    @classmethod
    def from_settings(cls, settings: Settings) -> SourcePolicy:
        return cls(settings.allowed_source_hosts, settings.dev_insecure_source_hosts)

    def is_dev_insecure(self, host: str) -> bool:
        return host.lower() in self.dev_insecure_hosts

    def host_allowed(self, host: str) -> bool:
        host = host.lower().rstrip(".")
        if self.is_dev_insecure(host):
            return True
        return any(
            host == rule or (rule.startswith(".") and host.endswith(rule)) or host == rule.lstrip(".")
            for rule in self.allowed_hosts
        )

    def check_url(self, url: httpx.URL) -> None:
        """Refuse a URL by its scheme and host alone, before any connection."""
        host = url.host
        if url.scheme not in ("https", "http") or not host:
            raise SourceNotAllowed("the video URL is not an http(s) URL")
        if url.userinfo:
            raise SourceNotAllowed("the video URL must not carry credentials")
        if url.scheme == "http" and not self.is_dev_insecure(host):
            raise SourceNotAllowed("the video URL must use https", host=host)
        if not self.host_allowed(host):
            raise SourceNotAllowed("the video host is not an allowed source", host=host)

    def check_source_url(self, url: str) -> httpx.URL:
        """Parse ``url`` and refuse it by itself (scheme, host, credentials), before any connection."""
        try:
            parsed = httpx.URL(url)
        except (httpx.InvalidURL, ValueError, TypeError) as exc:
            raise SourceNotAllowed("the video URL cannot be parsed") from exc
        self.check_url(parsed)
        return parsed

    def vetted_address(self, host: str, port: int) -> str:
        """The address to connect to, once every address ``host`` resolves to is known to be public."""
        if self.is_dev_insecure(host):
            return host
        resolver = self.resolver or resolve_host
        addresses = [host] if _is_ip_literal(host) else resolver(host, port)
        if not addresses:
            raise SourceUnavailable(f"the source host {host!r} does not resolve")
        refused = [address for address in addresses if not is_public_address(address)]
        if refused:
            raise SourceNotAllowed("the video host resolves to a non-public address", host=host)
        return addresses[0]


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return False
    return True


class _GuardedBackend(SyncBackend):
    """httpcore's socket backend, connecting only to addresses the policy vetted."""

    def __init__(self, policy: SourcePolicy) -> None:
        self._policy = policy

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> SyncStream:
        address = self._policy.vetted_address(host, port)
        try:
            sock = socket.create_connection((address, port), timeout)
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(str(exc)) from exc
        except OSError as exc:
            raise httpcore.ConnectError(str(exc)) from exc
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # TLS (when https) is started on this stream by httpcore with the URL's host name for SNI and
        # certificate checks, so connecting by address does not weaken verification.
        return SyncStream(sock)


class _GuardedTransport(httpx.HTTPTransport):
    def __init__(self, policy: SourcePolicy) -> None:
        super().__init__(retries=0, http2=False)
        # httpx.HTTPTransport offers no way to pass a network backend; build its pool again with ours.
        self._pool = httpcore.ConnectionPool(
            ssl_context=ssl.create_default_context(),
            max_connections=4,
            retries=0,
            network_backend=_GuardedBackend(policy),
        )


def guarded_client(policy: SourcePolicy) -> httpx.Client:
    return httpx.Client(
        transport=_GuardedTransport(policy),
        follow_redirects=False,  # every hop is checked by hand
        trust_env=False,  # no proxy from the environment may route around the checks
        timeout=httpx.Timeout(READ_TIMEOUT_S, connect=CONNECT_TIMEOUT_S),
        headers={"accept": "video/*, application/octet-stream;q=0.5", "accept-encoding": "identity"},
    )


_VIDEO_OCTET_TYPES = ("application/octet-stream", "binary/octet-stream")
# Box types a QuickTime file may open with when it has no ftyp box.
_QUICKTIME_BOXES = (b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot")


def sniff_video_type(head: bytes) -> str | None:
    """The video type announced by a file's first bytes (MP4, QuickTime or WebM/Matroska), else None."""
    if len(head) >= 8 and head[4:8] == b"ftyp":
        return "video/quicktime" if head[8:12] == b"qt  " else "video/mp4"
    if len(head) >= 8 and head[4:8] in _QUICKTIME_BOXES:
        return "video/quicktime"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "video/webm"
    return None


@dataclass
class SourceStream:
    """An open source: its video type and its bytes, counted, hashed and capped as they are read."""

    content_type: str
    declared_size: int | None
    max_bytes: int
    deadline: float
    _body: Iterator[bytes]
    _head: list[bytes]
    size: int = 0
    _hash: Any = field(default_factory=hashlib.sha256)

    @property
    def sha256(self) -> str:
        return str(self._hash.hexdigest())

    def chunks(self) -> Iterator[bytes]:
        """The body, chunk by chunk as the network delivers it; raises as soon as a limit is crossed."""
        while self._head:
            yield self._count(self._head.pop(0))
        try:
            for chunk in self._body:
                if time.monotonic() > self.deadline:
                    raise SourceUnavailable("the source was too slow: the transfer ran out of time")
                yield self._count(chunk)
        except httpx.HTTPError as exc:
            raise SourceUnavailable(f"the source stopped sending: {type(exc).__name__}") from exc
        if self.declared_size is not None and self.declared_size != self.size:
            raise SourceUnavailable(f"the source sent {self.size} bytes but announced {self.declared_size}")

    def _count(self, chunk: bytes) -> bytes:
        self.size += len(chunk)
        if self.size > self.max_bytes:
            raise SourceTooLarge(f"the video is larger than {self.max_bytes} bytes", max_bytes=self.max_bytes)
        self._hash.update(chunk)
        return chunk


def _media_type(response: httpx.Response) -> str:
    declared: str = response.headers.get("content-type", "")
    return declared.split(";", 1)[0].strip().lower()


def _decide_content_type(response: httpx.Response, head: bytes) -> str:
    declared = _media_type(response)
    if declared.startswith("video/"):
        return declared
    if declared in _VIDEO_OCTET_TYPES and (sniffed := sniff_video_type(head)):
        return sniffed
    raise SourceNotVideo(f"the source is not a video (content type {declared or 'missing'!r})")


def _read_head(body: Iterator[bytes]) -> list[bytes]:
    """Read just enough of the body to recognise a file type; the chunks read go first into the stream."""
    head: list[bytes] = []
    try:
        while sum(map(len, head)) < SNIFF_BYTES and (chunk := next(body, None)) is not None:
            head.append(chunk)
    except httpx.HTTPError as exc:
        raise SourceUnavailable(f"the source stopped sending: {type(exc).__name__}") from exc
    return head


@contextmanager
def open_source(url: str, *, policy: SourcePolicy, max_bytes: int, deadline: float) -> Iterator[SourceStream]:
    """Open ``url`` for streaming after every check; the connection is closed when the block ends."""
    with guarded_client(policy) as client:
        target = httpx.URL(url)
        for _hop in range(MAX_REDIRECTS + 1):
            policy.check_url(target)
            request = client.build_request("GET", target)
            try:
                response = client.send(request, stream=True)
            except httpx.TimeoutException as exc:
                raise SourceUnavailable("the source did not answer in time") from exc
            except httpx.HTTPError as exc:
                raise SourceUnavailable(f"the source could not be reached: {type(exc).__name__}") from exc
            if response.is_redirect and "location" in response.headers:
                response.close()
                target = httpx.URL(urljoin(str(target), response.headers["location"]))
                continue
            break
        else:
            raise SourceUnavailable(f"the source redirected more than {MAX_REDIRECTS} times")
        try:
            if response.status_code != 200:
                raise SourceUnavailable(f"the source answered HTTP {response.status_code}", status=response.status_code)
            length = response.headers.get("content-length", "")
            declared_size = int(length) if length.isdigit() else None
            if declared_size is not None and declared_size > max_bytes:
                raise SourceTooLarge(f"the video is larger than {max_bytes} bytes", max_bytes=max_bytes)
            body = response.iter_bytes()
            head = _read_head(body)
            content_type = _decide_content_type(response, b"".join(head)[:SNIFF_BYTES])
            yield SourceStream(content_type, declared_size, max_bytes, deadline, _body=body, _head=head)
        finally:
            response.close()
