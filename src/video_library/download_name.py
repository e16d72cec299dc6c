"""The name a saved video downloads under, made from its prompt, and the ``Content-Disposition`` that carries it.

A prompt is the user's free text: it may hold quotes, slashes, control characters, any script, thousands of
characters. The name keeps its words and nothing else — letters and digits joined by hyphens, cut at a word
boundary — so it is a safe file name on every system and a safe header value:

- ``filename="…"``: the ASCII form (accents dropped, other scripts dropped; ``video-<id>`` when nothing is left);
- ``filename*=UTF-8''…`` (RFC 6266 / RFC 8187), percent-encoded, when the prompt's words are not all ASCII:
  browsers prefer it, so a prompt in any script downloads under its own words.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import quote

MAX_STEM_CHARS = 60
EXTENSIONS = {"video/mp4": "mp4", "video/quicktime": "mov", "video/webm": "webm", "video/x-matroska": "mkv"}
_NOT_ASCII_WORD = re.compile(r"[^a-z0-9]+")


def _cut(words: list[str]) -> str:
    stem = ""
    for word in words:
        candidate = f"{stem}-{word}" if stem else word
        if len(candidate) > MAX_STEM_CHARS:
            return stem or word[:MAX_STEM_CHARS]
        stem = candidate
    return stem


def _unicode_words(prompt: str) -> list[str]:
    text = unicodedata.normalize("NFKC", prompt).casefold()
    words, word = [], []
    for char in text:
        if char.isalnum():
            word.append(char)
        elif word:
            words.append("".join(word))
            word = []
    if word:
        words.append("".join(word))
    return words


def _ascii_words(prompt: str) -> list[str]:
    text = unicodedata.normalize("NFKD", prompt).encode("ascii", "ignore").decode("ascii").lower()
    return [word for word in _NOT_ASCII_WORD.split(text) if word]


def download_filename(prompt: str | None, video_id: str, content_type: str | None = None) -> str:
    """The ASCII file name: the prompt's words, or ``video-<id>`` when none are ASCII; the extension from the type."""
    extension = EXTENSIONS.get(content_type or "", "mp4")
    stem = _cut(_ascii_words(prompt or "")) or f"video-{video_id[:12]}"
    return f"{stem}.{extension}"


def attachment(prompt: str | None, video_id: str, content_type: str | None = None) -> str:
    """``Content-Disposition: attachment`` with the prompt-derived name (ASCII, and UTF-8 where it differs)."""
    ascii_name = download_filename(prompt, video_id, content_type)
    value = f'attachment; filename="{ascii_name}"'
    unicode_stem = _cut(_unicode_words(prompt or ""))
    extension = ascii_name.rsplit(".", 1)[1]
    if unicode_stem and f"{unicode_stem}.{extension}" != ascii_name:
        value += f"; filename*=UTF-8''{quote(f'{unicode_stem}.{extension}', safe='')}"
    return value
