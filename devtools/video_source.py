"""A local HTTP server playing a provider's CDN: serves synthetic videos and misbehaves on request.

``GET /video.mp4?size=N`` serves N deterministic bytes that start like an MP4 file. Query parameters make
it misbehave the ways real sources do:

| parameter | effect |
|---|---|
| ``type=T`` | Content-Type T (default ``video/mp4``; ``none`` sends none) |
| ``magic=0`` | the bytes do not start with an MP4 header |
| ``status=N`` | answer HTTP N with a short body |
| ``delay_ms=N`` | sleep N ms before each 1 MiB block |
| ``drop_at=N`` | close the connection after N bytes |
| ``declare=N`` | announce Content-Length N whatever is sent (``none``: no length, chunked encoding) |
| ``once=TOKEN`` | misbehave (status, drop_at) only on the first request carrying TOKEN |
| ``redirect=URL`` | answer 302 to URL |
| ``sample=1`` | serve the real MP4 of ``devtools/media/sample.mp4`` (other parameters but ``status`` ignored) |
| ``image=K`` | serve an image: ``jpg`` (``devtools/media/thumbnail.jpg``; ``size=N`` pads it to N bytes), |
|  | ``png`` (1x1), ``svg`` (with a script), ``html`` (a web page); ``type=T`` overrides its type, |
|  | ``delay_ms=N`` waits before answering |
| ``gone=TOKEN`` | answer 404 once :meth:`VideoSourceServer.expire` was called with TOKEN (a provider deleting) |

It counts the connections it accepts, so a test can prove a refused URL was never fetched.
"""

from __future__ import annotations

import hashlib
import random
import ssl
import struct
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

BLOCK = 1024 * 1024
SAMPLE_MP4 = Path(__file__).resolve().parent / "media" / "sample.mp4"
THUMBNAIL_JPG = Path(__file__).resolve().parent / "media" / "thumbnail.jpg"
# A 1x1 transparent PNG.
TINY_PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c63000100000500010d0a2db40000000049454e44ae426082"
)
IMAGES: dict[str, tuple[str, bytes]] = {
    "png": ("image/png", TINY_PNG),
    "svg": ("image/svg+xml", b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'),
    "html": ("text/html", b"<!doctype html><title>not a picture</title><script>alert(1)</script>"),
}


def image_bytes(kind: str, size: int | None = None) -> tuple[str, bytes]:
    """The content type and bytes the source serves for ``image=kind`` (a ``jpg`` padded to ``size``)."""
    if kind == "jpg":
        data = THUMBNAIL_JPG.read_bytes()
        if size is not None and size > len(data):
            data += bytes(size - len(data))  # bytes after the JPEG's end marker: still a JPEG to any reader
        return "image/jpeg", data
    return IMAGES[kind]


MP4_HEADER = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom"
_BASE_BLOCK = random.Random(20261125).randbytes(BLOCK)  # noqa: S311 (test data, not a secret)


def synthetic_video(size: int, *, magic: bool = True) -> Iterator[bytes]:
    """``size`` deterministic bytes in blocks of up to 1 MiB; every block differs from the others."""
    sent, index = 0, 0
    while sent < size:
        block = struct.pack(">Q", index) + _BASE_BLOCK[8:]
        if index == 0 and magic:
            block = MP4_HEADER + block[len(MP4_HEADER) :]
        piece = block[: size - sent]
        yield piece
        sent += len(piece)
        index += 1


def synthetic_sha256(size: int, *, magic: bool = True) -> str:
    digest = hashlib.sha256()
    for block in synthetic_video(size, magic=magic):
        digest.update(block)
    return digest.hexdigest()


class _Handler(BaseHTTPRequestHandler):
    server: VideoSourceServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read results, not logs
        return

    def do_GET(self) -> None:
        url = urlparse(self.path)
        params = {k: v[-1] for k, v in parse_qs(url.query).items()}
        self.server.paths.append(self.path)
        if "redirect" in params:
            self.send_response(302)
            self.send_header("Location", params["redirect"])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        gone = params.get("gone")
        if gone is not None and gone in self.server.expired:
            params["status"] = "404"
        token = params.get("once")
        if token is not None:
            with self.server.lock:
                seen = token in self.server.tokens
                self.server.tokens.add(token)
            if seen:
                params.pop("status", None)
                params.pop("drop_at", None)
        status = int(params.get("status", "200"))
        if status != 200:
            body = b"not here"
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        if "image" in params:
            default_type, data = image_bytes(params["image"], int(params["size"]) if "size" in params else None)
            time.sleep(int(params.get("delay_ms", "0")) / 1000)
            self.send_response(200)
            self.send_header("Content-Type", params.get("type", default_type))
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        if params.get("sample") == "1":
            data = SAMPLE_MP4.read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", "video/mp4")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        size = int(params.get("size", "1024"))
        content_type = params.get("type", "video/mp4")
        self.send_response(200)
        if content_type != "none":
            self.send_header("Content-Type", content_type)
        declared = params.get("declare", str(size))
        chunked = declared == "none"  # as CDNs stream a body whose length they do not know
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", declared)
        self.end_headers()
        delay = int(params.get("delay_ms", "0")) / 1000
        drop_at = int(params["drop_at"]) if "drop_at" in params else None
        sent = 0
        for block in synthetic_video(size, magic=params.get("magic", "1") != "0"):
            if delay:
                time.sleep(delay)
            if drop_at is not None and sent + len(block) > drop_at:
                self._send(block[: drop_at - sent], chunked)
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(2)
                return
            self._send(block, chunked)
            sent += len(block)
        if chunked:
            self.wfile.write(b"0\r\n\r\n")

    def _send(self, data: bytes, chunked: bool) -> None:
        if not chunked:
            self.wfile.write(data)
        elif data:  # an empty chunk would end the body: a drop must look like a drop
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")


class VideoSourceServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, host: str = "127.0.0.1", port: int = 0, tls: tuple[str, str] | None = None) -> None:
        super().__init__((host, port), _Handler)
        if tls is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(*tls)
            self.socket = context.wrap_socket(self.socket, server_side=True)
        self.scheme = "https" if tls else "http"
        self.connections = 0
        self.paths: list[str] = []
        self.tokens: set[str] = set()
        self.expired: set[str] = set()
        self.lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def get_request(self) -> Any:
        accepted = super().get_request()
        self.connections += 1
        return accepted

    def expire(self, token: str) -> None:
        """From now on, every URL carrying ``gone=token`` answers 404."""
        self.expired.add(token)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def url(self, host: str = "localhost", **params: object) -> str:
        query = "&".join(f"{k}={v}" for k, v in params.items())
        return f"{self.scheme}://{host}:{self.port}/video.mp4" + (f"?{query}" if query else "")

    def start(self) -> VideoSourceServer:
        self._thread = threading.Thread(target=self.serve_forever, name="video-source", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()

    def __enter__(self) -> VideoSourceServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main() -> None:
    """``python -m devtools.video_source --port N``: serve until interrupted (benchmarks run it apart)."""
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    server = VideoSourceServer(args.host, args.port)
    print(f"serving on http://{args.host}:{server.port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        server.server_close()


if __name__ == "__main__":
    main()
