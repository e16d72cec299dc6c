"""Downloading a provider's file for a save: guarded, bounded in time and size, lean on the CPU.

The policy (``source.SourcePolicy``) says where a video may come from; this module fetches it:

- every hop's URL is checked before it is requested, and the address check runs inside the connection, on the
  very address the socket connects to (DNS rebinding cannot slip between check and connect); TLS is verified
  against the URL's host name; redirects are followed by hand, each hop checked again; no proxy is used;
- the body is read straight into the caller's buffer (``readinto``): no chunk objects, no copies. On a Lambda
  of 256 MB (14 % of a core) the download's CPU is what sets the save's speed: measured here, httpx's streaming
  costs 4-5x the CPU of ``http.client`` reading into a buffer for the same 100 MiB (see README, Benchmarks);
- every read waits at most until the deadline (the socket's timeout is clamped to the time left), so a source
  that goes silent cannot hold an invocation past its end;
- the size is capped on ``Content-Length`` and again on the bytes as they arrive; a body shorter than announced
  is a failure; the content type must be a video (or octet-stream whose first bytes are one); the sha256 is
  computed as the bytes pass.

Failures say whether another attempt may help: the file gone (403/404/410) or refused, too large, not a video
or not allowed are final; errors, throttling, cut-short bodies and timeouts are worth retrying.

The same guarded path fetches a video's thumbnail (``accept=IMAGES``: raster image types only, recognised by their
first bytes) and checks, without downloading, whether a provider's file is still there (:func:`probe_source`).
"""

from __future__ import annotations

import hashlib
import http.client
import socket
import ssl
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import httpx

from video_library.deadline import TimeLimit
from video_library.errors import (
    OutOfTime,
    SourceGone,
    SourceNotAllowed,
    SourceNotImage,
    SourceNotVideo,
    SourceRefused,
    SourceTooLarge,
    SourceUnavailable,
    VideoLibraryError,
)
from video_library.source import SourcePolicy, redirect_target, sniff_image_type, sniff_video_type

MAX_REDIRECTS = 5
CONNECT_TIMEOUT_S = 5.0
# Longest silence tolerated between two reads of the body (or before the answer), whatever time is left.
READ_TIMEOUT_S = 20.0
SNIFF_BYTES = 12
# At most this much per read: http.client fills whatever it is given before returning, so a bounded slice keeps
# the deadline checks and the progress count close to the network, at a few µs a call.
READ_SLICE = 256 * 1024
GONE_STATUSES = frozenset({403, 404, 410})
# Client errors that say "not now" rather than "never".
TRANSIENT_CLIENT_STATUSES = frozenset({408, 425, 429})
_OCTET_TYPES = ("application/octet-stream", "binary/octet-stream")
USER_AGENT = "video-library/save"


def _video_type(declared: str, head: bytes) -> str:
    if declared.startswith("video/"):
        return declared
    if declared in _OCTET_TYPES and (sniffed := sniff_video_type(head)):
        return sniffed
    raise SourceNotVideo(f"the source is not a video (content type {declared or 'missing'!r})")


def _image_type(declared: str, head: bytes) -> str:
    # The type is what the bytes are, never only what the source says: a thumbnail is served from our bucket, so
    # anything but a raster image (an SVG with a script, HTML) must not get there under an image's name.
    sniffed = sniff_image_type(head)
    if sniffed is not None and (declared == sniffed or declared in _OCTET_TYPES or declared.startswith("image/")):
        return sniffed
    raise SourceNotImage(f"the source is not a JPEG, PNG, WebP or GIF image (content type {declared or 'missing'!r})")


@dataclass(frozen=True)
class Accept:
    """What a download accepts: the Accept header sent, and the content type decided from the answer's declared
    type and first bytes (or the refusal)."""

    header: str
    content_type: Callable[[str, bytes], str]


VIDEOS = Accept("video/*, application/octet-stream;q=0.5", _video_type)
IMAGES = Accept("image/jpeg, image/png, image/webp, image/gif;q=0.8", _image_type)


class _GuardedConnect:
    """``http.client``'s connect step, connecting only to an address the policy vetted for the URL's host.

    http.client calls ``self._create_connection((host, port), ...)``; TLS (for https) is then started on that
    socket with the URL's host name for SNI and certificate checks, so connecting by address weakens nothing."""

    def __init__(self, policy: SourcePolicy, deadline: TimeLimit) -> None:
        self._policy = policy
        self._deadline = deadline

    def __call__(self, address: tuple[str, int], timeout: Any = None, source_address: Any = None) -> socket.socket:
        host, port = address
        failure: OSError | None = None
        # Each vetted address in turn, as socket.create_connection would try a name's addresses: a host whose
        # first answer is unreachable (IPv6 where the function has no IPv6 route) still connects.
        for vetted in self._policy.vetted_addresses(host, port):
            wait = min(CONNECT_TIMEOUT_S, self._deadline.remaining())
            if wait <= 0:
                raise OutOfTime("no time left to connect to the source")
            try:
                sock = socket.create_connection((vetted, port), wait)
            except OSError as exc:
                failure = exc
                continue
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return sock
        if isinstance(failure, TimeoutError):
            raise SourceUnavailable("the source did not accept a connection in time") from failure
        reason = (failure.strerror if failure else None) or type(failure).__name__
        raise SourceUnavailable(f"the source could not be reached ({reason})") from failure


def _connection(url: httpx.URL, policy: SourcePolicy, deadline: TimeLimit) -> http.client.HTTPConnection:
    host = url.host
    port = url.port
    timeout = max(0.001, min(READ_TIMEOUT_S, deadline.remaining()))
    connection: http.client.HTTPConnection
    if url.scheme == "https":
        connection = http.client.HTTPSConnection(host, port, timeout=timeout, context=ssl.create_default_context())
    else:
        connection = http.client.HTTPConnection(host, port, timeout=timeout)
    connection._create_connection = _GuardedConnect(policy, deadline)  # type: ignore[attr-defined]
    return connection


def _target(url: httpx.URL) -> str:
    return url.raw_path.decode("ascii")


def _classify_status(status: int) -> None:
    if status == 200:
        return
    if status in GONE_STATUSES:
        raise SourceGone(f"the provider no longer has this file (HTTP {status})", status=status)
    if 400 <= status < 500 and status not in TRANSIENT_CLIENT_STATUSES:
        raise SourceRefused(f"the provider refused the file (HTTP {status})", status=status)
    raise SourceUnavailable(f"the source answered HTTP {status}", status=status)


class SourceDownload:
    """An open download: its video type, announced size, and its bytes read into the caller's buffers."""

    def __init__(
        self,
        connection: http.client.HTTPConnection,
        response: http.client.HTTPResponse,
        *,
        max_bytes: int,
        deadline: TimeLimit,
        accept: Accept = VIDEOS,
    ) -> None:
        self._connection = connection
        self._response = response
        self._deadline = deadline
        self._accept = accept
        self.max_bytes = max_bytes
        length = response.getheader("content-length", "") or ""
        self.declared_size: int | None = int(length) if length.isdigit() else None
        if self.declared_size is not None and self.declared_size > max_bytes:
            raise SourceTooLarge(f"the video is larger than {max_bytes} bytes", max_bytes=max_bytes)
        self.size = 0
        self._hash = hashlib.sha256()
        self._head = self._read_head()
        self.content_type = self._decide_content_type()

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()

    def _raw_read(self, view: memoryview) -> int:
        """One read from the network into ``view``, waiting no longer than the deadline allows."""
        left = self._deadline.remaining()
        if left <= 0:
            raise OutOfTime("the transfer ran out of time")
        sock = self._connection.sock
        if sock is not None:
            sock.settimeout(min(READ_TIMEOUT_S, left))
        try:
            count = self._response.readinto(view)
        except TimeoutError as exc:
            if self._deadline.remaining() <= 0:
                raise OutOfTime("the transfer ran out of time while the source was silent") from exc
            raise SourceUnavailable(f"the source sent nothing for {READ_TIMEOUT_S:g} s") from exc
        except http.client.IncompleteRead as exc:
            raise SourceUnavailable(
                f"the source closed the connection after {self.size + len(exc.partial)} bytes"
            ) from exc
        except (OSError, http.client.HTTPException) as exc:
            raise SourceUnavailable(f"the source stopped sending ({type(exc).__name__})") from exc
        return count or 0

    def _read_head(self) -> bytes:
        """Enough of the body to recognise the file type; served first by :meth:`readinto`."""
        head = bytearray(SNIFF_BYTES)
        view = memoryview(head)
        filled = 0
        while filled < SNIFF_BYTES:
            count = self._raw_read(view[filled:])
            if count == 0:
                break
            filled += count
        return bytes(head[:filled])

    def _decide_content_type(self) -> str:
        declared = (self._response.getheader("content-type", "") or "").split(";", 1)[0].strip().lower()
        return self._accept.content_type(declared, self._head)

    def readinto(self, buffer: bytearray | memoryview) -> int:
        """Fill ``buffer`` from the body; fewer bytes only at the end of the body, 0 once it is over.

        Counts, hashes and caps what it reads; at the end, checks the total against the announced length."""
        view = memoryview(buffer).cast("B")
        filled = 0
        if self._head:
            filled = min(len(self._head), len(view))
            view[:filled] = self._head[:filled]
            self._head = self._head[filled:]
            self._count(view[:filled])
        while filled < len(view):
            count = self._raw_read(view[filled : filled + READ_SLICE])
            if count == 0:
                break
            # Counted as it arrives: the progress the page shows moves with the network, not part by part.
            self._count(view[filled : filled + count])
            filled += count
        if filled < len(view) and self.declared_size is not None and self.size != self.declared_size:
            raise SourceUnavailable(f"the source sent {self.size} bytes but announced {self.declared_size}")
        return filled

    def _count(self, data: memoryview) -> None:
        self.size += len(data)
        if self.size > self.max_bytes:
            raise SourceTooLarge(f"the video is larger than {self.max_bytes} bytes", max_bytes=self.max_bytes)
        self._hash.update(data)

    def close(self) -> None:
        self._response.close()
        self._connection.close()


def _answer(
    url: str, policy: SourcePolicy, deadline: TimeLimit, headers: dict[str, str]
) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
    """GET ``url`` after every check, following redirects (each hop checked again); the final answer, unread."""
    target = policy.check_source_url(url)
    for _hop in range(MAX_REDIRECTS + 1):
        connection = _connection(target, policy, deadline)
        try:
            connection.request(
                "GET",
                _target(target),
                headers={**headers, "Accept-Encoding": "identity", "User-Agent": USER_AGENT},
            )
            response = connection.getresponse()
        except (SourceNotAllowed, SourceUnavailable, OutOfTime):
            connection.close()
            raise
        except TimeoutError as exc:
            connection.close()
            if deadline.remaining() <= 0:
                raise OutOfTime("the transfer ran out of time waiting for the source") from exc
            raise SourceUnavailable("the source did not answer in time") from exc
        except ssl.SSLCertVerificationError as exc:
            connection.close()
            # Not a network hiccup: the host presents a certificate that does not prove it is the host.
            raise SourceRefused(f"the source's TLS certificate is not valid ({exc.verify_message})") from exc
        except (OSError, http.client.HTTPException) as exc:
            connection.close()
            raise SourceUnavailable(f"the source could not be reached ({type(exc).__name__})") from exc
        location = response.getheader("location")
        if response.status in (301, 302, 303, 307, 308) and location:
            response.close()
            connection.close()
            target = policy.check_source_url(redirect_target(target, location))
            continue
        return connection, response
    # A loop, or a chain no provider makes: asking again would find the same.
    raise SourceRefused(f"the source redirected more than {MAX_REDIRECTS} times")


@contextmanager
def open_download(
    url: str, *, policy: SourcePolicy, max_bytes: int, deadline: TimeLimit, accept: Accept = VIDEOS
) -> Iterator[SourceDownload]:
    """Open ``url`` for reading after every check; the connection is closed when the block ends."""
    connection, response = _answer(url, policy, deadline, {"Accept": accept.header})
    try:
        _classify_status(response.status)
        download = SourceDownload(connection, response, max_bytes=max_bytes, deadline=deadline, accept=accept)
    except BaseException:
        response.close()
        connection.close()
        raise
    try:
        yield download
    finally:
        download.close()


class Presence(StrEnum):
    AVAILABLE = "available"
    GONE = "gone"  # 403, 404 or 410: what a save would take as final
    UNKNOWN = "unknown"  # no clear answer (an error, a timeout, a refusal): nothing can be concluded


@dataclass(frozen=True)
class ProbeResult:
    presence: Presence
    detail: str


def probe_source(url: str, *, policy: SourcePolicy, deadline: TimeLimit) -> ProbeResult:
    """Whether the provider still has the file at ``url``, asked the way a save asks (the same checks, a GET), but
    for its first byte only; the body is never read. Never raises for what the source does."""
    try:
        connection, response = _answer(url, policy, deadline, {"Accept": "*/*", "Range": "bytes=0-0"})
    except VideoLibraryError as exc:
        return ProbeResult(Presence.UNKNOWN, exc.message)
    try:
        status = response.status
    finally:
        response.close()
        connection.close()
    if status in (200, 206):
        return ProbeResult(Presence.AVAILABLE, f"HTTP {status}")
    if status in GONE_STATUSES:
        return ProbeResult(Presence.GONE, f"the provider no longer has this file (HTTP {status})")
    return ProbeResult(Presence.UNKNOWN, f"the source answered HTTP {status}")
