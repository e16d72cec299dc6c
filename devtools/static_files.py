"""The library page's static files (``web/``) served by the local gateway, for ``make dev``.

``GET /`` is ``web/index.html``; ``GET /<file>`` and ``GET /web/<file>`` are files inside ``web/``. Only regular
files under that directory are served, never a dotfile; anything else (``..``, encoded or not, a symlink out,
a directory) is not found. Files are read on each request, so edits show on reload.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path
from urllib.parse import unquote

from devtools.gateway import ROOT, Answer

WEB_ROOT = ROOT / "web"
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".ico": "image/x-icon",
    ".txt": "text/plain; charset=utf-8",
}


class StaticFiles:
    def __init__(self, root: Path = WEB_ROOT) -> None:
        self.root = root.resolve()

    def file_for(self, path: str) -> Path | None:
        """The file a request path names, or None when it names nothing servable."""
        relative = unquote(path).removeprefix("/web/").lstrip("/")
        if relative in ("", "web"):
            relative = "index.html"
        parts = relative.split("/")
        if "\x00" in relative or "\\" in relative or any(p in ("", ".", "..") or p.startswith(".") for p in parts):
            return None
        candidate = (self.root / relative).resolve()
        if not candidate.is_relative_to(self.root) or not candidate.is_file():
            return None
        return candidate

    def __call__(self, method: str, path: str) -> Answer | None:
        if method not in ("GET", "HEAD"):
            return None
        found = self.file_for(path)
        if found is None:
            return None
        content_type = CONTENT_TYPES.get(found.suffix.lower()) or (
            mimetypes.guess_type(found.name)[0] or "application/octet-stream"
        )
        headers = {"content-type": content_type, "cache-control": "no-store", "x-content-type-options": "nosniff"}
        return Answer(200, headers, found.read_bytes())
